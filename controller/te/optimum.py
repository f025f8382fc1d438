"""The best unsplittable placement of a set of flows: the yardstick for the policies.

Each flow must take exactly one of its candidate paths (a route, and one wavelength on
each of the route's hops), as a transport flow does; the objective is the maximum link
utilization (MLU). This is a mixed-integer program, solved exactly with HiGHS through
`scipy.optimize.milp` when it finishes within a time limit. When it does not, the best
lower bound known is returned instead: the splittable LP relaxation, tightened by HiGHS's
branch-and-bound bound when that is higher (``kind == "lp_bound"``).

Formulation (route-and-wavelength, equivalent to one binary per candidate path, since a
path is exactly a route plus one wavelength per hop, but with sum-of-hops rather than
product-of-hops variables)::

    minimize    U
    subject to  sum_r x[f,r] = 1                                  every flow f
                sum_w y[f,r,h,w] = x[f,r]                          every flow, route, hop
                sum_{f,r,h} d_f y[f,r,h,l] - c_l U <= -b_l          every directed link l
                sum_r m[f,r] x[f,r] - U <= 0                        every flow f
                x, y binary

with d_f the flow's demand, c_l the link's capacity, b_l its fixed background load (mice,
reservations) and m[f,r] the utilization the flow alone forces on route r (its worst hop's
best wavelength): a valid cut that keeps the relaxation from pretending a flow larger than
a wavelength fits. The wavelengths of one line system in one direction, when they have
equal capacity and background, are interchangeable; ordering their loads removes that
symmetry without changing the optimum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .milp import Milp
from .placement import DirectedLink, Path, Route

MILP, LP_BOUND = "milp", "lp_bound"


@dataclass(frozen=True)
class Optimum:
    """The optimum MLU, or a lower bound on it.

    Attributes
    ----------
    mlu
        The optimal MLU (``kind == "milp"``) or a lower bound on it (``"lp_bound"``).
    kind
        ``"milp"`` when proven optimal, ``"lp_bound"`` otherwise.
    assignment
        The optimal path of each flow (``"milp"``), the best placement found within the
        time limit (``"lp_bound"``, may be None).
    """

    mlu: float
    kind: str
    assignment: list[Path] | None


@dataclass
class _Model:
    milp: Milp                 # column 0 is U, the MLU
    u_floor: float
    # per flow: [(route, x column, [[y column per wavelength] per hop])]
    columns: list[list[tuple[Route, int, list[list[int]]]]]


def solve_optimum(demands: Sequence[float], routes: Sequence[Sequence[Route]],
                  capacity: Mapping[DirectedLink, float],
                  background: Mapping[DirectedLink, float] | None = None,
                  time_limit_s: float = 10.0) -> Optimum:
    """The minimum MLU over unsplittable placements of the flows on their candidates.

    Parameters
    ----------
    demands
        Each flow's demand (bps).
    routes
        Each flow's candidate routes; every wavelength of every hop is a choice.
    capacity
        Capacity (bps) of every directed link the MLU is taken over.
    background
        Load (bps) that stays where it is (mice, reservations).
    time_limit_s
        Wall-clock limit for the MILP; beyond it the LP bound is computed (without a
        limit: it is a linear program) and returned.

    Returns
    -------
    Optimum
    """
    background = background or {}
    if any(len(r) == 0 for r in routes):
        raise ValueError("every flow needs at least one candidate route")
    model = _build(demands, routes, capacity, background)
    res = model.milp.solve(time_limit_s)
    assignment = _decode(model, res.x) if res.x is not None else None
    if res.status == 0 and assignment is not None:
        return Optimum(_mlu(assignment, demands, capacity, background), MILP, assignment)
    # The relaxation is a plain LP (polynomial, quick): it gets no time limit of its own.
    relaxed = model.milp.solve(relax=True)
    bound = model.u_floor
    if relaxed.status == 0:
        bound = max(bound, relaxed.fun)
    dual = getattr(res, "mip_dual_bound", None)
    if dual is not None and math.isfinite(dual):
        bound = max(bound, dual)
    return Optimum(bound, LP_BOUND, assignment)


def _build(demands: Sequence[float], routes: Sequence[Sequence[Route]],
           capacity: Mapping[DirectedLink, float],
           background: Mapping[DirectedLink, float]) -> _Model:
    scale = max(capacity.values())       # work in units of the largest capacity
    cap = {l: c / scale for l, c in capacity.items()}
    bg = {l: background.get(l, 0.0) / scale for l in capacity}
    u_floor = max((bg[l] / cap[l] for l in capacity), default=0.0)
    m = Milp()
    u = m.column(cost=1.0, lower=u_floor, upper=math.inf, integer=False)
    link_terms: dict[DirectedLink, list[tuple[int, float]]] = {l: [] for l in capacity}
    columns = []
    for d_bps, flow_routes in zip(demands, routes):
        d = d_bps / scale
        flow_cols = []
        one_route = m.row(lower=1.0, upper=1.0)
        cut = m.row([(u, -1.0)], upper=0.0)
        for route in flow_routes:
            x = m.column()
            m.term(one_route, x, 1.0)
            alone = max((min((bg[w] + d) / cap[w] for w in hop.wavelengths) for hop in route.hops),
                        default=0.0)
            m.term(cut, x, alone)
            hop_cols = []
            for hop in route.hops:
                ys = [m.column() for _ in hop.wavelengths]
                m.row([(x, -1.0)] + [(y, 1.0) for y in ys], 0.0, 0.0)
                for y, w in zip(ys, hop.wavelengths):
                    link_terms[w].append((y, d))
                hop_cols.append(ys)
            flow_cols.append((route, x, hop_cols))
        columns.append(flow_cols)

    for link, terms in link_terms.items():
        if terms:
            m.row(terms + [(u, -cap[link])], upper=-bg[link])

    for group in _interchangeable(routes, cap, bg):
        for first, second in zip(group, group[1:]):   # load(second) <= load(first)
            m.row(link_terms[second] + [(c, -d) for c, d in link_terms[first]], upper=0.0)
    return _Model(m, u_floor, columns)


def _interchangeable(routes: Sequence[Sequence[Route]], cap: Mapping[DirectedLink, float],
                     bg: Mapping[DirectedLink, float]) -> list[tuple[DirectedLink, ...]]:
    """Directed wavelength groups (one line system, one direction) that are identical."""
    groups = {}
    for flow_routes in routes:
        for route in flow_routes:
            for hop in route.hops:
                groups[hop.wavelengths] = None
    out = []
    for group in groups:
        if len(group) > 1 and len({cap[w] for w in group}) == 1 and len({bg[w] for w in group}) == 1:
            out.append(group)
    return out


def _decode(model: _Model, x: np.ndarray) -> list[Path]:
    """Each flow's chosen route (largest x) and, on each hop, its chosen wavelength."""
    return [_path(max(flow_cols, key=lambda rc: x[rc[1]]), x) for flow_cols in model.columns]


def _path(route_cols: tuple[Route, int, list[list[int]]], x: np.ndarray) -> Path:
    route, _, hop_cols = route_cols
    return tuple(hop.wavelengths[int(np.argmax([x[c] for c in ys]))]
                 for hop, ys in zip(route.hops, hop_cols))


def _mlu(assignment: Sequence[Path], demands: Sequence[float],
         capacity: Mapping[DirectedLink, float], background: Mapping[DirectedLink, float]) -> float:
    load = dict(background)
    for path, d in zip(assignment, demands):
        for link in path:
            load[link] = load.get(link, 0.0) + d
    return max((load.get(l, 0.0) / c for l, c in capacity.items()), default=0.0)
