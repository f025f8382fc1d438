"""Line systems the routes pass by: longer than DEFAULT_MAX_STRETCH x the shortest way
between their two sites (a parallel line, or through other sites). Routes between those
sites take the short way, and elephants are steered only within the stretch, so such a
line carries their traffic only once the short way fails. `check` says so of a fabric,
`plan` of the fabric it writes, `train` of the sync pairs it runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..fabric import Fabric
from .placement import DEFAULT_MAX_STRETCH


@dataclass(frozen=True)
class LongWay:
    line: str
    a: str
    b: str
    latency_ms: float
    shortest_ms: float          # the shortest way between a and b, over any lines


def fabric_lines(fabric: Fabric) -> list[tuple[str, str, str, float]]:
    """(line system, site a, site b, one-way latency ms) of every line of `fabric`."""
    return [(spec.name, spec.a, spec.b, fabric.line_systems[spec.name].latency_ms)
            for spec in fabric.spec.dci_links if spec.name in fabric.line_systems]


def long_ways(lines: Iterable[tuple[str, str, str, float]],
              max_stretch: float = DEFAULT_MAX_STRETCH) -> list[LongWay]:
    """The lines (as `fabric_lines` gives them) over `max_stretch` x the shortest way
    between their sites, in the order given."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path
    lines = list(lines)
    if not lines:
        return []
    index: dict[str, int] = {}
    for _, a, b, _ in lines:
        index.setdefault(a, len(index))
        index.setdefault(b, len(index))
    best: dict[tuple[int, int], float] = {}           # the shortest line between two sites
    for _, a, b, ms in lines:
        key = (min(index[a], index[b]), max(index[a], index[b]))
        best[key] = min(ms, best.get(key, float("inf")))
    rows, cols = zip(*best)
    graph = csr_matrix((list(best.values()), (rows, cols)), shape=(len(index), len(index)))
    shortest = shortest_path(graph, method="D", directed=False)  # Dijkstra, in C: 254 sites
    out = []
    for line, a, b, ms in lines:
        short = float(shortest[index[a], index[b]])
        if np.isfinite(short) and ms > max_stretch * short:
            out.append(LongWay(line, a, b, ms, short))
    return out
