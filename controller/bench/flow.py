"""`dcilab bench [--json]`: the placement policies against the optimum, flow level (no emulation)."""

from __future__ import annotations

import json
import sys
import time

from ..argtypes import POSITIVE_SECONDS, checked
from ..fabric import FabricError, load_fabric
from ..resources import topology_path
from ..te.placement import POLICIES
from ..te.scenarios import (ScenarioResult, evaluate, large_fabric, placement_timing,
                            standard_scenarios)
from . import BenchError

REPOSITORY_FABRICS = ("two-dc", "four-dc-ring")


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _print_scenario(r: ScenarioResult) -> None:
    kind = "exact (MILP)" if r.optimum_kind == "milp" else "lower bound (LP relaxation)"
    print(f"\n{r.scenario}: {r.sites} sites, {r.wavelengths} wavelengths, {r.elephants} elephants, "
          f"{r.mice} mice; optimum MLU {r.optimum_mlu:.3f}, {kind}")
    print(f"  {'policy':<10} {'MLU':>7} {'ratio':>6} {'completion s':>13} "
          f"{'place p50 ms':>13} {'p99 ms':>7} {'moves':>6}")
    for name, p in r.policies.items():
        print(f"  {name:<10} {p.mlu:>7.3f} {p.ratio_to_optimum:>6.3f} {p.completion_s:>13.3f} "
              f"{p.placement_ms_p50:>13.3f} {p.placement_ms_p99:>7.3f} {p.moves:>6}")


def add_arguments(p) -> None:
    p.add_argument("--time-limit", type=POSITIVE_SECONDS, default=10.0, metavar="S",
                   help="MILP time limit per scenario, seconds (default 10)")
    p.add_argument("--max-stretch", type=checked(float, lambda v: 1 <= v <= 100, "a number",
                                                 "must be in [1, 100]"), default=1.5,
                   metavar="X",
                   help="candidate paths within this factor of the shortest latency (default 1.5)")
    p.add_argument("--min-gain", type=checked(float, lambda v: 0 <= v < 1, "a number",
                                              "must be from 0 to under 1"), default=0.05,
                   metavar="F",
                   help="loadaware hysteresis: move an elephant only if the utilization along "
                        "its path drops by more than this (default 0.05)")
    p.add_argument("--elephants", type=checked(int, lambda v: 1 <= v <= 100_000,
                                               "a whole number", "must be 1 to 100000"),
                   default=1000, metavar="N",
                   help="elephants placed one by one in the placement-time measurement (default 1000)")


def run(args) -> int:
    try:
        fabrics = {name: load_fabric(topology_path(name)) for name in REPOSITORY_FABRICS}
    except FabricError as exc:
        raise BenchError(str(exc))
    large = large_fabric()
    fabrics[large.name] = large
    started = time.perf_counter()
    results = []
    for scenario in standard_scenarios(fabrics):
        t0 = time.perf_counter()
        result = evaluate(scenario, POLICIES, max_stretch=args.max_stretch,
                          time_limit_s=args.time_limit, min_gain=args.min_gain,
                          clock=time.perf_counter)
        results.append(result)
        _progress(f"{scenario.name}: {result.elephants} elephants, {result.mice} mice, "
                  f"optimum {result.optimum_kind}, {time.perf_counter() - t0:.1f} s")
        if not args.json:
            _print_scenario(result)
    timing = placement_timing(large, time.perf_counter, elephants=args.elephants,
                              max_stretch=args.max_stretch, min_gain=args.min_gain)
    _progress(f"placed {timing.elephants} elephants one by one on {timing.fabric}")
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({"max_stretch": args.max_stretch, "milp_time_limit_s": args.time_limit,
                          "min_gain": args.min_gain,
                          "scenarios": [r.to_dict() for r in results],
                          "placement": timing.to_dict(), "elapsed_s": round(elapsed, 3)},
                         indent=2))
    else:
        print(f"\nplacing {timing.elephants} elephants one by one on {timing.fabric} (loadaware): "
              f"p50 {timing.placement_ms_p50:.3f} ms, p99 {timing.placement_ms_p99:.3f} ms per "
              f"elephant; revisit {timing.revisit_ms:.1f} ms, {timing.moves} moves; MLU "
              f"{timing.mlu_loadaware:.3f} (ecmp {timing.mlu_ecmp:.3f})")
        print(f"done in {elapsed:.1f} s")
    return 0
