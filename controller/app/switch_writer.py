"""One switch's messages, sent in order from a thread of its own.

The service hands messages over under its lock. os-ken's `Datapath.send` blocks while the
switch does not read (its send queue holds 16 messages, and the thread writing the socket
waits up to the socket timeout, 5 s): sent under the lock, one slow switch stalled every
reservation call, every switch event and the timers (an outside reviewer measured 5 s).
Here the hand-over only queues; what a switch does not take is dropped when os-ken gives
its connection up (the core programs it again when it reconnects).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable

log = logging.getLogger("dcilab.app")


class SwitchWriter:
    """Messages already numbered (xid) by the caller, sent to `datapath` in order."""

    def __init__(self, datapath, name: str, on_error: Callable[[], None]):
        self.datapath, self.name, self._on_error = datapath, name, on_error
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._refused = False        # os-ken refused a message: the connection is ending
        threading.Thread(target=self._run, name=f"dcilab-send-{name}", daemon=True).start()

    def put(self, msgs: list) -> None:
        with self._cond:
            if not self._closed:
                self._queue.extend(msgs)
                self._cond.notify()

    def close(self) -> None:
        """The connection is gone: what is still queued goes nowhere."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()

    def idle(self, timeout_s: float) -> bool:
        """Whether everything queued was handed to os-ken within `timeout_s`."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy,
                                       timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            for msg in batch:
                self._send(msg)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _send(self, msg) -> None:
        try:
            taken = self.datapath.send_msg(msg)
        except Exception:  # one bad message must not silently stop the rest
            log.exception("could not send %s to switch %s", type(msg).__name__, self.name)
            self._on_error()
            return
        if taken is False and not self._refused:
            self._refused = True
            log.warning("switch %s: its connection is closing; messages to it are dropped "
                        "until it connects again (then it is programmed whole)", self.name)
