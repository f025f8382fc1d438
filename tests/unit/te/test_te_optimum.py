"""The optimum unsplittable placement, on cases whose optimum is known by hand."""

from __future__ import annotations

import random

import pytest

from dcilab.te.optimum import LP_BOUND, MILP, solve_optimum
from dcilab.te.placement import Hop, Route

CAP = 100.0


def line(name: str, n: int, frm="a", to="b") -> Hop:
    return Hop(name, frm, to, tuple((f"{name}.w{k}", f"{frm}-gw1") for k in range(1, n + 1)))


def capacity(*hops: Hop, cap=CAP) -> dict:
    return {w: cap for h in hops for w in h.wavelengths}


def test_three_equal_flows_on_two_wavelengths_need_two_on_one():
    hop = line("ab", 2)
    result = solve_optimum([CAP] * 3, [[Route((hop,), 1)]] * 3, capacity(hop))
    assert result.kind == MILP
    assert result.mlu == pytest.approx(2.0)          # not the splittable 1.5
    on = [p[0] for p in result.assignment]
    assert sorted(on.count(w) for w in hop.wavelengths) == [1, 2]


def test_unequal_flows_pack_like_a_partition():
    # 0.6 + 0.6 on one wavelength, 0.8 on the other: 1.2 (0.6 + 0.8 would be 1.4).
    hop = line("ab", 2)
    result = solve_optimum([60.0, 60.0, 80.0], [[Route((hop,), 1)]] * 3, capacity(hop))
    assert result.kind == MILP
    assert result.mlu == pytest.approx(1.2)
    assert result.assignment[0] == result.assignment[1] != result.assignment[2]


def test_background_load_stays_where_it_is():
    # w1 already carries 0.5. Two flows of 0.4: both on w2 (0.8) beats one each (0.9).
    hop = line("ab", 2)
    w1, w2 = hop.wavelengths
    result = solve_optimum([40.0, 40.0], [[Route((hop,), 1)]] * 2, capacity(hop),
                           background={w1: 50.0})
    assert result.mlu == pytest.approx(0.8)
    assert result.assignment == [(w2,), (w2,)]


def test_a_flow_takes_a_two_hop_route_when_the_direct_one_is_contended():
    direct, ac, cb = line("ab", 1), line("ac", 1, "a", "c"), line("cb", 1, "c", "b")
    routes = [Route((direct,), 1), Route((ac, cb), 2)]
    result = solve_optimum([70.0, 70.0], [routes, routes], capacity(direct, ac, cb))
    assert result.mlu == pytest.approx(0.7)
    assert sorted(len(p) for p in result.assignment) == [1, 2]


def test_a_flow_larger_than_a_wavelength_sets_the_floor():
    hop = line("ab", 4)
    result = solve_optimum([250.0, 10.0], [[Route((hop,), 1)]] * 2, capacity(hop))
    assert result.mlu == pytest.approx(2.5)


def test_falls_back_to_a_lower_bound_when_the_milp_runs_out_of_time():
    rng = random.Random(7)
    hop = line("ab", 7)
    demands = [rng.uniform(10.0, 90.0) for _ in range(60)]
    result = solve_optimum(demands, [[Route((hop,), 1)]] * 60, capacity(hop), time_limit_s=1e-3)
    assert result.kind == LP_BOUND
    splittable = sum(demands) / (7 * CAP)
    assert splittable - 1e-6 <= result.mlu
    # a lower bound: never above what a simple greedy (largest first) achieves
    bins = [0.0] * 7
    for d in sorted(demands, reverse=True):
        bins[bins.index(min(bins))] += d
    assert result.mlu <= max(bins) / CAP + 1e-6


def test_every_flow_needs_a_candidate():
    hop = line("ab", 1)
    with pytest.raises(ValueError):
        solve_optimum([1.0], [[]], capacity(hop))
