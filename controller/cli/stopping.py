"""SIGTERM stops a dcilab command as Ctrl-C does, so what it built is removed (`timeout`,
`dcilab clean --force` and systemd stop with it; `train` left its emulation behind), and
the command exits 143, as a shell reports a process SIGTERM ended."""

from __future__ import annotations

import signal

EXIT_TERMINATED = 143                   # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, unwound as Ctrl-C is. A command that takes Ctrl-C as "done" (a watch)
    lets this one through."""


def _raise(*_) -> None:
    raise Terminated


def stop_on_sigterm() -> None:
    """From now on SIGTERM raises Terminated (`controller` and `lab` install their own)."""
    signal.signal(signal.SIGTERM, _raise)
