"""How long GNPy takes per line system, as `optics.qot` calls it (README, "Accuracy and
cost"): the first call with GNPy's import, then the median of 5 cold-cache runs for a few
line systems, and a cached answer.

    .venv/bin/python tools/qot_timing.py
"""

from __future__ import annotations

import statistics
import time

from dcilab.optics import qot
from dcilab.optics.catalog import DEFAULT_CATALOG
from dcilab.optics.line import LineSystem

MODULE = DEFAULT_CATALOG.module("400ZR+")
MODE = MODULE.mode("400G")
CASES = (("one 80 km span, 1 wavelength", LineSystem(80), 1),
         ("5 spans x 64 wavelengths", LineSystem(400), 64),
         ("15 spans x 64 wavelengths", LineSystem(1200), 64),
         ("5 spans x 64, launch power auto", LineSystem(400, launch_power_dbm="auto"), 64))


def cold_ms(line: LineSystem, wavelengths: int, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        qot.clear_cache()
        start = time.perf_counter()
        qot.line_qot(line, MODULE, MODE, wavelengths)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    start = time.perf_counter()
    qot.line_qot(LineSystem(80), MODULE, MODE, 1)
    print(f"first call, GNPy's import included: {time.perf_counter() - start:.2f} s")
    for name, line, wavelengths in CASES:
        print(f"{name}: {cold_ms(line, wavelengths):.1f} ms (median of 5, cold cache)")
    qot.line_qot(LineSystem(400), MODULE, MODE, 64)
    start = time.perf_counter()
    qot.line_qot(LineSystem(400), MODULE, MODE, 64)       # the same line again
    print(f"cached: {(time.perf_counter() - start) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
