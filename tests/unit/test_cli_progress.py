"""The progress line of long work (cli/progress.py): silent when quick."""

from __future__ import annotations

import io

from dcilab.cli.progress import Progress


def _run(times: list[float], total: int) -> list[str]:
    clock = iter([0.0] + times)
    out = io.StringIO()
    progress = Progress("dcilab check: optical model (GNPy), line systems", after_s=3.0,
                        every_s=3.0, out=out, clock=lambda: next(clock))
    for done in range(1, total + 1):
        progress(done, total)
    return out.getvalue().splitlines()


def test_quick_work_prints_nothing():
    assert _run([0.5, 1.0, 2.9], 3) == []


def test_long_work_prints_every_few_seconds_and_at_the_end():
    assert _run([1.0, 3.2, 4.0, 6.5, 7.0], 5) == [
        "dcilab check: optical model (GNPy), line systems: 2 of 5 (3 s)",
        "dcilab check: optical model (GNPy), line systems: 4 of 5 (6 s)",
        "dcilab check: optical model (GNPy), line systems: 5 of 5 (7 s)"]
