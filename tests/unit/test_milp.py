"""te.milp: the sparse MILP builder the optimum, re-packing and the admission bench share."""

from __future__ import annotations

import math

import pytest

from dcilab.te.milp import Milp


def knapsack() -> tuple[Milp, list[int]]:
    # maximize 5a + 4b + 3c  s.t.  2a + 3b + 2c <= 4  (binaries): a and c, 8.
    m = Milp()
    items = [m.column(cost=-v) for v in (5.0, 4.0, 3.0)]
    weight = m.row(upper=4.0)
    for x, w in zip(items, (2.0, 3.0, 2.0)):
        m.term(weight, x, w)                 # a row filled in after its columns
    return m, items


def test_an_integer_program_and_its_relaxation():
    m, items = knapsack()
    assert (m.columns, m.rows) == (3, 1)
    res = m.solve(time_limit_s=5.0)
    assert res.status == 0 and res.fun == pytest.approx(-8.0)
    assert [round(res.x[x]) for x in items] == [1, 0, 1]
    relaxed = m.solve(relax=True)            # a and c whole, nothing of b fits: still 8
    assert relaxed.fun == pytest.approx(-8.0)
    m.row([(items[1], 1.0)], lower=1.0)      # b forced in: neither a nor c fits beside it
    forced = m.solve()
    assert forced.fun == pytest.approx(-4.0) and round(forced.x[items[1]]) == 1


def test_continuous_columns_equalities_and_an_infeasible_model():
    m = Milp()
    u = m.column(cost=1.0, lower=0.25, upper=math.inf, integer=False)
    x = m.column()
    m.row([(x, 1.0)], 1.0, 1.0)              # x = 1
    m.row([(x, 0.6), (u, -1.0)], upper=0.0)  # u >= 0.6 x
    res = m.solve()
    assert res.status == 0 and res.x[u] == pytest.approx(0.6)
    m.row([(x, 1.0)], upper=0.0)             # and x = 0: nothing fits
    assert m.solve().status == 2             # HiGHS: infeasible
