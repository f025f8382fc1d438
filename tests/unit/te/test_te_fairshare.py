"""Max-min fair sharing by progressive filling (Bertsekas & Gallager, Data Networks, 6.5.2)."""

from __future__ import annotations

import math

import pytest

from dcilab.te.fairshare import completion_times, max_min_rates


def test_the_classic_long_flow_over_three_links():
    rates = max_min_rates([["l1", "l2", "l3"], ["l1"], ["l2"], ["l3"]],
                          {"l1": 1.0, "l2": 1.0, "l3": 1.0})
    assert rates == pytest.approx([0.5, 0.5, 0.5, 0.5])


def test_a_flow_limited_elsewhere_leaves_the_rest_to_others():
    # l1 (1) carries f0 and f1; l2 (2) carries f1 and f2. l1 fills first at 1/2 each;
    # f2 then takes what f1 leaves of l2: 1.5.
    rates = max_min_rates([["l1"], ["l1", "l2"], ["l2"]], {"l1": 1.0, "l2": 2.0})
    assert rates == pytest.approx([0.5, 0.5, 1.5])


def test_three_bottleneck_levels():
    # l1 (3) has three flows: it fills at 1 each. f2 also crosses l2 (10), where f3 then
    # takes the 9 that f2 leaves.
    rates = max_min_rates([["l1"], ["l1"], ["l1", "l2"], ["l2"]], {"l1": 3.0, "l2": 10.0})
    assert rates == pytest.approx([1.0, 1.0, 1.0, 9.0])


def test_a_flow_crossing_no_link_is_unconstrained():
    assert max_min_rates([[]], {}) == [math.inf]


def test_completion_recomputes_rates_when_a_flow_finishes():
    # One 8 b/s link; 1 B and 2 B flows share it at 4 b/s: the first ends at 2 s with the
    # second half done; the second then runs alone at 8 b/s: 8 b more take 1 s.
    done = completion_times([1.0, 2.0], [["l"], ["l"]], {"l": 8.0})
    assert done.finish_s == pytest.approx((2.0, 3.0))
    assert done.makespan_s == pytest.approx(3.0)


def test_completion_on_disjoint_links_is_independent():
    done = completion_times([10.0, 10.0], [["a"], ["b"]], {"a": 80.0, "b": 40.0})
    assert done.finish_s == pytest.approx((1.0, 2.0))


def test_unknown_link_is_an_error():
    with pytest.raises(KeyError):
        max_min_rates([["nowhere"]], {"l": 1.0})
