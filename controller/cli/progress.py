"""A progress line on stderr for long work: silent when the work is quick."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """`progress(done, total)` after each step: nothing for the first `after` seconds,
    then one line every `every` seconds and one at the end (a user waiting on a big
    fabric's GNPy runs sees them move, and a small fabric prints nothing)."""

    def __init__(self, what: str, after_s: float = 3.0, every_s: float = 3.0,
                 out: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.what, self.after_s, self.every_s = what, after_s, every_s
        self.out, self.clock = out, clock
        self.started = clock()
        self._next = self.started + after_s
        self.said = False

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if now < self._next and not (done == total and self.said):
            return
        self._next = now + self.every_s
        self.said = True
        print(f"{self.what}: {done:,} of {total:,} ({now - self.started:.0f} s)",
              file=self.out or sys.stderr, flush=True)


def optical_model(command: str) -> Progress:
    """For load_fabric: the line systems through GNPy, for a big fabric file."""
    return Progress(f"dcilab {command}: optical model (GNPy), line systems")
