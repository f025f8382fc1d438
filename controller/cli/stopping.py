"""SIGTERM (and SIGHUP) stops a dcilab command as Ctrl-C does, so what it built is removed
(`timeout`, `dcilab clean --force` and systemd stop with it; `train` left its emulation
behind), and the command exits 143, as a shell reports a process SIGTERM ended. A command
that serves until told to stop (`controller`) exits 0 once it has stopped cleanly."""

from __future__ import annotations

import signal
import threading

EXIT_TERMINATED = 143                   # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, unwound as Ctrl-C is. A command that takes Ctrl-C as "done" (a watch)
    lets this one through."""


def _raise(*_) -> None:
    raise Terminated


def on_stop_signals(handler) -> None:
    """`handler` for SIGTERM, and for a hangup (the terminal or SSH session gone), unless
    it is ignored (`nohup`): a hangup killed `dcilab lab` outright and left its bridges,
    namespace and controller behind."""
    signal.signal(signal.SIGTERM, handler)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, handler)


def ignore_stop_signals() -> None:
    """Once a stop has unwound a command: a second signal while it says so raised again
    inside the handler, a traceback and exit 1 (a re-tester's, 1 run in 6)."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def stop_on_sigterm() -> None:
    """From now on SIGTERM and SIGHUP raise Terminated (`controller` and `lab` install
    their own)."""
    on_stop_signals(_raise)


class StopSignal:
    """A signal handler that only notes the signal: `wait` turns it into `stop.set()`
    outside the handler. An Event's set() takes a lock, and a second signal landing inside
    the first handler's set() waited on that lock, held by its own thread, for good: a
    tester's `timeout` (SIGTERM to the process, then to its group) left a controller that
    no later SIGTERM could stop."""

    POLL_S = 0.2

    def __init__(self):
        self.signum: int | None = None

    def __call__(self, signum, _frame) -> None:
        self.signum = signum

    def wait(self, stop: threading.Event) -> None:
        """Until `stop` is set (by another thread) or a signal came (which sets it)."""
        while not stop.wait(self.POLL_S):
            if self.signum is not None:
                stop.set()
