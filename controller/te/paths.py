"""Latency-shortest paths over a fabric's switches, with every equal-cost choice kept.

Weights are integer nanoseconds so that paths of equal modeled latency tie exactly:
the parallel wavelengths of one line system, and the spines of a site, are then all
next hops, and traffic spreads over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ..fabric.model import HOST, Fabric, Link


def latency_ns(link: Link) -> int:
    return max(1, round(link.latency_ms * 1e6))


@dataclass(frozen=True)
class Hop:
    switch: str
    out_port: int
    link: Link


class LatencyGraph:
    """The switches of a fabric and the links between them, weighted by modeled latency."""

    def __init__(self, fabric: Fabric):
        self.fabric = fabric
        self.graph = nx.MultiGraph()
        self.graph.add_nodes_from(fabric.switches)
        for link in fabric.links:
            if link.kind != HOST:
                self.graph.add_edge(link.a.node, link.b.node, key=link.name,
                                    weight=latency_ns(link), link=link)
        self._distances: dict[str, dict[str, int]] = {}

    def distances_to(self, dst: str) -> dict[str, int]:
        """Latency (ns) of the shortest path from every switch to `dst` (cached)."""
        if dst not in self._distances:
            self._distances[dst] = nx.single_source_dijkstra_path_length(
                self.graph, dst, weight="weight")
        return self._distances[dst]

    def next_hops(self, dst: str) -> dict[str, tuple[Hop, ...]]:
        """For every switch that can reach `dst` (but `dst`), each hop on a shortest path.

        A hop u->v is on a shortest path when d(u) = w(u,v) + d(v); with positive weights
        these hops form a loop-free DAG towards `dst`, so hashing over them cannot loop.
        """
        dist = self.distances_to(dst)
        hops: dict[str, tuple[Hop, ...]] = {}
        for u in dist:
            if u == dst:
                continue
            choices = []
            for _, v, data in self.graph.edges(u, data=True):
                if v in dist and dist[v] + data["weight"] == dist[u]:
                    link: Link = data["link"]
                    port = link.a.port if link.a.node == u else link.b.port
                    choices.append(Hop(u, port, link))
            hops[u] = tuple(sorted(choices, key=lambda h: h.out_port))
        return hops

    def shortest_latency_ms(self, src: str, dst: str) -> float:
        return self.distances_to(dst)[src] / 1e6

    def paths(self, src: str, dst: str, limit: int = 64) -> list[list[Hop]]:
        """Up to `limit` equal-latency shortest paths from switch `src` to `dst`, as hops."""
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
