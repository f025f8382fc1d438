"""Which wavelength did each measured flow take? Read back from interface byte counters.

OVS select groups hash each flow onto one bucket inside the datapath, where no OpenFlow
counter sees the choice. But a TCP flow is never split, so on every DCI hop its bytes
appear on exactly one wavelength of that hop. Flows are matched to wavelengths greedily,
largest first, each taking the candidate wavelength whose unexplained bytes best cover it.
Exact when at most one measured flow crosses a line system in a direction; a best match
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..fabric.model import DCI, Link
from .paths import PathEngine


@dataclass(frozen=True)
class MeasuredFlow:
    src_leaf: str
    dst_leaf: str
    bytes: int


@dataclass(frozen=True)
class Crossing:
    """A wavelength crossed in one direction: leaving `switch` by `port`."""

    switch: str
    port: int
    link: Link


def dci_stages(graph: PathEngine, src: str, dst: str) -> list[list[Crossing]]:
    """For each successive DCI hop on the shortest paths src->dst, every wavelength it may use.

    Walks the next-hop DAG rather than listing paths: equal-cost paths multiply (spines x
    wavelengths per hop), but the (switch, DCI hops so far) states stay few.
    """
    hops = graph.next_hops(dst)
    stages: list[dict[tuple[str, int], Crossing]] = []
    seen: set[tuple[str, int]] = set()
    frontier = [(src, 0)]
    while frontier:
        node, k = frontier.pop()
        if (node, k) in seen or node == dst:
            continue
        seen.add((node, k))
        for hop in hops.get(node, ()):
            nxt = k
            if hop.link.kind == DCI:
                while len(stages) <= k:
                    stages.append({})
                stages[k][(hop.switch, hop.out_port)] = Crossing(hop.switch, hop.out_port, hop.link)
                nxt = k + 1
            frontier.append((hop.link.other(node).node, nxt))
    return [sorted(stage.values(), key=lambda c: (c.switch, c.port)) for stage in stages]


def crossing(fabric, name: str, sender: str) -> Crossing:
    """The wavelength link `name` crossed leaving gateway `sender`."""
    link = fabric.link(name)
    end = link.a if link.a.node == sender else link.b
    return Crossing(sender, end.port, link)


def route_stages(graph: PathEngine, hops) -> list[list[Crossing]]:
    """The stages of a route given as, per DCI hop, its (wavelength link name, sending
    gateway) pairs (`placement.Route`'s hops)."""
    return [[crossing(graph.fabric, name, sender) for name, sender in hop.wavelengths]
            for hop in hops]


def attribute(graph: PathEngine, flows: list[MeasuredFlow],
              tx_bytes: dict[tuple[str, int], int],
              alternatives: list[list[list[list[Crossing]]]] | None = None
              ) -> list[list[Crossing]]:
    """For each flow (in the given order), the wavelength crossing it took on each DCI hop.

    `tx_bytes` maps (switch, port) to the bytes it sent during the measurement. Each
    flow's ways are the shortest paths (where the switches hash it), then its
    `alternatives` (routes the controller may pin it to, as stages); the way whose
    wavelengths best account for its bytes wins (a flow pinned elsewhere mid-run: the way
    most of its bytes took).
    """
    remaining = dict(tx_bytes)
    chosen: list[list[Crossing]] = [[] for _ in flows]
    for i in sorted(range(len(flows)), key=lambda i: -flows[i].bytes):
        flow = flows[i]

        # Prefer a wavelength that carried at least this flow's bytes; among those, the
        # one with least left over. Otherwise the one that carried the most.
        def score(c: Crossing) -> tuple:
            left = remaining.get((c.switch, c.port), 0)
            return (left < 0.9 * flow.bytes, left if left >= 0.9 * flow.bytes else -left)

        ways = [dci_stages(graph, flow.src_leaf, flow.dst_leaf),
                *(alternatives[i] if alternatives else [])]
        picks = [[min(stage, key=score) for stage in way] for way in ways if all(way)]
        if not picks:
            continue
        # The way whose least-explained hop explains the most (the first on a tie).
        best = max(picks, key=lambda pick: min(
            (min(remaining.get((c.switch, c.port), 0), flow.bytes) for c in pick),
            default=0))
        for c in best:
            key = (c.switch, c.port)
            remaining[key] = remaining.get(key, 0) - flow.bytes
        chosen[i] = best
    return chosen
