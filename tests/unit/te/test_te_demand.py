"""Hedera's demand estimation (Al-Fares et al., NSDI 2010, section 4.2), on cases worked by hand.

Demands are fractions of a NIC. A sender splits its NIC equally among flows not limited
elsewhere; a receiver asked for more than one NIC caps its flows at its max-min fair share,
leaving flows that ask less than that share (sender-limited) alone.
"""

from __future__ import annotations

import pytest

from dcilab.te.demand import estimate_demands


def test_one_sender_to_four_receivers_gets_a_quarter_each():
    assert estimate_demands([("a", "b"), ("a", "c"), ("a", "d"), ("a", "e")]) == \
        pytest.approx([0.25] * 4)


def test_three_senders_into_one_receiver_are_receiver_limited_to_a_third():
    assert estimate_demands([("a", "d"), ("b", "d"), ("c", "d")]) == pytest.approx([1 / 3] * 3)


def test_a_lone_flow_gets_the_whole_nic():
    assert estimate_demands([("a", "b")]) == pytest.approx([1.0])


def test_parallel_connections_between_one_pair_split_the_nic():
    # Two queue pairs from a to b: each is its own flow, each half a NIC.
    assert estimate_demands([("a", "b"), ("a", "b")]) == pytest.approx([0.5, 0.5])


def test_a_sender_limited_flow_leaves_its_share_to_the_receiver_limited_one():
    # a sends to c, d, e, f: 1/4 each. b sends only to c: it asks for 1, but c is then
    # asked 1.25. a->c (1/4) is below c's fair share (1/2), so it keeps 1/4 and b->c is
    # receiver-limited to what is left: 3/4.
    flows = [("a", "c"), ("a", "d"), ("a", "e"), ("a", "f"), ("b", "c")]
    assert estimate_demands(flows) == pytest.approx([0.25, 0.25, 0.25, 0.25, 0.75])


def test_a_receiver_limit_frees_the_senders_other_flows():
    # a -> c and b -> c, plus a -> d. First round: a's two flows 1/2 each, b->c 1; c is
    # asked 1.5, so a->c and b->c get 1/2 each (receiver-limited). a->d then takes what a
    # has left: 1/2. Then x -> c joins as a third sender into c: c's share is 1/3.
    assert estimate_demands([("a", "c"), ("b", "c"), ("a", "d")]) == pytest.approx([0.5, 0.5, 0.5])
    three = estimate_demands([("a", "c"), ("b", "c"), ("x", "c"), ("a", "d")])
    assert three == pytest.approx([1 / 3, 1 / 3, 1 / 3, 2 / 3])


def test_no_flows_no_demands():
    assert estimate_demands([]) == []
