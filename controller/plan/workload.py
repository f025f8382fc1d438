"""A planned job's sync as flows between the hosts of a fabric, and what the plan predicts
for that fabric.

Used by `dcilab train` (real flows on the emulation) and `dcilab bench --training` (the
same flows on the max-min flow model). The sync of every loaded direction of every site
pair is split over `flows_per_pair` parallel flows (NCCL channels), from the hosts of the
sending site round-robin to the hosts of the receiving site.

Time on the emulation runs `stretch` times slower than the job's: compute and overlap
last `stretch` x as long and each flow carries bytes x scale x stretch, so on
wavelengths of rate x scale every ratio (utilization, exposed share) is the job's, while
the syncs last long enough for the controller's 1 s polls to see them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from ..fabric import Fabric
from ..fabric.model import scaled_mbps
from ..te.fairshare import max_min_rates
from ..te.long_ways import fabric_lines
from ..te.placement import DEFAULT_MAX_STRETCH
from .hardware import whole_flow_share
from .load import Job
from .performance import Prediction
from .planner import predict_job
from .traffic import JobTraffic, job_traffic, offered_gbps


@dataclass(frozen=True)
class SyncFlow:
    src: str          # host name
    dst: str
    bytes: int
    pair: tuple[str, str]     # (sending site, receiving site)


class WorkloadError(ValueError):
    """The job does not fit the fabric (a site missing, no direct DCI link)."""


def emulated_sync_mbps(job: Job, fabric: Fabric) -> float:
    """What the job's sync offers the emulation in all, Mb/s (emulated): every loaded
    direction of its site pairs at the fabric's direct capacity, scaled."""
    traffic = job_traffic(job)
    return offered_gbps(traffic, pair_capacity_gbps(job, fabric, traffic)) * 1000 * fabric.scale


def pair_capacity_gbps(job: Job, fabric: Fabric, traffic: JobTraffic) -> dict:
    """The fabric's direct DCI capacity of every site pair the job's traffic crosses."""
    have = fabric.capacity_by_site_pair()
    sites = {s.name for s in fabric.sites}
    missing = [s for s in job.site_names if s not in sites]
    if missing:
        raise WorkloadError(f"job {job.name!r}: fabric {fabric.name!r} lacks these sites "
                            f"of the job's `sites:`: {', '.join(missing)} (the fabric's: "
                            f"{', '.join(sorted(sites))}); `dcilab plan JOB --fabric-out "
                            f"F.yaml` writes a fabric with the job's sites")
    out = {}
    for p in traffic.pairs:
        cap = have.get(tuple(sorted((p.a, p.b))))
        if not cap:
            raise WorkloadError(f"fabric {fabric.name!r} has no DCI link between {p.a} and {p.b}")
        out[(p.a, p.b)] = cap
    return out


def sync_flows(job: Job, fabric: Fabric, byte_factor: float,
               flows_per_pair: int | None = None) -> list[SyncFlow]:
    """Every flow of one sync, bytes scaled by `byte_factor` (scale x stretch)."""
    traffic = job_traffic(job)
    pair_capacity_gbps(job, fabric, traffic)       # the sites and links exist
    per = flows_per_pair or job.spec.flows_per_pair
    flows = []
    for p in traffic.pairs:
        for (a, b), sent in (((p.a, p.b), p.bytes_ab), ((p.b, p.a), p.bytes_ba)):
            if sent <= 0:
                continue
            senders, receivers = fabric.hosts_of(a), fabric.hosts_of(b)
            size = max(1, round(sent * byte_factor / per))
            for i in range(per):
                flows.append(SyncFlow(senders[i % len(senders)].name,
                                      receivers[i % len(receivers)].name, size, (a, b)))
    return flows


def share_mbps(fabric: Fabric, flows: list[SyncFlow],
               max_stretch: float = DEFAULT_MAX_STRETCH) -> list[float]:
    """Each flow's share of its site pair's DCI capacity, in emulated Mb/s: what a lossless
    transport that shares fairly gives each flow of the best placement of whole flows
    (`whole_flow_share`), which is the pair's capacity over its F flows where they divide
    evenly over equal wavelengths. At the capacity over F, 8 flows on 3 wavelengths put 3
    flows' 450 Gb/s on a 400G one however they were placed, and it dropped packets every
    sync (an ML-infra tester's, 115 % of the prediction). A pair whose own line is over
    `max_stretch` x the shortest way between its sites takes that way (`fair_shares`)."""
    shares = fair_shares(flows, directed_capacity_gbps(fabric), directed_wavelengths(fabric),
                         directed_latency_ms(fabric), max_stretch)
    return [scaled_mbps(fabric, g) for g in shares]


def directed_latency_ms(fabric: Fabric) -> dict[tuple[str, str], float]:
    """Each direction between two sites joined directly: its shortest line's latency (ms)."""
    out: dict[tuple[str, str], float] = {}
    for _, a, b, ms in fabric_lines(fabric):
        for d in ((a, b), (b, a)):
            out[d] = min(ms, out.get(d, ms))
    return out


def directed_wavelengths(fabric: Fabric) -> dict[tuple[str, str], list[float]]:
    """Each direction between two sites joined directly: its wavelengths' rates (Gb/s)."""
    out: dict[tuple[str, str], list[float]] = {}
    for link in fabric.wavelengths():
        for d in ((link.site_a, link.site_b), (link.site_b, link.site_a)):
            out.setdefault(d, []).append(link.rate_gbps)
    return out


def directed_capacity_gbps(fabric: Fabric) -> dict[tuple[str, str], float]:
    """Each direction between two sites joined directly: its DCI capacity (Gb/s, real),
    every wavelength up."""
    out = {}
    for (a, b), gbps in fabric.capacity_by_site_pair().items():
        out[(a, b)] = out[(b, a)] = gbps
    return out


def fair_shares(flows: list[SyncFlow], directed_gbps: Mapping[tuple[str, str], float],
                wavelengths: Mapping[tuple[str, str], list[float]] | None = None,
                latency_ms: Mapping[tuple[str, str], float] | None = None,
                max_stretch: float = DEFAULT_MAX_STRETCH) -> list[float]:
    """Each sync flow's max-min fair share (Gb/s, real) of a DCI whose directions between
    sites have `directed_gbps` (the wavelengths up now), every flow sending at once; with
    `wavelengths` (each direction's rates up now), no more on any hop of its way than the
    best placement of the whole flows crossing it gives (`whole_flow_share`).

    A flow takes its pair's direct wavelengths while one of them is up, else the detour
    through the fewest sites with capacity each way (the controller restores a pair whose
    line systems are all down the same way); 0 where no way is left. With `latency_ms`
    (each direction's shortest line; one not given is never taken), ways are the
    latency-shortest instead, as the controller's, and a pair whose own line is over
    `max_stretch` x the shortest way takes that way: the routes pass its line by
    (`te/long_ways.py`; paced for its own line, a passed-by pair's flows overfilled the way
    round, 2 153-4 229 drops a sync: a re-tester's). A direction's capacity is every line
    of it: a parallel line the routes pass by is counted (said as a limit in the README).
    On the whole fabric, with its wavelengths and latencies, this is `share_mbps`."""
    up = {d: gbps for d, gbps in directed_gbps.items() if gbps > 0}
    routes = sync_ways([f.pair for f in flows], up, latency_ms, max_stretch)
    reachable = [i for i, f in enumerate(flows) if routes[f.pair]]
    shares = [0.0] * len(flows)
    if reachable:
        rates = max_min_rates([routes[flows[i].pair] for i in reachable], up)
        for i, rate in zip(reachable, rates):
            shares[i] = rate
    if wavelengths is not None:
        # every hop of a flow's way, its own line or a detour's, holds the flows that
        # cross it whole (a re-tester: detoured flows paced at the share of the sum, two
        # on one of the detour's wavelengths overfilled it, ~680 drops a sync)
        crossing: dict[tuple[str, str], int] = {}
        for i in reachable:
            for hop in routes[flows[i].pair]:
                crossing[hop] = crossing.get(hop, 0) + 1
        for i in reachable:
            for hop in routes[flows[i].pair]:
                whole = whole_flow_share(wavelengths.get(hop, []), crossing[hop])
                shares[i] = min(shares[i], whole)
    return shares


def sync_ways(pairs, up: Mapping[tuple[str, str], float],
              latency_ms: Mapping[tuple[str, str], float] | None = None,
              max_stretch: float = DEFAULT_MAX_STRETCH) -> dict[tuple[str, str], list]:
    """The way each (sending site, receiving site) of `pairs` takes over the directions
    `up` (those with capacity), as hops [(a, c), (c, b)]; [] where none is left. See
    `fair_shares`."""
    graph = nx.DiGraph(sorted(up))
    if latency_ms is not None:
        nx.set_edge_attributes(graph, {d: latency_ms.get(d, math.inf) for d in up}, "ms")
    routes: dict[tuple[str, str], list] = {}
    for pair in pairs:
        if pair not in routes:
            try:
                sites = nx.shortest_path(graph, *pair,
                                         weight="ms" if latency_ms is not None else None)
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                sites = []
            if (latency_ms is not None and len(sites) > 2 and pair in up
                    and latency_ms.get(pair, math.inf) <= max_stretch * nx.path_weight(
                        graph, sites, "ms")):
                sites = list(pair)         # its own line, within the stretch: steered there
            routes[pair] = list(zip(sites, sites[1:]))
    return routes


def pair_gbps_now(job: Job, flows: list[SyncFlow], shares: list[float]) -> dict:
    """What each of the job's site pairs carries at once with these `fair_shares`, in the
    planner's terms: the slower of its loaded directions (a pair's capacity serves both)."""
    sent: dict[tuple[str, str], float] = {}
    for f, gbps in zip(flows, shares):
        sent[f.pair] = sent.get(f.pair, 0.0) + gbps
    out = {}
    for p in job_traffic(job).pairs:
        loaded = [sent[d] for d in ((p.a, p.b), (p.b, p.a)) if d in sent]
        out[(p.a, p.b)] = min(loaded) if loaded else 0.0
    return out


def fabric_prediction(job: Job, fabric: Fabric, stretch: float = 1.0) -> Prediction:
    """The planner's step time on this fabric's capacities, with time stretched.

    At the wavelengths' full rate: the emulation's goodput is its own (TCP, measured by
    `train`'s calibration flow), not the RoCE goodput the plan sizes with. Latency is
    left out: the emulation cannot delay packets (no netem here), and the
    ring's latencies are microseconds to milliseconds against syncs of seconds.
    """
    traffic = job_traffic(job)
    capacity = pair_capacity_gbps(job, fabric, traffic)
    zero = {k: 0.0 for k in capacity}
    return predict_job(job, traffic, capacity, zero, byte_factor=stretch, time_factor=stretch)


def unsplittable_prediction(job: Job, fabric: Fabric, stretch: float = 1.0,
                            flows_per_pair: int | None = None) -> Prediction:
    """As `fabric_prediction`, but each flow stays on one wavelength: F equal flows over W
    equal wavelengths finish after ceil(F/W) flows' bytes on one wavelength (F < W leaves
    wavelengths idle; unequal ones: `whole_flow_share`). The best a placement of unsplit
    flows on each pair's own wavelengths can do (one ring leaves the reverse directions
    idle: a detour over them can do better)."""
    traffic = job_traffic(job)
    capacity = pair_capacity_gbps(job, fabric, traffic)
    per = flows_per_pair or job.spec.flows_per_pair
    effective = {}
    for (a, b), cap in capacity.items():
        waves = [l for l in fabric.wavelengths() if {l.site_a, l.site_b} == {a, b}]
        effective[(a, b)] = whole_flow_share([l.rate_gbps for l in waves], per) * per
    zero = {k: 0.0 for k in capacity}
    return predict_job(job, traffic, effective, zero, byte_factor=stretch, time_factor=stretch)


def auto_stretch(job: Job, fabric: Fabric, sync_seconds: float) -> float:
    """The stretch at which the predicted sync lasts `sync_seconds` on this fabric."""
    sync = fabric_prediction(job, fabric).sync_s
    return sync_seconds / sync if sync > 0 else 1.0
