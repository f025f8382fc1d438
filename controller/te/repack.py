"""Re-packing the live reservation aggregates so that one more fits, with the fewest moves.

When a request finds no path with room, even after its own aggregate and one other have
been tried elsewhere, the wavelengths may still hold it if several aggregates change
path or wavelength together (packing fragmentation: free capacity scattered in pieces
each too small). Each aggregate is a *unit*: a demand that takes exactly one of its
candidate routes and one wavelength on each of the route's DCI hops (no splitting), as
admission places it. This finds a choice for every unit such that each directed
wavelength keeps  load <= residual capacity,  keeping as many units where they are as
possible (then preferring to move small ones): a small MILP solved by HiGHS
(`scipy.optimize.milp`) within a time limit. None when it finds no such choice in time.

Formulation (as `te.optimum`: one binary per route and per wavelength of each hop)::

    maximize    sum_u  s_u z_u
    subject to  sum_r x[u,r] = 1                       every unit
                sum_w y[u,r,h,w] = x[u,r]               every unit, route, hop
                sum_{u,r,h} d_u y[u,r,h,l] <= c_l        every directed wavelength l
                z_u <= y[u,r0,h,w0_h]                   every hop of u's current path
                x, y, z binary

with s_u = 1 + (a little less for a larger demand): z_u is 1 only if u stays on its
current route and wavelengths. A unit without a current path (the new request) has no z.

Pure: no I/O, no clock; the caller turns the chosen wavelengths into switch-level paths
and checks them (links inside sites are not modelled here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .milp import Milp
from .placement import DirectedLink, Path, Route

# HiGHS's answer is trusted only up to this (bps): capacities are in the 1e11 range.
SLACK_BPS = 1.0
# Stop once the moves are within this fraction of the fewest possible (about one move
# in fifty kept): proving the last one costs HiGHS far more time than it saves.
MOVES_GAP = 0.02


@dataclass(frozen=True)
class Unit:
    """One aggregate to place: its demand (bps), the routes it may take (each within its
    latency bound), and the directed wavelengths it holds now (None: not placed yet)."""

    demand: float
    routes: tuple[Route, ...]
    current: Path | None = None


def repack(units: Sequence[Unit], capacity: Mapping[DirectedLink, float],
           time_limit_s: float = 0.25) -> list[Path] | None:
    """A path for every unit within `capacity` (the residual of every directed wavelength
    once what cannot move is counted), the fewest units moved; None if HiGHS finds none
    within `time_limit_s`. A directed wavelength missing from `capacity` has no room."""
    if not units or any(not u.routes for u in units):
        return None
    model = Milp()
    scale = max(capacity.values(), default=1.0) or 1.0
    largest = max(u.demand for u in units) or 1.0
    usage: dict[DirectedLink, list[tuple[int, float]]] = {}
    layout = []      # per unit: [(route, [[(column, wavelength)] per hop])]
    for u in units:
        d = u.demand / scale
        one_route = model.row(lower=1.0, upper=1.0)
        mine = []
        stay: list[int] = []
        for route in u.routes:
            here = u.current is not None and len(u.current) == len(route.hops) and all(
                w in hop.wavelengths for w, hop in zip(u.current, route.hops))
            x = model.column()
            model.term(one_route, x, 1.0)
            hop_cols = []
            for h, hop in enumerate(route.hops):
                ys = [(model.column(), w) for w in hop.wavelengths]
                model.row([(x, -1.0)] + [(y, 1.0) for y, _ in ys], 0.0, 0.0)
                for y, w in ys:
                    usage.setdefault(w, []).append((y, d))
                    if here and u.current[h] == w:
                        stay.append(y)
                hop_cols.append(ys)
            mine.append((route, hop_cols))
        if stay:
            z = model.column(cost=-(1.0 + 0.5 * (1.0 - u.demand / largest)))  # milp minimizes
            for y in stay:
                model.row([(z, 1.0), (y, -1.0)], upper=0.0)
        layout.append(mine)
    for w, terms in usage.items():
        room = capacity.get(w, 0.0)
        if sum(d for _, d in terms) * scale <= room:
            continue                                     # cannot bind
        model.row(terms, upper=max(0.0, room - SLACK_BPS) / scale)
    res = model.solve(time_limit_s, mip_rel_gap=MOVES_GAP)
    if res.x is None or res.status not in (0, 1):
        return None
    out = []
    for mine in layout:
        route, hop_cols = max(mine, key=lambda rc: _route_value(rc, res.x))
        out.append(tuple(max(ys, key=lambda yw: res.x[yw[0]])[1] for ys in hop_cols))
    load: dict[DirectedLink, float] = {}
    for u, path in zip(units, out):                     # trust, but check
        for w in path:
            load[w] = load.get(w, 0.0) + u.demand
    if any(v > capacity.get(w, 0.0) for w, v in load.items()):
        return None
    return out


def _route_value(route_cols, x: np.ndarray) -> float:
    _, hop_cols = route_cols
    return min((sum(x[c] for c, _ in ys) for ys in hop_cols), default=1.0)
