"""Where an elephant goes: candidate paths between sites, and three placement policies.

The resources placement chooses among are the DCI wavelengths; each is a *directed link*
``(link name, sending switch)``, so the two directions of a wavelength are separate
resources. Inside a site the leaf -> spine -> gateway hops are abstracted away: the
fabric files size them so that the wavelengths are the bottleneck, and which spine a flow
crosses does not change which wavelengths it loads. A path is the tuple of directed
wavelengths a flow crosses, one per DCI hop, in order.

Candidates (`Candidates`) are enumerated per site pair at the level of line systems, where
the parallel wavelengths of one line system are one edge: routes over sites come from
Yen's k shortest loopless paths (networkx ``shortest_simple_paths``), each is expanded
over the parallel line systems between consecutive sites, and a route is kept when its
latency is within ``max_stretch`` of the shortest. A route's wavelength choices (one per
hop) are never listed: they are picked hop by hop. Routes are cached per site pair.

Policies, all with ``place(flow, demand_bps, load) -> path``:

``ecmp``
    What the switches do by themselves: a static hash of the 5-tuple (CRC-32) picks one of
    the equal-latency routes and wavelengths. Few flows (low entropy) collide.
``shortest``
    One latency-shortest route, and one wavelength per site pair: every flow of a site
    pair shares it.
``loadaware``
    The route within ``max_stretch`` and the wavelength on each of its hops that give the
    lowest resulting utilization along the path, from the elephant's estimated natural
    demand (see `demand`); `LoadAwarePlacer.revisit` moves placed elephants, with
    hysteresis, as flows come and go. This is Hedera's Global First Fit made best fit.

References
----------
J. Y. Yen, "Finding the K Shortest Loopless Paths in a Network", Management Science 17(11),
1971. M. Al-Fares et al., "Hedera: Dynamic Flow Scheduling for Data Center Networks",
NSDI 2010.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice, product

import networkx as nx

from ..fabric.model import DCI, HOST, INTRA_SITE_LATENCY_MS, Fabric, Link
from .paths import PathEngine, latency_ns

DirectedLink = tuple[str, str]      # (link name, sending switch or host)
Path = tuple[DirectedLink, ...]     # directed wavelengths crossed, one per DCI hop

class Policy(StrEnum):
    """Where elephants go (see README, Elephant steering); the one definition."""
    ECMP = "ecmp"
    SHORTEST = "shortest"
    LOADAWARE = "loadaware"


POLICIES = tuple(Policy)
# A route is a candidate when its latency is within this factor of the shortest's.
DEFAULT_MAX_STRETCH = 1.5
ROCE_V2_PORT = 4791
UDP = 17

_INTRA_HOP_NS = max(1, round(INTRA_SITE_LATENCY_MS * 1e6))   # as paths.latency_ns rounds it


@dataclass(frozen=True)
class Flow:
    """A transport flow between two hosts: what a 5-tuple hash sees, and its size.

    ``id`` keeps flows with identical 5-tuples apart in a simulation; it is not hashed.
    """

    id: int
    src: str                 # host name, e.g. dc1-h1
    dst: str
    sport: int
    dport: int = ROCE_V2_PORT
    proto: int = UDP
    size_bytes: float = 0.0
    elephant: bool = True


@dataclass(frozen=True)
class Hop:
    """One DCI hop of a route: a line system crossed from one site to the next."""

    line_system: str
    from_site: str
    to_site: str
    wavelengths: tuple[DirectedLink, ...]   # directed, in grid order


@dataclass(frozen=True)
class Route:
    """A loopless sequence of line systems from one site to another."""

    hops: tuple[Hop, ...]
    latency_ns: int

    @property
    def size(self) -> int:
        """How many paths the route holds: the product of its hops' wavelength counts."""
        return math.prod(len(h.wavelengths) for h in self.hops)

    def nth_path(self, index: int) -> Path:
        """The `index`-th path of the route (mixed radix over hops, last hop fastest)."""
        out = []
        for hop in reversed(self.hops):
            index, k = divmod(index, len(hop.wavelengths))
            out.append(hop.wavelengths[k])
        return tuple(reversed(out))


@dataclass(frozen=True)
class _LineSystem:
    name: str
    sites: tuple[str, str]
    gateways: dict[str, str]          # site -> its gateway switch
    wavelengths: tuple[Link, ...]
    latency_ns: int


class Candidates:
    """Candidate routes between sites, within `max_stretch` of the shortest latency.

    Parameters
    ----------
    fabric
        The expanded fabric.
    max_stretch
        A route is a candidate when its latency is at most ``max_stretch`` times the
        shortest route's between the same sites.
    max_routes
        At most this many routes per site pair (the lowest-latency ones).
    """

    def __init__(self, fabric: Fabric, max_stretch: float = DEFAULT_MAX_STRETCH, max_routes: int = 8,
                 engine: PathEngine | None = None):
        if max_stretch < 1.0:
            raise ValueError(f"max_stretch must be at least 1, got {max_stretch}")
        self.fabric = fabric
        self.max_stretch = max_stretch
        self.max_routes = max_routes
        # The path engine says which wavelengths and gateways are up, and at what rate.
        self.engine = engine or PathEngine(fabric)
        self._all_line_systems = _line_systems(fabric)
        self._nic_bps = {l.name: l.rate_gbps * 1e9 for l in fabric.links if l.kind == HOST}
        self._version = -1
        self._sync()

    def _sync(self) -> None:
        """Follow the engine: what is up, and at what rate, decides the candidates."""
        if self._version == self.engine.version:
            return
        self._version = self.engine.version
        self._line_systems = {}
        for name, ls in self._all_line_systems.items():
            live = tuple(w for w in ls.wavelengths if self.engine.in_service(w))
            if live:
                self._line_systems[name] = _LineSystem(ls.name, ls.sites, ls.gateways, live,
                                                       ls.latency_ns)
        self.capacity_bps: dict[DirectedLink, float] = {}
        for ls in self._all_line_systems.values():
            for link in ls.wavelengths:
                rate = self.engine.rate_gbps(link) * 1e9
                self.capacity_bps[(link.name, link.a.node)] = rate
                self.capacity_bps[(link.name, link.b.node)] = rate
        self._site_graph = nx.Graph()
        self._site_graph.add_nodes_from(s.name for s in self.fabric.sites)
        for ls in self._line_systems.values():
            a, b = ls.sites
            w = self._site_graph.edges[a, b]["weight"] if self._site_graph.has_edge(a, b) else None
            if w is None or ls.latency_ns < w:
                self._site_graph.add_edge(a, b, weight=ls.latency_ns)
        self._routes: dict[tuple[str, str], tuple[Route, ...]] = {}
        self._equal_cost: dict[tuple[str, str], tuple[Route, ...]] = {}

    def site_of(self, host: str) -> str:
        return self.fabric.hosts[host].site

    def for_flow(self, flow: Flow) -> tuple[Route, ...]:
        return self.routes(self.site_of(flow.src), self.site_of(flow.dst))

    def routes(self, src_site: str, dst_site: str) -> tuple[Route, ...]:
        """Candidate routes, lowest latency first (ties by line-system names). Cached."""
        self._sync()
        key = (src_site, dst_site)
        if key not in self._routes:
            self._routes[key] = self._enumerate(src_site, dst_site)
        return self._routes[key]

    def precompute(self) -> None:
        """Enumerate the routes of every site pair now (e.g. at start-up), not on first use."""
        for a in self._site_graph:
            for b in self._site_graph:
                self.equal_cost(a, b)

    def equal_cost(self, src_site: str, dst_site: str) -> tuple[Route, ...]:
        """The latency-shortest routes: those the switches' select groups hash over."""
        self._sync()
        key = (src_site, dst_site)
        if key not in self._equal_cost:
            routes = self.routes(src_site, dst_site)
            self._equal_cost[key] = tuple(r for r in routes if r.latency_ns == routes[0].latency_ns)
        return self._equal_cost[key]

    def host_links(self, flow: Flow) -> tuple[DirectedLink, DirectedLink]:
        """The sender's NIC (host -> leaf) and the receiver's (leaf -> host), directed."""
        return (flow.src, flow.src), (flow.dst, self.fabric.hosts[flow.dst].leaf)

    def nic_bps(self, host: str) -> float:
        """The rate of a host's NIC (its access link), bps."""
        return self._nic_bps[host]

    def _enumerate(self, src: str, dst: str) -> tuple[Route, ...]:
        if src == dst:
            return (Route((), 0),)
        if not nx.has_path(self._site_graph, src, dst):
            return ()
        found: list[Route] = []
        best = math.inf
        site_paths = nx.shortest_simple_paths(self._site_graph, src, dst, weight="weight")
        for sites in islice(site_paths, 64):
            lower_bound = nx.path_weight(self._site_graph, sites, "weight")
            if lower_bound > self.max_stretch * best:
                break  # Yen yields routes in non-decreasing latency: none further qualifies
            for route in self._expand(sites):
                found.append(route)
                best = min(best, route.latency_ns)
        kept = [r for r in found if r.latency_ns <= self.max_stretch * best]
        kept.sort(key=lambda r: (r.latency_ns, [h.line_system for h in r.hops]))
        return tuple(kept[: self.max_routes])

    def _expand(self, sites: list[str]) -> Iterable[Route]:
        """Every route over `sites`, one line system chosen between each consecutive pair."""
        choices = [[ls for ls in self._line_systems.values() if set(ls.sites) == {a, b}]
                   for a, b in zip(sites, sites[1:])]
        for systems in product(*choices):
            hops, total, gateway_in = [], 2 * _INTRA_HOP_NS, None   # leaf->spine->gw at the source
            for ls, (a, b) in zip(systems, zip(sites, sites[1:])):
                if gateway_in is not None and gateway_in != ls.gateways[a]:
                    total += 2 * _INTRA_HOP_NS                       # gw -> spine -> gw in transit
                sender = ls.gateways[a]
                hops.append(Hop(ls.name, a, b, tuple((w.name, sender) for w in ls.wavelengths)))
                total += ls.latency_ns
                gateway_in = ls.gateways[b]
            total += 2 * _INTRA_HOP_NS                                # gw->spine->leaf at the end
            yield Route(tuple(hops), total)


def _line_systems(fabric: Fabric) -> dict[str, _LineSystem]:
    by_name: dict[str, list[Link]] = {}
    for link in fabric.links:
        if link.kind == DCI and link.line_system:
            by_name.setdefault(link.line_system, []).append(link)
    out = {}
    for name, links in by_name.items():
        first = links[0]
        out[name] = _LineSystem(
            name=name, sites=(first.site_a, first.site_b),
            gateways={first.site_a: first.a.node, first.site_b: first.b.node},
            wavelengths=tuple(links), latency_ns=latency_ns(first))
    return out


# --- load bookkeeping ------------------------------------------------------------------------


def add_load(load: MutableMapping[DirectedLink, float], path: Path, bps: float) -> None:
    """Add (or, with a negative `bps`, remove) a flow's demand along its path."""
    for link in path:
        load[link] = load.get(link, 0.0) + bps


def max_utilization(load: Mapping[DirectedLink, float],
                    capacity: Mapping[DirectedLink, float]) -> float:
    """Maximum link utilization (MLU) over the links in `capacity`."""
    return max((load.get(l, 0.0) / c for l, c in capacity.items()), default=0.0)


def five_tuple_hash(fabric: Fabric, flow: Flow) -> int:
    """A static 5-tuple hash, as a switch's select group computes it (CRC-32)."""
    src, dst = fabric.hosts[flow.src].ip, fabric.hosts[flow.dst].ip
    return zlib.crc32(f"{src}|{dst}|{flow.proto}|{flow.sport}|{flow.dport}".encode())


# --- policies --------------------------------------------------------------------------------


class Placer:
    """A placement policy. `place` returns the directed wavelengths the flow should cross."""

    name = ""

    def __init__(self, candidates: Candidates):
        self.candidates = candidates

    def place(self, flow: Flow, demand_bps: float, load: Mapping[DirectedLink, float]) -> Path:
        raise NotImplementedError


class EcmpPlacer(Placer):
    """Static hashing: CRC-32 of the 5-tuple over every equal-latency (route, wavelengths).

    Blind to load and demand: two elephants whose hashes agree modulo the number of
    choices share a wavelength while others idle.
    """

    name = "ecmp"

    def place(self, flow: Flow, demand_bps: float = 0.0,
              load: Mapping[DirectedLink, float] | None = None) -> Path:
        routes = self.candidates.equal_cost(self.candidates.site_of(flow.src),
                                            self.candidates.site_of(flow.dst))
        if not routes:
            raise ValueError(f"no route from {flow.src} to {flow.dst}")
        index = five_tuple_hash(self.candidates.fabric, flow) % sum(r.size for r in routes)
        for route in routes:
            if index < route.size:
                return route.nth_path(index)
            index -= route.size
        raise AssertionError("unreachable")


class ShortestPlacer(Placer):
    """One latency-shortest route, and one wavelength per hop for all flows of a site pair:
    the first on the grid, as the controller's `shortest` rules keep the lowest port."""

    name = "shortest"

    def place(self, flow: Flow, demand_bps: float = 0.0,
              load: Mapping[DirectedLink, float] | None = None) -> Path:
        src, dst = self.candidates.site_of(flow.src), self.candidates.site_of(flow.dst)
        routes = self.candidates.equal_cost(src, dst)
        if not routes:
            raise ValueError(f"no route from {flow.src} to {flow.dst}")
        return tuple(h.wavelengths[0] for h in routes[0].hops)


@dataclass(frozen=True)
class Move:
    """A placed elephant moved by `LoadAwarePlacer.revisit`."""

    flow: Flow
    old: Path
    new: Path


@dataclass(frozen=True)
class Reserved:
    """What reservations hold on each directed wavelength (bps): `booked` in all, and the
    part of it they send now, `sent` (in the measured load too: never more than booked)."""

    booked: Mapping[DirectedLink, float] = field(default_factory=dict)
    sent: Mapping[DirectedLink, float] = field(default_factory=dict)


NO_RESERVATIONS = Reserved()


# A path's cost to an elephant, compared in order: the most bandwidth booked by
# reservations on a wavelength of it (bps), then its highest utilization. A reservation
# may send its whole booking at any moment and every link serves it first
# (emulation/shaping.py), so beside one an elephant gets only what the booking leaves,
# whatever it sent before. So elephants keep off reserved wavelengths while any path has
# none, and otherwise take the least booked; sharing a wavelength with another elephant
# costs only best effort. (Before the wavelengths served reserved traffic first, outside
# testers saw 50 and 150 Gb/s reservations lose 7-21 % of their packets to an elephant
# placed beside them.)
Cost = tuple[float, float]


@dataclass
class LoadAwarePlacer(Placer):
    """Best fit of each elephant's estimated demand, with hysteresis on revisits.

    Parameters
    ----------
    candidates
        Candidate routes (within the candidates' ``max_stretch``).
    min_gain
        Hysteresis: `revisit` moves an elephant only if its new path's utilization is
        lower than its current path's by more than this (a fraction of capacity, e.g.
        0.05 = 5 percentage points).
    max_rounds
        At most this many passes over the placed elephants per `revisit`.
    """

    candidates: Candidates
    min_gain: float = 0.05
    max_rounds: int = 8
    name: str = field(default="loadaware", init=False)

    def place(self, flow: Flow, demand_bps: float, load: Mapping[DirectedLink, float],
              reserved: Mapping[DirectedLink, float] | None = None) -> Path:
        """The route and wavelengths of the lowest cost (`Cost`) with the elephant on it.

        Hop by hop, the wavelength of the lowest cost; among routes, the one whose worst
        hop is best (then the lower latency). `load` (bps per directed link, reservations
        included) is not modified; `reserved`: bps booked by reservations per directed
        wavelength.
        """
        _, path = self.best(flow, demand_bps, load, reserved or {})
        return path

    def cost(self, link: DirectedLink, demand_bps: float, load: Mapping[DirectedLink, float],
             reserved: Mapping[DirectedLink, float]) -> Cost:
        """The cost of `link` with an elephant of `demand_bps` on it."""
        return (reserved.get(link, 0.0),
                (load.get(link, 0.0) + demand_bps) / self.candidates.capacity_bps[link])

    def best(self, flow: Flow, demand_bps: float, load: Mapping[DirectedLink, float],
             reserved: Mapping[DirectedLink, float] | None = None) -> tuple[Cost, Path]:
        """(the cost of the best path with the elephant on it, that path)."""
        reserved = reserved or {}
        best_cost, best_path = (math.inf, math.inf), None
        for route in self.candidates.for_flow(flow):
            worst, path = (0.0, 0.0), []
            for hop in route.hops:
                cost, link = min((self.cost(w, demand_bps, load, reserved), w)
                                 for w in hop.wavelengths)
                worst = (max(worst[0], cost[0]), max(worst[1], cost[1]))
                if worst >= best_cost:
                    break           # this route cannot beat the best one: stop early
                path.append(link)
            else:
                if worst < best_cost:   # routes come lowest latency first: ties keep it
                    best_cost, best_path = worst, tuple(path)
        if best_path is None:
            raise ValueError(f"no route from {flow.src} to {flow.dst}")
        return best_cost, best_path

    def revisit(self, placed: Mapping[Flow, tuple[float, Path]],
                load: Mapping[DirectedLink, float],
                reserved: Mapping[DirectedLink, float] | None = None) -> list[Move]:
        """Moves that take elephants off reserved wavelengths, or even out the load.

        Elephants are taken largest demand first; each is lifted off its path and put on
        the best path if that lowers the most booked on a wavelength of its path (by more
        than `min_gain` of that wavelength's capacity), or, beside no reservation either
        way, lowers the utilization along its path by more than `min_gain`. The first
        kind lowers the sum over elephants of what their paths have booked, which the
        second leaves as it is while it lowers the vector of link utilizations (sorted,
        highest first) lexicographically, so passes end, and a second call right after
        the first moves nothing: placements do not flap. Never onto a reserved
        wavelength from a path without one.

        Parameters
        ----------
        placed
            Each placed elephant -> (its demand in bps, its current path).
        load
            Load in bps per directed link, with the placed elephants (and anything else,
            e.g. mice and reservations) on it. Not modified.

        Returns
        -------
        list of Move
            The elephants whose path changed, with old and new path; apply them in order.
        """
        work = dict(load)
        reserved = reserved or {}
        current = {f: path for f, (_, path) in placed.items()}
        order = sorted(placed, key=lambda f: (-placed[f][0], f.id))
        capacity = self.candidates.capacity_bps
        for _ in range(self.max_rounds):
            moved = False
            for flow in order:
                demand, path = placed[flow][0], current[flow]
                add_load(work, path, -demand)
                costs = [self.cost(l, demand, work, reserved) for l in path]
                booked, util = (max((c[0] for c in costs), default=0.0),
                                max((c[1] for c in costs), default=0.0))
                (new_booked, new_util), better = self.best(flow, demand, work, reserved)
                worth = (new_booked < booked - self.min_gain * min(capacity[l] for l in path)
                         if booked > 0 else new_booked == 0 and new_util < util - self.min_gain)
                if worth:
                    current[flow], path, moved = better, better, True
                add_load(work, path, demand)
            if not moved:
                break
        return [Move(f, placed[f][1], current[f]) for f in order if current[f] != placed[f][1]]


def make_placer(policy: str, candidates: Candidates, **options) -> Placer:
    """The placer of a policy name (one of `POLICIES`)."""
    if policy == "ecmp":
        return EcmpPlacer(candidates)
    if policy == "shortest":
        return ShortestPlacer(candidates)
    if policy == "loadaware":
        return LoadAwarePlacer(candidates, **options)
    raise ValueError(f"unknown policy {policy!r}: choose one of {', '.join(POLICIES)}")


def paths_load(paths: Sequence[Path], demands: Sequence[float]) -> dict[DirectedLink, float]:
    """The load (bps per directed link) of flows with these demands on these paths."""
    load: dict[DirectedLink, float] = {}
    for path, bps in zip(paths, demands):
        add_load(load, path, bps)
    return load
