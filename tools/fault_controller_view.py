#!/usr/bin/env python3
"""What the controller hears when faults are injected into the emulation.

    flock /tmp/dcilab-emulation.lock timeout 600 .venv/bin/python tools/fault_controller_view.py [FILE]

Starts the controller and the emulation of FILE (default topologies/two-dc.yaml), then
injects each fault in turn through the same API as `dcilab fault` (Lab.faults), and prints
every controller log line about ports and switches that arrives within 2 s, with its delay
from the injection (ms, as the line reached this process), then restores it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from dcilab.fabric import load_fabric
from dcilab.lab import Lab

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "topologies" / "two-dc.yaml"
    fabric = load_fabric(path)
    heard: list[tuple[float, str]] = []

    def echo(line: str) -> None:
        if "controller |" in line and any(k in line for k in ("port", "disconnect", "connect",
                                                                "programmed", "ready")):
            heard.append((time.time(), line.split("controller |", 1)[1].strip()))

    link = next(iter(fabric.line_systems))
    w1 = f"{link}.w1"
    site = fabric.link(w1).site_a
    gateway = fabric.link(w1).b.node
    cases = [
        (f"cut {w1}", lambda f: f.cut(w1), lambda f: f.restore(w1)),
        (f"dark {w1} --end {site}", lambda f: f.dark(w1, site), lambda f: f.restore(w1)),
        (f"gray {w1}", lambda f: f.gray(w1), lambda f: f.restore(w1)),
        (f"switch-down {fabric.sites[0].name}-spine1",
         lambda f: f.switch_down(f"{fabric.sites[0].name}-spine1"),
         lambda f: f.switch_up(f"{fabric.sites[0].name}-spine1")),
        (f"switch-down {gateway}", lambda f: f.switch_down(gateway),
         lambda f: f.switch_up(gateway)),
    ]
    with Lab(fabric, path, say=echo, echo_controller=True) as lab:
        time.sleep(1.0)
        for name, inject, undo in cases:
            for phase, action in ((name, inject), ("  restore", undo)):
                heard.clear()
                t = time.time()
                action(lab.faults)
                time.sleep(2.0)
                print(f"{phase}:")
                for when, line in heard:
                    print(f"    +{(when - t) * 1000:7.1f} ms  {line[line.find(' ') + 1:]}")
                if not heard:
                    print("    (nothing)")
            time.sleep(3.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
