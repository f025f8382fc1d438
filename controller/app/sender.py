"""The switches' messages, handed to os-ken in the order the core made them, from a
thread of their own.

The service hands messages over under its lock. os-ken's `Datapath.send` blocks while a
switch does not read (its send queue holds 16 messages, and the thread writing the socket
waits up to the socket timeout, 5 s): sent under the lock, one slow switch stalled every
reservation call, every switch event and the timers (an outside reviewer measured 5 s).
Here the hand-over only queues. One thread for every switch, not one each: make before
break across switches (the new path's pins, then the old one's removals) relies on that
order, and per-switch threads let a slow switch's backlog put the break a second ahead of
the make (a re-reviewer's). A switch that does not read still holds up the others'
messages, as before, but no longer the controller; what a closed connection had queued
is dropped (the core programs the switch whole when it reconnects).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from typing import Callable

log = logging.getLogger("dcilab.app")


class Sender:
    """Messages already numbered (xid) by the caller, handed to their datapaths in order."""

    def __init__(self, on_error: Callable[[], None]):
        self._on_error = on_error
        self._queue: deque = deque()          # (datapath, message), in order
        self._cond = threading.Condition()
        self._busy = False
        self._gone: weakref.WeakSet = weakref.WeakSet()    # connections that closed
        self._refused: weakref.WeakSet = weakref.WeakSet()  # said once each
        threading.Thread(target=self._run, name="dcilab-sender", daemon=True).start()

    def put(self, datapath, msgs: list) -> None:
        with self._cond:
            self._queue.extend((datapath, msg) for msg in msgs)
            self._cond.notify()

    def forget(self, datapath) -> None:
        """Its connection closed: what is still queued for it goes nowhere."""
        with self._cond:
            self._gone.add(datapath)
            self._queue = deque(item for item in self._queue if item[0] is not datapath)

    def idle(self, timeout_s: float) -> bool:
        """Whether everything queued was handed to os-ken within `timeout_s`."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy,
                                       timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue)
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            for datapath, msg in batch:
                if datapath not in self._gone:
                    self._send(datapath, msg)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _send(self, datapath, msg) -> None:
        try:
            taken = datapath.send_msg(msg)
        except Exception:  # one bad message must not silently stop the rest
            log.exception("could not send %s to switch %#x", type(msg).__name__,
                          datapath.id or 0)
            self._on_error()
            return
        if taken is False and datapath not in self._refused:
            self._refused.add(datapath)
            log.warning("switch %#x: its connection is closing; messages to it are dropped "
                        "until it connects again (then it is programmed whole)",
                        datapath.id or 0)
