"""SIGTERM (and SIGHUP) stops a dcilab command as Ctrl-C does, so what it built is removed
(`timeout`, `dcilab clean --force` and systemd stop with it; `train` left its emulation
behind), and the command exits 143, as a shell reports a process SIGTERM ended. A command
that serves until told to stop (`controller`) exits 0 once it has stopped cleanly."""

from __future__ import annotations

import signal

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


def stop_on_sigterm() -> None:
    """From now on SIGTERM and SIGHUP raise Terminated (`controller` and `lab` install
    their own)."""
    on_stop_signals(_raise)
