#!/usr/bin/env python3
"""A wavelength cut in the middle of a training sync, and lit in the middle of the next.

    flock /tmp/dcilab-emulation.lock timeout 900 .venv/bin/python tools/train_midsync.py \
        FABRIC --job JOB --wavelength NAME [--at S] [--stretch X] [--steps N] [--json F]

Runs `dcilab train`'s emulation of JOB on FABRIC under loadaware (4 steps by default), cuts
the wavelength NAME (`dcilab fault cut`) S seconds into step 2's sync (2 s by default) and
lights it S seconds into step 3's. Prints `train`'s own lines, then per step its sync time,
how the DCI changed during its sync or as it started, and the queue drops on each
wavelength direction: what a fault in the middle of a sync costs.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

from dcilab.bench.training import DciWatch, emulate
from dcilab.emulation.faults import Faults
from dcilab.plan import read_job


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fabric", type=Path)
    parser.add_argument("--job", type=Path, required=True)
    parser.add_argument("--wavelength", required=True, help="the wavelength to cut")
    parser.add_argument("--at", type=float, default=2.0,
                        help="seconds into the sync (default 2)")
    parser.add_argument("--stretch", type=float, default=15.0)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--json", type=Path, help="write train's report here")
    args = parser.parse_args()
    job = read_job(args.job)
    step = job.spec.step
    delay = (step.compute_s - step.overlap_s) * args.stretch + args.at
    during_sync, timers = DciWatch.during_sync, []

    def with_fault(watch, n, pace, grace_s, **kw):
        # called as step n starts, before its compute phase
        act = {2: "cut", 3: "restore"}.get(n)
        if act:
            def fault(act=act):
                log(act, args.wavelength)
                getattr(Faults.attach(), act)(args.wavelength)
            timers.append(threading.Timer(delay, fault))
            timers[-1].start()
        return during_sync(watch, n, pace, grace_s, **kw)
    DciWatch.during_sync = with_fault
    try:
        report = emulate(args.fabric, job, ["loadaware"], args.steps, args.stretch, None, log)
    finally:
        for timer in timers:
            timer.cancel()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    for s in report["policies"]["loadaware"]["steps"]:
        drops = s.get("wavelength_drops", {})
        log(f"step {s['step']}: sync {s['sync_s']:.2f} s; during its sync: "
            f"{s.get('dci_changed_during_sync') or '-'}; as it started: "
            f"{s.get('dci_changed', {}).get('dci') or 'whole'}; queue drops "
            f"{sum(drops.values())} {({k: v for k, v in drops.items() if v})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
