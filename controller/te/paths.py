"""The path engine: which paths exist now, at what latency and with what room.

One graph of the fabric's switches and links, weighted by modeled latency, that knows
which links and switches are up and at what rate each wavelength runs (its mode). Hashed
routes (`next_hops`), elephant placement (`Candidates` over `line_systems`), reservation
admission (`widest_shortest`, given the room the reservations leave) and protection
(`detour`) all ask it. (Elephant placement lists its candidate routes over sites on a
graph of its own, one edge per line system: te/placement.py.)

Weights are integer nanoseconds so that paths of equal modeled latency tie exactly: the
parallel wavelengths of one line system, and the spines of a site, are then all next
hops, and traffic spreads over them. Leaves are never transit: a path starts or ends at
a leaf, and never relays through one (a leaf relaying between spines would be a path of
the same hop count after some failures, but leaves are sized for their hosts, not for
the fabric).
"""

from __future__ import annotations

import contextlib
import heapq
import math
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass

from ..fabric.model import DCI, HOST, LEAF, Fabric, Link
from .load import Direction


HELD_PENALTY_NS = 10**9      # 1 s of latency: more than any real path


def latency_ns(link: Link) -> int:
    return max(1, round(link.latency_ms * 1e6))


@dataclass(frozen=True)
class Hop:
    switch: str
    out_port: int
    link: Link


def _lightest(bundle: list[tuple[int, int, Link, str]], avoid: Container[str]):
    """The first link of a (weight, port)-ordered bundle not in `avoid`, or None."""
    for edge in bundle:
        if edge[3] not in avoid:
            return edge
    return None


class PathEngine:
    """The switches of a fabric and the links between them, with liveness and rates.

    `version` changes with every change of state, so callers that cache what they
    derived (routes, candidate routes) know when to derive again: it grows, but for a
    trial (`drained_for_trial`), which runs under a number of its own and puts it back.
    """

    def __init__(self, fabric: Fabric):
        self.fabric = fabric
        self.version = 0
        self._trials = 0
        self._down_links: set[str] = set()
        self._down_switches: set[str] = set()
        # link -> why it carries no new traffic though it is up (a mode change coming):
        # apart from `_down_links`, so a port coming back up cannot put it in use early.
        self._drained: dict[str, str] = {}
        self._rate_gbps: dict[str, float] = {}           # wavelength -> rate of its mode now
        self._mode: dict[str, str] = {}                  # wavelength -> its mode now, if known
        self._held: set[str] = set()       # back from a failure, in hold-down: a last resort
        self._is_leaf = {n: s.role == LEAF for n, s in fabric.switches.items()}
        self._site_of = {n: s.site for n, s in fabric.switches.items()}
        # site -> neighbour site -> the least modeled latency (ns) of a DCI link between
        # them, up or down: the sites' graph, whose distances bound any path's from below.
        self._site_edges: dict[str, dict[str, int]] = {site.name: {} for site in fabric.sites}
        for link in fabric.links:
            if link.kind == DCI:
                a, b, w = self._site_of[link.a.node], self._site_of[link.b.node], latency_ns(link)
                for u, v in ((a, b), (b, a)):
                    self._site_edges[u][v] = min(w, self._site_edges[u].get(v, w))
        self._site_bounds: dict[str, dict[str, int]] = {}
        # switch -> [(neighbour, link, weight ns, out port)], every link however it is
        self._edges: dict[str, list[tuple[str, Link, int, int]]] = {n: [] for n in fabric.switches}
        for link in fabric.links:
            if link.kind == HOST:
                continue
            w = latency_ns(link)
            self._edges[link.a.node].append((link.b.node, link, w, link.a.port))
            self._edges[link.b.node].append((link.a.node, link, w, link.b.port))
        self._live: dict[str, list[tuple[str, Link, int, int, str]]] | None = None
        self._bundled: dict[str, list[tuple[str, int, str, tuple, tuple]]] | None = None
        self._live_wavelengths: dict[str, tuple[Link, ...]] | None = None
        self._distances: dict[str, dict[str, int]] = {}
        self._next_hops: dict[str, dict[str, tuple[Hop, ...]]] = {}
        self._directed: dict[str, list[tuple[str, bool, list[tuple[int, Direction]]]]] = {}

    # -- state ---------------------------------------------------------------------------

    def link_up(self, name: str) -> bool:
        return name not in self._down_links

    def switch_up(self, name: str) -> bool:
        return name not in self._down_switches

    def usable(self, link: Link) -> bool:
        """Up and not drained, with both its switches up (a host end is always up)."""
        return (link.name not in self._down_links and link.name not in self._drained
                and link.a.node not in self._down_switches
                and link.b.node not in self._down_switches)

    def set_link(self, name: str, up: bool) -> bool:
        """Mark a link up or down; True if that changed anything."""
        return self._set(self._down_links, name, up)

    def set_drained(self, name: str, reason: str | None) -> bool:
        """Take a link out of use while it stays up (`reason` says why), or put it back
        (`reason=None`); True if that changed anything. Everything that asks `usable`
        moves off it, make before break, while it still carries what it carried."""
        if (name in self._drained) == (reason is not None):
            if reason is not None:
                self._drained[name] = reason
            return False
        if reason is None:
            del self._drained[name]
        else:
            self._drained[name] = reason
        self._changed()
        return True

    @contextlib.contextmanager
    def drained_for_trial(self, name: str):
        """`name` out of use for the block only, to see what would move off it. The block
        runs under a version never used before or after (-2, -3, ...: -1 is "never
        derived" to some callers), so what anything derives inside is never taken for the
        state outside; after it, the version is the one before, as the state is, and so
        are the derived routes and distances (kept aside, not derived again)."""
        if name in self._drained:
            yield
            return
        version, self._trials = self.version, self._trials + 1
        kept = (self._live, self._bundled, self._live_wavelengths, self._distances,
                self._next_hops, self._directed)
        self._distances, self._next_hops, self._directed = {}, {}, {}
        self._drained[name] = "a trial"
        self._changed()
        self.version = -1 - self._trials
        try:
            yield
        finally:
            del self._drained[name]
            (self._live, self._bundled, self._live_wavelengths, self._distances,
             self._next_hops, self._directed) = kept
            self.version = version

    @property
    def drained(self) -> dict[str, str]:
        return dict(self._drained)

    def set_held(self, name: str, held: bool) -> bool:
        """A link back from a failure but held down: routes and detours use it only where
        nothing else goes (it costs HELD_PENALTY_NS more), placement and admission not at
        all; a hold-down must damp flapping, never blackhole."""
        if (name in self._held) == held:
            return False
        (self._held.add if held else self._held.discard)(name)
        self._changed()
        return True

    def held(self, name: str) -> bool:
        return name in self._held

    def held_or_drained(self) -> frozenset[str]:
        """Links that may be up but are not in use: held down, or drained."""
        return frozenset(self._held) | frozenset(self._drained)

    def in_service(self, link: Link) -> bool:
        """Usable and not held down: what placement and admission may use."""
        return self.usable(link) and link.name not in self._held

    def set_switch(self, name: str, up: bool) -> bool:
        return self._set(self._down_switches, name, up)

    def _set(self, down: set[str], name: str, up: bool) -> bool:
        if (name not in down) == up:
            return False
        (down.discard if up else down.add)(name)
        self._changed()
        return True

    def set_rate(self, wavelength_link: str, rate_gbps: float, mode: str | None = None) -> bool:
        """A wavelength now runs another mode (`mode`, its name, if known): its capacity
        follows. True if the rate changed."""
        if mode is not None:
            self._mode[wavelength_link] = mode
        if self.rate_gbps(self.fabric.link(wavelength_link)) == rate_gbps:
            return False
        self._rate_gbps[wavelength_link] = rate_gbps
        self._changed()
        return True

    def rate_gbps(self, link: Link) -> float:
        return self._rate_gbps.get(link.name, link.rate_gbps)

    def mode(self, link: Link) -> str | None:
        """The mode a wavelength runs now, as last set, else its plan's (None off DCI)."""
        return self._mode.get(link.name, link.channel.mode if link.channel else None)

    def rates(self) -> dict[str, float]:
        """Wavelengths whose rate is not their plan's: link name -> Gb/s now."""
        return dict(self._rate_gbps)

    def modes(self) -> dict[str, str]:
        """Wavelengths whose mode was set since the plan: link name -> mode name now."""
        return dict(self._mode)

    def _changed(self) -> None:
        self.version += 1
        self._live = None
        self._bundled = None
        self._live_wavelengths = None
        self._distances.clear()
        self._next_hops.clear()
        self._directed.clear()

    @property
    def down_links(self) -> frozenset[str]:
        return frozenset(self._down_links)

    @property
    def down_switches(self) -> frozenset[str]:
        return frozenset(self._down_switches)

    def out_of_service(self) -> list[str]:
        """What placement and admission cannot use now, by name: switches and links down,
        links drained or held down after a failure."""
        return sorted(self._down_switches) + sorted(
            self._down_links | set(self._drained) | self._held)

    # -- shortest paths ------------------------------------------------------------------

    def _adjacency(self) -> dict[str, list[tuple[str, Link, int, int, str]]]:
        """switch -> [(neighbour, link, weight ns, out port, link name)] of its usable links,
        held ones at their penalty; built once per state, so a search touches no sets."""
        live = self._live       # read once: a change in between leaves None behind
        if live is None:
            live = self._live = {
                u: [(v, link, w + (HELD_PENALTY_NS if link.name in self._held else 0), port,
                     link.name) for v, link, w, port in edges if self.usable(link)]
                for u, edges in self._edges.items()}
        return live

    def _bundles(self) -> dict[str, list[tuple[str, int, str, tuple, tuple]]]:
        """switch -> [(neighbour, weight, link name, lightest, others)]: its usable links
        bundled by neighbour; `lightest` is the first (weight ns, out port, link, name) in
        (weight, port) order, `others` the rest in that order. A search takes a bundle's
        first link it may use and skips the rest, so the parallel wavelengths of a line
        system cost it one step, not one each."""
        bundled = self._bundled
        if bundled is None:
            bundled = {}
            for u, edges in self._adjacency().items():
                by_neighbour: dict[str, list[tuple[int, int, Link, str]]] = {}
                for v, link, w, port, name in edges:
                    by_neighbour.setdefault(v, []).append((w, port, link, name))
                bundled[u] = []
                for v, bundle in by_neighbour.items():
                    first, *others = sorted(bundle, key=lambda e: (e[0], e[1]))
                    bundled[u].append((v, first[0], first[3], first, tuple(others)))
            self._bundled = bundled
        return bundled

    def _live_edges(self, u: str, avoid: Container[str] = frozenset()):
        for v, link, w, port, name in self._adjacency()[u]:
            if name not in avoid:
                yield v, link, w, port

    def distances_to(self, dst: str) -> dict[str, int]:
        """Latency (ns) of the shortest live path from every switch that has one to `dst`,
        leaves never transit."""
        if dst not in self._distances:
            self._distances[dst] = self._search(dst, frozenset())
        return self._distances[dst]

    def _site_bound(self, site: str) -> dict[str, int]:
        """Latency (ns) from every site that has a way to `site` on the sites' graph: a
        lower bound of any path's between their switches (intra-site hops count 0, every
        DCI link as if up), and a consistent one (no link costs less than its sites'
        edge). Fixed by the fabric, so kept."""
        bound = self._site_bounds.get(site)
        if bound is None:
            bound = self._site_bounds[site] = {site: 0}
            heap = [(0, site)]
            while heap:
                d, u = heapq.heappop(heap)
                if d > bound[u]:
                    continue
                for v, w in self._site_edges[u].items():
                    if d + w < bound.get(v, math.inf):
                        bound[v] = d + w
                        heapq.heappush(heap, (d + w, v))
        return bound

    def _search(self, dst: str, avoid: Container[str], src: str | None = None,
                bound: Mapping[str, int] | None = None) -> dict[str, int]:
        """Dijkstra from `dst` over live links not in `avoid`, stopped once `src` (if
        given) is final. With `bound` (`_site_bound` of `src`'s site) it is A*: switches
        are taken by distance + bound, ties by distance, so every switch on a shortest
        path from `src` is final before `src` is; a switch whose site has no way to
        `src`'s is skipped."""
        bundles = self._bundles()
        is_leaf = self._is_leaf
        site_of = self._site_of
        dist: dict[str, int] = {}
        if not self.switch_up(dst):
            return dist
        h = bound.get if bound is not None else None
        dist[dst] = 0
        heap = [(0, 0, dst)]
        while heap:
            _, d, v = heapq.heappop(heap)
            if d > dist[v]:
                continue
            if v == src:
                break
            if v != dst and is_leaf[v]:
                continue                        # a leaf can start a path, not relay one
            for u, w, name, _, others in bundles[v]:
                if name in avoid:
                    first = _lightest(others, avoid)
                    if first is None:
                        continue
                    w = first[0]
                nd = d + w
                if nd < dist.get(u, math.inf):
                    rest = 0 if h is None else h(site_of[u])
                    if rest is None:
                        continue
                    dist[u] = nd
                    heapq.heappush(heap, (nd + rest, nd, u))
        return dist

    def next_hops(self, dst: str) -> dict[str, tuple[Hop, ...]]:
        """For every switch that can reach `dst` (but `dst`), each live hop on a shortest
        path. A hop u->v is on a shortest path when d(u) = w(u,v) + d(v); with positive
        weights these hops form a loop-free DAG towards `dst`, so hashing over them cannot
        loop."""
        if dst in self._next_hops:
            return self._next_hops[dst]
        dist = self.distances_to(dst)
        hops: dict[str, tuple[Hop, ...]] = {}
        for u, du in dist.items():
            if u == dst:
                continue
            choices = [Hop(u, port, link) for v, link, w, port in self._live_edges(u)
                       if v in dist and dist[v] + w == du
                       and (v == dst or not self._is_leaf[v])]
            hops[u] = tuple(sorted(choices, key=lambda h: h.out_port))
        self._next_hops[dst] = hops
        return hops

    def shortest_latency_ms(self, src: str, dst: str) -> float:
        return self.distances_to(dst)[src] / 1e6

    def paths(self, src: str, dst: str, limit: int = 64) -> list[list[Hop]]:
        """Up to `limit` equal-latency shortest live paths from switch `src` to `dst`."""
        hops = self.next_hops(dst)
        out: list[list[Hop]] = []

        def walk(node: str, prefix: list[Hop]) -> None:
            if len(out) >= limit:
                return
            if node == dst:
                out.append(prefix)
                return
            for hop in hops.get(node, ()):
                walk(hop.link.other(node).node, prefix + [hop])

        walk(src, [])
        return out

    def detour(self, src: str, dst: str, avoid: Container[str]) -> list[Hop] | None:
        """The latency-shortest live path from `src` to `dst` that uses none of the links
        named in `avoid` (nor leaves as transit); None if there is none. Protection asks
        this for a path around a line system."""
        if isinstance(avoid, Iterable) and not isinstance(avoid, (set, frozenset)):
            avoid = frozenset(avoid)              # a list: one test per link, not a scan
        # Beside a parallel line system a shortest path often survives: look for it on the
        # cached shortest paths first (one search per far gateway, not one per line system).
        if any(v == dst and link.name not in avoid for v, link, _, _ in self._live_edges(src)):
            quick = self._shortest_without(src, dst, avoid)
            if quick is not None:
                return quick
        # A* towards `src`, bounded by the sites' graph: the search heads for `src`
        # instead of widening over the fabric (on a full mesh, most of it for every
        # line system).
        dist = self._search(dst, avoid, src, self._site_bound(self._site_of[src]))
        if src not in dist:
            return None
        bundles = self._bundles()
        path, node = [], src
        while node != dst:
            # The next hop: on a shortest path, lowest out port first (a bundle's lightest
            # usable link is the only one of it that can be on a shortest path).
            best = None
            for v, _, name, first, others in bundles[node]:
                if name in avoid:
                    first = _lightest(others, avoid)
                if (first is not None and v in dist and dist[v] + first[0] == dist[node]
                        and (v == dst or not self._is_leaf[v])
                        and (best is None or first[1] < best[1])):
                    best = first
            path.append(Hop(node, best[1], best[2]))
            node = best[2].other(node).node
        return path

    def _shortest_without(self, src: str, dst: str, avoid: Container[str]) -> list[Hop] | None:
        """A shortest live path (the whole graph's shortest length) from `src` to `dst` that
        uses no link in `avoid`, or None if each one crosses `avoid`. Walks the cached
        shortest-path DAG towards `dst` in out-port order, so it finds the very path the
        search on the graph without `avoid` would."""
        hops = self.next_hops(dst)
        dead: set[str] = set()
        path: list[Hop] = []

        def walk(node: str) -> bool:
            if node == dst:
                return True
            for hop in hops.get(node, ()):
                after = hop.link.other(node).node
                if hop.link.name in avoid or after in dead:
                    continue
                path.append(hop)
                if walk(after):
                    return True
                path.pop()
            dead.add(node)
            return False
        return path if walk(src) else None

    # -- for admission ---------------------------------------------------------------------

    def adjacent(self, u: str) -> dict[str, list[Link]]:
        """Live neighbours of switch `u` and the live links to each, least latency first."""
        out: dict[str, list[Link]] = {}
        for v, link, _, _ in self._live_edges(u):
            if link.name not in self._held:
                out.setdefault(v, []).append(link)
        for links in out.values():
            links.sort(key=lambda l: (l.latency_ms, l.name))
        return out

    def leaf_reach(self, without: str | None = None) -> frozenset[tuple[str, str]]:
        """The (leaf, leaf) pairs with a live path between them (leaves never transit),
        or that would have one with switch `without` down too."""
        adjacency = self._adjacency()
        out = set()
        for src in (s for s in adjacency if self._is_leaf[s] and s != without):
            seen, stack = {src, without}, [src]
            while stack:
                for v, *_ in adjacency[stack.pop()]:
                    if v not in seen:
                        seen.add(v)
                        if self._is_leaf[v]:
                            out.add((src, v))
                        else:
                            stack.append(v)
        return frozenset(out)

    def directed(self) -> dict[str, list[tuple[str, bool, list[tuple[int, Direction]]]]]:
        """switch -> [(neighbour, is a leaf, [(latency ns, Direction)] of the live links to
        it, least latency first)], links in hold-down left out; cached until a change.
        Whole nanoseconds, as `distances_to`: equal latencies are equal sums."""
        if not self._directed:
            self._directed = {
                u: [(v, self._is_leaf[v], [(latency_ns(l), Direction(l.name, u, v)) for l in links])
                    for v, links in self.adjacent(u).items()]
                for u in self.fabric.switches}
        return self._directed

    def widest_shortest(self, src_leaf: str, dst_leaf: str, bps: float,
                        capacity: Mapping[Direction, float], used: Mapping[Direction, float],
                        avoid: Container[str] = frozenset(),
                        bonus: Mapping[Direction, float] | None = None
                        ) -> tuple[float, list[Direction]] | None:
        """The latency-shortest live path between two leaves on which every hop has a link
        with `bps` of room (capacity - used + bonus), the widest among equally short ones,
        taking on each hop the least-latency link with room that fits best; as (latency ms,
        [Direction]), or None. With bps = 0 it is the shortest path whatever the load.
        `avoid` names links not to use. A* on `directed()`, guided by `distances_to`."""
        if src_leaf == dst_leaf:
            return 0.0, []
        h = self.distances_to(dst_leaf)          # ns, an exact lower bound
        adjacent = self.directed()
        best = {src_leaf: (0, -math.inf)}
        # Popped by (estimate, -width), then deepest first: among labels that tie, the
        # destination comes out before the nodes of every other equally short, equally wide
        # path are expanded (none of them could give it a better label).
        heap = [(h.get(src_leaf, math.inf), -math.inf, 0, src_leaf, ())]
        while heap:
            _, neg_width, neg_latency, u, path = heapq.heappop(heap)
            latency = -neg_latency
            if u == dst_leaf:
                return latency / 1e6, list(path)
            if (latency, neg_width) > best[u]:
                continue
            for v, is_leaf, links in adjacent.get(u, ()):
                if (is_leaf and v != dst_leaf) or v not in h:
                    continue                       # leaves are never transit
                # Best fit among the least-latency links with room; width = the most room.
                chosen = None
                for link_ns, d in links:
                    if chosen is not None and link_ns > chosen[0]:
                        break
                    if avoid and d.link in avoid:
                        continue
                    free = capacity[d] - used.get(d, 0.0)
                    if bonus:
                        free += bonus.get(d, 0.0)
                    if free >= bps:
                        if chosen is None:
                            chosen = [link_ns, d, free, free]
                        else:
                            if free < chosen[2]:
                                chosen[1], chosen[2] = d, free
                            chosen[3] = max(chosen[3], free)
                if chosen is None:
                    continue
                label = (latency + chosen[0], max(neg_width, -chosen[3]))
                if label < best.get(v, (math.inf, 0.0)):
                    best[v] = label
                    heapq.heappush(heap, (label[0] + h[v], label[1], -label[0], v,
                                          path + (chosen[1],)))
        return None

    # -- for placement ---------------------------------------------------------------------

    def live_wavelengths(self, line_system: str) -> tuple[Link, ...]:
        """The usable wavelengths of a line system, in file order (indexed once per state:
        programs ask for every gateway port's siblings)."""
        index = self._live_wavelengths      # read once: a change in between leaves None
        if index is None:
            by_line: dict[str, list[Link]] = {}
            for l in self.fabric.links:
                if l.kind == DCI and self.usable(l):
                    by_line.setdefault(l.line_system, []).append(l)
            index = self._live_wavelengths = {ls: tuple(links) for ls, links in by_line.items()}
        return index.get(line_system, ())
