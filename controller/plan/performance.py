"""Step time and compute utilization of a job on given DCI capacities.

A sync of B bytes on a direction of capacity C takes B x 8 / C plus the latencies it waits
for (`JobTraffic.latency_s`: a ring's 2(M-1) hops of that pair, a chain's round trip over
every stage boundary); the slowest direction ends the sync (T). The sync starts
`overlap_s` before the compute of its step ends, so the exposed part is max(0, T -
overlap_s), paid once every K steps:

    step time = compute_s + max(0, T - overlap_s) / K
    compute utilization = compute_s / step time
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .traffic import JobTraffic, Pair


@dataclass(frozen=True)
class Prediction:
    sync_s: float              # T: the slowest direction's transfer plus latencies
    exposed_s: float           # per sync
    step_time_s: float         # averaged over the K steps of a sync period
    compute_utilization: float

    def to_dict(self) -> dict:
        return {"sync_s": round(self.sync_s, 6), "exposed_s": round(self.exposed_s, 6),
                "step_time_s": round(self.step_time_s, 6),
                "compute_utilization": round(self.compute_utilization, 6)}


def sync_time_s(traffic: JobTraffic, capacity_gbps: Mapping[Pair, float],
                one_way_latency_s: Mapping[Pair, float], byte_factor: float = 1.0) -> float:
    """T: when the last direction of the sync is done. Pairs are keyed (a, b) as in
    `traffic`; `byte_factor` scales the bytes (the emulation's scale x stretch)."""
    worst = 0.0
    for p in traffic.pairs:
        cap = capacity_gbps[(p.a, p.b)] * 1e9
        for sent in (p.bytes_ab, p.bytes_ba):
            if sent <= 0:
                continue
            t = sent * byte_factor * 8 / cap + traffic.latency_s(one_way_latency_s, (p.a, p.b))
            worst = max(worst, t)
    return worst


def predict(compute_s: float, overlap_s: float, every: int, sync_s: float) -> Prediction:
    exposed = max(0.0, sync_s - overlap_s)
    step = compute_s + exposed / every
    return Prediction(sync_s, exposed, step, compute_s / step)
