"""A planned job's step with one line system cut (N-1): what a fibre cut costs the job.

Each of the plan's line systems is cut in turn (one of a pair's line systems of equal size
stands for the others). The sync then runs on what is left as the controller routes it:
a pair keeps its own line while one of its line systems is up, else takes the
latency-shortest detour over the other pairs' lines (within the controller's stretch), and
pairs sharing a line share it max-min, flow by flow (`fair_shares`). The step is the
planner's (`predict_job`) on the goodput each pair then carries and its way's latency.
"""

from __future__ import annotations

from ..te.placement import DEFAULT_MAX_STRETCH
from .planner import JobPlan, predict_job
from .traffic import GOODPUT_OF_LINE_RATE
from .workload import SyncFlow, fair_shares, pair_gbps_now, sync_ways


def line_cuts(plan: JobPlan, max_stretch: float = DEFAULT_MAX_STRETCH) -> dict:
    """`cuts`: one record per line system cut, the slowest step first (a sync with no way
    left first of all: `step_time_s` None); `intact`: the same model with nothing cut, the
    plan's own step but where a pair's line is passed by (the plan counts its own line, the
    controller routes round it: a reviewer's fibre cut that seemed to speed the job up)."""
    job, traffic = plan.job, plan.traffic
    per = job.spec.flows_per_pair
    flows = [SyncFlow("", "", 0, direction)
             for p in traffic.pairs
             for direction, sent in (((p.a, p.b), p.bytes_ab), ((p.b, p.a), p.bytes_ba))
             if sent > 0 for _ in range(per)]
    latency_ms = {}
    for c in plan.choices:
        latency_ms[(c.a, c.b)] = latency_ms[(c.b, c.a)] = c.one_way_latency_s * 1e3
    whole = {d: c.capacity_gbps for c in plan.choices for d in ((c.a, c.b), (c.b, c.a))}
    intact = _cut(plan, "", None, whole, flows, latency_ms, max_stretch)
    out = []
    for cut in plan.choices:
        sizes = set()
        for link in cut.links:
            if link.capacity_gbps in sizes:
                continue
            sizes.add(link.capacity_gbps)
            capacity = {}
            for c in plan.choices:
                left = c.capacity_gbps - (link.capacity_gbps if c is cut else 0.0)
                capacity[(c.a, c.b)] = capacity[(c.b, c.a)] = max(0.0, left)
            out.append(_cut(plan, link.name, cut, capacity, flows, latency_ms, max_stretch))
    return {"intact": intact,
            "cuts": sorted(out, key=lambda r: (r["step_time_s"] is not None,
                                               -(r["step_time_s"] or 0)))}


def _cut(plan: JobPlan, name: str, cut, capacity: dict, flows: list[SyncFlow],
         latency_ms: dict, max_stretch: float) -> dict:
    up = {d: g for d, g in capacity.items() if g > 0}
    ways = sync_ways([f.pair for f in flows], up, latency_ms, max_stretch)
    carried = pair_gbps_now(plan.job, flows,
                            fair_shares(flows, capacity, None, latency_ms, max_stretch))
    record = {"line_system": name, "a": cut.a if cut else "", "b": cut.b if cut else "",
              "capacity_left_gbps": round(capacity[(cut.a, cut.b)], 3) if cut else None,
              # the directions whose sync goes round other sites, and the sites it crosses
              "detours": [{"a": a, "b": b, "way": [a] + [hop[1] for hop in way]}
                          for (a, b), way in sorted(ways.items()) if len(way) > 1],
              "step_time_s": None, "compute_utilization": None, "sync_s": None}
    if any(g <= 0 for g in carried.values()):
        return record                     # a pair has no way left: its sync cannot end
    latency_s = {}
    for a, b in carried:
        way = ways.get((a, b)) or ways.get((b, a))
        latency_s[(a, b)] = sum(latency_ms[hop] for hop in way) / 1e3
    pred = predict_job(plan.job, plan.traffic,
                       {k: g * GOODPUT_OF_LINE_RATE for k, g in carried.items()}, latency_s)
    record.update(step_time_s=round(pred.step_time_s, 6),
                  compute_utilization=round(pred.compute_utilization, 6),
                  sync_s=round(pred.sync_s, 6))
    return record
