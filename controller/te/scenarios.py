"""Flow-level benchmark scenarios: fabrics, training traffic, and how each policy fares.

Pure: fabrics come in already loaded, randomness is seeded, and the only clock is one the
caller passes in (to time placements). `dcilab bench` prints what `evaluate` returns.

Traffic (all between sites; flows inside a site never touch a wavelength):

``allreduce``
    Hierarchical all-reduce: each site's ranks reduce locally, then the sites run a ring
    all-reduce over DCI, each site sending about 2(k-1)/k x S bytes per step to its ring
    successor (NCCL), over a few rings (NCCL channels), from a few hosts, with a few
    queue pairs each: few flows per site pair, so little entropy for a hash.
``skewed``
    Host pairs drawn from a Zipf-skewed site popularity, elephant sizes log-normal.
``mixed``
    Elephants among many mice (short flows, a fixed small rate each). Mice are not
    placed by any policy: they stay on the switches' static hash, as in Hedera.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..fabric import Fabric, parse_fabric
from .demand import estimate_demands
from .fairshare import completion_times
from .optimum import solve_optimum
from .placement import (POLICIES, Candidates, DirectedLink, EcmpPlacer, Flow, LoadAwarePlacer,
                        Path, add_load, make_placer, max_utilization, paths_load)

MOUSE_BPS = 1e9          # assumption: a mouse's rate (its demand in the MLU), 1 Gb/s
BUCKET_BYTES = 8e9       # assumption: gradient bytes all-reduced per step (4 G bf16 params)
ELEPHANT_BYTES = 4e9     # assumption: median elephant size in `skewed` and `mixed`
MOUSE_BYTES = 1e6        # assumption: median mouse size


@dataclass(frozen=True)
class Scenario:
    """A fabric and the flows offered to it."""

    fabric: Fabric
    traffic: str
    flows: tuple[Flow, ...]

    @property
    def name(self) -> str:
        return f"{self.fabric.name}/{self.traffic}"

    @property
    def elephants(self) -> tuple[Flow, ...]:
        return tuple(f for f in self.flows if f.elephant)

    @property
    def mice(self) -> tuple[Flow, ...]:
        return tuple(f for f in self.flows if not f.elephant)


# --- fabrics ---------------------------------------------------------------------------------


def large_fabric_yaml(sites: int = 16, wavelengths: int = 8, ring_km: float = 100.0,
                      chord_km: float = 250.0, chord_span: int = 4) -> str:
    """A fabric file: `sites` sites in a ring, plus a chord from every other site.

    Ring neighbours are `ring_km` apart; every even-numbered site also reaches the site
    `chord_span` further round the ring over `chord_km`. Every line system carries
    `wavelengths` 400ZR+ wavelengths at 400G; hosts have 400G NICs.
    """
    lines = ["name: large-ring", "scale: 1.0e-4", "sites:"]
    names = [f"s{i + 1:02d}" for i in range(sites)]
    for name in names:
        lines += [f"  - name: {name}", "    spines: 2", "    leaves: 2", "    hosts_per_leaf: 4",
                  "    gateways: 2", "    fabric_gbps: 400"]
    lines.append("dci_links:")

    def link(a: int, b: int, km: float) -> None:
        lines.extend([f"  - name: {names[a]}-{names[b]}", f"    a: {names[a]}",
                      f"    b: {names[b]}", f"    fiber_km: {km}", "    module: 400ZR+",
                      f"    wavelengths: {wavelengths}", "    mode: 400G"])

    joined = set()
    for i in range(sites):
        link(i, (i + 1) % sites, ring_km)
        joined.add(frozenset((i, (i + 1) % sites)))
    for i in range(0, sites, 2):
        j = (i + chord_span) % sites
        if i != j and frozenset((i, j)) not in joined:    # a small ring: not twice
            link(i, j, chord_km)
            joined.add(frozenset((i, j)))
    return "\n".join(lines) + "\n"


def large_fabric(sites: int = 16, wavelengths: int = 8) -> Fabric:
    """The generated large fabric, checked by the real parser."""
    return parse_fabric(large_fabric_yaml(sites, wavelengths), "<generated large-ring>")


# --- traffic ---------------------------------------------------------------------------------


def _sport(rng: random.Random) -> int:
    return 49152 + rng.randrange(16384)    # RoCEv2 source port: an ephemeral per-QP value


def allreduce_flows(fabric: Fabric, rings: int = 1, hosts_per_pair: int = 2, qps: int = 1,
                    bucket_bytes: float = BUCKET_BYTES, seed: int = 1) -> list[Flow]:
    """The DCI flows of one step of a hierarchical ring all-reduce between sites.

    Ring r visits the sites in file order with stride ``1 + 2r`` (coprime strides only),
    so different rings cross different site pairs. On each ring edge, `hosts_per_pair`
    hosts each open `qps` flows to their peer.
    """
    rng = random.Random(seed)
    sites = [s.name for s in fabric.sites]
    k = len(sites)
    strides = [s for s in range(1, max(k, 2)) if np.gcd(s, k) == 1][:rings] or [1]
    per_site = 2 * (k - 1) / k * bucket_bytes
    size = per_site / (len(strides) * hosts_per_pair * qps)
    flows: list[Flow] = []
    for r, stride in enumerate(strides):
        for i, site in enumerate(sites):
            peer = sites[(i + stride) % k]
            senders, receivers = fabric.hosts_of(site), fabric.hosts_of(peer)
            for j in range(hosts_per_pair):
                h = (r * hosts_per_pair + j) % len(senders)
                for _ in range(qps):
                    flows.append(Flow(len(flows), senders[h].name, receivers[h].name,
                                      _sport(rng), size_bytes=size))
    return flows


def skewed_flows(fabric: Fabric, n: int, zipf: float = 1.2, seed: int = 2) -> list[Flow]:
    """`n` elephants between sites drawn by a Zipf(`zipf`) popularity, log-normal sizes."""
    rng = random.Random(seed)
    sites = [s.name for s in fabric.sites]
    rng.shuffle(sites)
    weights = [1.0 / (rank + 1) ** zipf for rank in range(len(sites))]
    flows = []
    while len(flows) < n:
        a, b = rng.choices(sites, weights, k=2)
        if a == b:
            continue
        src, dst = rng.choice(fabric.hosts_of(a)), rng.choice(fabric.hosts_of(b))
        size = ELEPHANT_BYTES * rng.lognormvariate(0.0, 0.8)
        flows.append(Flow(len(flows), src.name, dst.name, _sport(rng), size_bytes=size))
    return flows


def mixed_flows(fabric: Fabric, elephants: int, mice: int, seed: int = 3) -> list[Flow]:
    """`elephants` elephants and `mice` mice between random hosts of different sites."""
    rng = random.Random(seed)
    hosts = list(fabric.hosts.values())
    flows = []
    while len(flows) < elephants + mice:
        src, dst = rng.sample(hosts, 2)
        if src.site == dst.site:
            continue
        elephant = len(flows) < elephants
        size = ELEPHANT_BYTES if elephant else MOUSE_BYTES * rng.lognormvariate(0.0, 1.0)
        flows.append(Flow(len(flows), src.name, dst.name, _sport(rng), dport=4791,
                          size_bytes=size, elephant=elephant))
    rng.shuffle(flows)        # mice and elephants arrive interleaved
    return flows


def standard_scenarios(fabrics: Mapping[str, Fabric]) -> list[Scenario]:
    """The benchmark: every fabric given (two-dc, four-dc-ring, large-ring) x three traffics.

    Parameters are per fabric size: enough flows that they outnumber the wavelengths of
    the busiest site pairs, few enough that the exact optimum is within reach.
    """
    shape = {  # fabric -> (allreduce rings, hosts per pair, qps; skewed n; mixed elephants, mice)
        "two-dc": ((1, 3, 2), 12, (10, 200)),
        "four-dc-ring": ((2, 1, 4), 24, (16, 300)),
        "large-ring": ((2, 2, 1), 160, (96, 600)),
    }
    out = []
    for name, fabric in fabrics.items():
        (rings, hosts, qps), n_skewed, (n_eleph, n_mice) = shape.get(
            name, ((2, 2, 1), 8 * len(fabric.sites), (6 * len(fabric.sites), 40 * len(fabric.sites))))
        out.append(Scenario(fabric, "allreduce", tuple(allreduce_flows(fabric, rings, hosts, qps))))
        out.append(Scenario(fabric, "skewed", tuple(skewed_flows(fabric, n_skewed))))
        out.append(Scenario(fabric, "mixed", tuple(mixed_flows(fabric, n_eleph, n_mice))))
    return out


# --- evaluation ------------------------------------------------------------------------------


def natural_demands(flows: Sequence[Flow], candidates: Candidates,
                    mouse_bps: float = MOUSE_BPS) -> list[float]:
    """Demand (bps) of each flow: Hedera's estimate for elephants, `mouse_bps` for mice."""
    elephants = [i for i, f in enumerate(flows) if f.elephant]
    fractions = estimate_demands([(flows[i].src, flows[i].dst) for i in elephants])
    out = [mouse_bps] * len(flows)
    for i, fraction in zip(elephants, fractions):
        f = flows[i]
        out[i] = fraction * min(candidates.nic_bps(f.src), candidates.nic_bps(f.dst))
    return out


@dataclass
class PolicyResult:
    mlu: float
    ratio_to_optimum: float
    completion_s: float
    placement_ms_p50: float
    placement_ms_p99: float
    moves: int = 0          # elephants moved by revisits (loadaware)


@dataclass
class ScenarioResult:
    scenario: str
    sites: int
    wavelengths: int
    elephants: int
    mice: int
    optimum_mlu: float
    optimum_kind: str
    policies: dict[str, PolicyResult] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(scenario: Scenario, policies: Sequence[str] = POLICIES, max_stretch: float = 1.5,
             time_limit_s: float = 10.0, min_gain: float = 0.05,
             clock: Callable[[], float] | None = None) -> ScenarioResult:
    """Place the scenario's elephants with each policy; MLU, completion and the optimum.

    Elephants arrive in the scenario's order and are placed one by one onto the load of
    the mice (static hash) and the elephants before them; `loadaware` then revisits its
    placements until nothing moves. MLU is taken over the DCI wavelengths.
    Completion: every flow starts at once and shares max-min fairly the wavelengths and
    the host NICs it crosses. The optimum places the same elephants over the same
    candidates, with the mice where they are.

    Parameters
    ----------
    clock
        Seconds, e.g. ``time.perf_counter``, to time each placement; untimed if None.
    """
    fabric = scenario.fabric
    candidates = Candidates(fabric, max_stretch=max_stretch)
    candidates.precompute()
    flows = scenario.flows
    demand = natural_demands(flows, candidates)
    elephants = [i for i, f in enumerate(flows) if f.elephant]
    mice = [i for i, f in enumerate(flows) if not f.elephant]
    ecmp = EcmpPlacer(candidates)
    mice_paths = {i: ecmp.place(flows[i]) for i in mice}
    background = paths_load(list(mice_paths.values()), [demand[i] for i in mice])
    capacity = candidates.capacity_bps

    optimum = solve_optimum([demand[i] for i in elephants],
                            [candidates.for_flow(flows[i]) for i in elephants],
                            capacity, background, time_limit_s)
    result = ScenarioResult(scenario.name, len(fabric.sites), len(list(fabric.wavelengths())),
                            len(elephants), len(mice), optimum.mlu, optimum.kind)
    for policy in policies:
        placer = make_placer(policy, candidates, **({"min_gain": min_gain}
                                                    if policy == "loadaware" else {}))
        paths, timings, moves = _place_all(placer, flows, elephants, demand, background, clock)
        paths.update(mice_paths)
        load = paths_load([paths[i] for i in range(len(flows))], demand)
        mlu = max_utilization(load, capacity)
        result.policies[policy] = PolicyResult(
            mlu=mlu,
            ratio_to_optimum=optimum.mlu / mlu if mlu > 0 else 1.0,
            completion_s=_completion(flows, [paths[i] for i in range(len(flows))], candidates),
            placement_ms_p50=_percentile_ms(timings, 50),
            placement_ms_p99=_percentile_ms(timings, 99),
            moves=moves)
    return result


def _place_all(placer, flows: Sequence[Flow], elephants: Sequence[int], demand: Sequence[float],
               background: Mapping[DirectedLink, float], clock: Callable[[], float] | None
               ) -> tuple[dict[int, Path], list[float], int]:
    load = dict(background)
    paths: dict[int, Path] = {}
    timings = []
    for i in elephants:
        start = clock() if clock else 0.0
        paths[i] = placer.place(flows[i], demand[i], load)
        if clock:
            timings.append(clock() - start)
        add_load(load, paths[i], demand[i])
    moves = 0
    if isinstance(placer, LoadAwarePlacer):
        placed = {flows[i]: (demand[i], paths[i]) for i in elephants}
        index = {flows[i]: i for i in elephants}
        for move in placer.revisit(placed, load):
            paths[index[move.flow]] = move.new
            moves += 1
    return paths, timings, moves


def _completion(flows: Sequence[Flow], paths: Sequence[Path], candidates: Candidates) -> float:
    capacity: dict[DirectedLink, float] = dict(candidates.capacity_bps)
    full_paths = []
    for flow, path in zip(flows, paths):
        up, down = candidates.host_links(flow)
        capacity[up] = candidates.nic_bps(flow.src)
        capacity[down] = candidates.nic_bps(flow.dst)
        full_paths.append((up, *path, down))
    return completion_times([f.size_bytes for f in flows], full_paths, capacity).makespan_s


def _percentile_ms(seconds: Sequence[float], q: float) -> float:
    return float(np.percentile(seconds, q)) * 1e3 if seconds else 0.0


@dataclass
class PlacementTiming:
    """Incremental placement of many elephants on one fabric."""

    fabric: str
    elephants: int
    placement_ms_p50: float
    placement_ms_p99: float
    revisit_ms: float
    moves: int
    mlu_loadaware: float
    mlu_ecmp: float

    def to_dict(self) -> dict:
        return asdict(self)


def placement_timing(fabric: Fabric, clock: Callable[[], float], elephants: int = 1000,
                     max_stretch: float = 1.5, min_gain: float = 0.05,
                     seed: int = 4) -> PlacementTiming:
    """Place `elephants` elephants one at a time (each onto the load of those before it)."""
    candidates = Candidates(fabric, max_stretch=max_stretch)
    candidates.precompute()
    flows = mixed_flows(fabric, elephants, 0, seed=seed)
    demand = natural_demands(flows, candidates)
    placer = LoadAwarePlacer(candidates, min_gain=min_gain)
    load: dict[DirectedLink, float] = {}
    timings, placed = [], {}
    for flow, d in zip(flows, demand):
        start = clock()
        path = placer.place(flow, d, load)
        timings.append(clock() - start)
        add_load(load, path, d)
        placed[flow] = (d, path)
    start = clock()
    moves = placer.revisit(placed, load)
    revisit_s = clock() - start
    for move in moves:
        add_load(load, move.old, -placed[move.flow][0])
        add_load(load, move.new, placed[move.flow][0])
    ecmp = EcmpPlacer(candidates)
    ecmp_load = paths_load([ecmp.place(f) for f in flows], demand)
    return PlacementTiming(fabric.name, elephants, _percentile_ms(timings, 50),
                           _percentile_ms(timings, 99), revisit_s * 1e3, len(moves),
                           max_utilization(load, candidates.capacity_bps),
                           max_utilization(ecmp_load, candidates.capacity_bps))
