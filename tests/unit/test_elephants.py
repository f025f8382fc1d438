"""Elephant detection (te.elephants) from the per-flow byte counters leaves report.

By hand from topologies/two-dc.yaml: scale 1e-4; dc1 and dc2 are joined by four 400 Gb/s
wavelengths (dc1-dc2-a.w1..w4), so with elephant_fraction 0.1 the threshold is
0.1 x 400 Gb/s = 40 Gb/s real = 40e9 x 1e-4 = 4 Mb/s emulated = 500 000 bytes/s of counter
growth. Half of it (the demotion line) is 250 000 bytes/s.

A flow at 5 Mb/s emulated grows its counter by 625 000 bytes/s: 625 000 x 8 / 1e-4 = 50 Gb/s
real. At 3 Mb/s emulated (375 000 B/s) it is at 30 Gb/s: under the threshold but over half.
At 1 Mb/s emulated (125 000 B/s) it is at 10 Gb/s: under half.

A rate is taken over the last two polls (RATE_WINDOW_POLLS), so a poll at 5 Mb/s after one
at 1 Mb/s reads 3 Mb/s (30 Gb/s), and one at 1 after one at 5 reads 3 too.

dc1-h1 10.1.1.1 and dc1-h2 10.1.1.2 sit on dc1-leaf1, dc1-h3 10.1.2.3 on dc1-leaf2,
dc2-h3 10.2.2.3 on dc2-leaf2.
"""

from __future__ import annotations

import pytest
from fabric_helpers import topology

from dcilab.te.elephants import ElephantDetector, FlowKey
from dcilab.te.paths import PathEngine

LEAF1, LEAF2 = "dc1-leaf1", "dc1-leaf2"
FLOW = FlowKey("10.1.1.1", "10.2.2.3", 6, 40000, 5201)        # dc1-h1 -> dc2-h3, at dc1-leaf1
OTHER = FlowKey("10.1.1.2", "10.2.2.3", 17, 50000, 4791)      # dc1-h2 -> dc2-h3, at dc1-leaf1

THRESHOLD_BPS = 40e9
AT_5_MBPS = 625_000          # bytes per second of counter growth
AT_4_MBPS = 500_000          # exactly the threshold
AT_3_MBPS = 375_000          # under the threshold, over half of it
AT_1_MBPS = 125_000          # under half


@pytest.fixture(scope="module")
def fabric():
    return topology("two-dc")


def detector(fabric, fraction=0.1, polls=2) -> ElephantDetector:
    return ElephantDetector(fabric, PathEngine(fabric), fraction, polls)


class Feed:
    """Cumulative counters for one leaf, advanced one poll (1 s) at a time."""

    def __init__(self, det: ElephantDetector, leaf: str = LEAF1, start: float = 0.0):
        self.det, self.leaf, self.now = det, leaf, start
        self.bytes: dict[FlowKey, int] = {}

    def first(self, *keys: FlowKey, count: int = 0):
        self.bytes = {k: count for k in keys}
        return self.det.sample(self.leaf, dict(self.bytes), self.now)

    def poll(self, rates: dict[FlowKey, int], dt: float = 1.0):
        """Counters grown by rate x dt for each flow in `rates` (the others disappear)."""
        self.now += dt
        self.bytes = {k: self.bytes.get(k, 0) + round(r * dt) for k, r in rates.items()}
        return self.det.sample(self.leaf, dict(self.bytes), self.now)


# --- threshold -----------------------------------------------------------------------------


def test_threshold_is_a_fraction_of_the_slowest_wavelength(fabric):
    assert detector(fabric).threshold_bps(LEAF1, "dc2-leaf2") == THRESHOLD_BPS
    assert detector(fabric).threshold_bps("dc2-leaf1", LEAF2) == THRESHOLD_BPS
    assert detector(fabric, fraction=0.25).threshold_bps(LEAF1, "dc2-leaf1") == 100e9
    assert detector(fabric, fraction=1.0).threshold_bps(LEAF1, "dc2-leaf1") == 400e9


def test_threshold_in_emulated_counter_bytes(fabric):
    """40 Gb/s real is 500 000 bytes/s of emulated counter growth: exactly that qualifies."""
    det = detector(fabric)
    feed = Feed(det)
    feed.first(FLOW)
    feed.poll({FLOW: AT_4_MBPS})
    record = det.flows[FLOW]
    assert record.threshold_bps == THRESHOLD_BPS
    assert record.rate_bps == pytest.approx(THRESHOLD_BPS)
    assert record.above == 1
    new, _ = feed.poll({FLOW: AT_4_MBPS})
    assert [r.key for r in new] == [FLOW]

    det = detector(fabric)
    feed = Feed(det)
    feed.first(FLOW)
    for _ in range(5):
        new, _ = feed.poll({FLOW: AT_4_MBPS - 1})
        assert new == []
    assert det.flows[FLOW].above == 0 and not det.flows[FLOW].elephant


def test_the_threshold_follows_the_paths_as_they_are_now(fabric):
    """An outside reviewer: a flow first seen while its line system was down got a threshold
    of 0 for good, so every later flow of that leaf pair was an elephant, even at 0 b/s;
    and a wavelength stepped down to a slower mode kept its planned rate's threshold."""
    det = detector(fabric)
    for i in range(1, 5):
        det.graph.set_link(f"dc1-dc2-a.w{i}", False)
    feed = Feed(det)
    feed.first(FLOW)
    for _ in range(3):                                  # nothing to steer onto: no elephant
        new, _ = feed.poll({FLOW: AT_4_MBPS // 100})
        assert new == []
    for i in range(1, 5):
        det.graph.set_link(f"dc1-dc2-a.w{i}", True)
    for _ in range(3):                                  # 0.4 Gb/s stays a mouse
        new, _ = feed.poll({FLOW: AT_4_MBPS // 100})
        assert new == [] and det.flows[FLOW].threshold_bps == THRESHOLD_BPS
    det.graph.set_rate("dc1-dc2-a.w2", 200.0)           # one wavelength at half rate
    assert det.threshold_bps(LEAF1, "dc2-leaf2") == THRESHOLD_BPS / 2
    # the first poll at the new rate shares its window with a slow one: two more to go
    for _ in range(2):
        assert feed.poll({FLOW: AT_4_MBPS // 2}) == ([], [])
    new, _ = feed.poll({FLOW: AT_4_MBPS // 2})
    assert [r.key for r in new] == [FLOW]


@pytest.mark.parametrize("fraction, polls", [(0, 2), (-0.1, 2), (1.5, 2), (0.1, 0), (0.1, -1)])
def test_bad_parameters_are_refused(fabric, fraction, polls):
    with pytest.raises(ValueError):
        detector(fabric, fraction, polls)


# --- becoming an elephant ------------------------------------------------------------------


def test_rates_are_in_real_units(fabric):
    det = detector(fabric)
    feed = Feed(det)
    feed.first(FLOW, count=1000)
    feed.poll({FLOW: AT_5_MBPS})
    assert det.flows[FLOW].rate_bps == pytest.approx(50e9)
    feed.poll({FLOW: AT_5_MBPS}, dt=2.0)              # twice the bytes over twice the time
    assert det.flows[FLOW].rate_bps == pytest.approx(50e9)
    feed.poll({FLOW: AT_1_MBPS}, dt=0.5)
    # over the last two polls: 2 s at 50 Gb/s and 0.5 s at 10 Gb/s
    assert det.flows[FLOW].rate_bps == pytest.approx((2 * 50e9 + 0.5 * 10e9) / 2.5)
    feed.poll({FLOW: AT_1_MBPS}, dt=0.5)
    assert det.flows[FLOW].rate_bps == pytest.approx(10e9)


def test_a_steady_flow_reads_its_rate_though_ovs_pushes_its_counter_every_half_second(fabric):
    """Userspace OVS moves a flow's byte counter to OpenFlow when its revalidators run, every
    500 ms (measured: n_bytes of a 20 Mb/s UDP flow stepped every 0.45-0.55 s while the
    reply's duration moved on). Polled every 1.0-1.1 s, a poll caught one, two or three
    pushes: a steady flow read 0.5-1.5x its rate, and a dip restarted its elephant count."""
    det = detector(fabric)
    polls = [0.3 + 1.05 * i + (0.04 if i % 3 else -0.04) for i in range(12)]

    def counter(t: float) -> int:                        # as of the last push, at 5 Mb/s
        return round(int(t / 0.5) * 0.5 * AT_5_MBPS)

    det.sample(LEAF1, {FLOW: counter(polls[0])}, polls[0])
    rates = []
    for t in polls[1:]:
        det.sample(LEAF1, {FLOW: counter(t)}, t)
        rates.append(det.flows[FLOW].rate_bps / 50e9)
    assert all(0.75 <= r <= 1.25 for r in rates[1:]), rates
    assert det.flows[FLOW].elephant


def test_elephant_on_the_second_poll_above_the_threshold(fabric):
    det = detector(fabric)
    feed = Feed(det)
    assert feed.first(FLOW) == ([], [])
    record = det.flows[FLOW]
    assert (record.src_host, record.dst_host) == ("dc1-h1", "dc2-h3")
    assert record.rate_bps == 0.0 and not record.elephant

    new, ended = feed.poll({FLOW: AT_5_MBPS})            # first poll above: not yet
    assert new == [] and ended == []
    assert record.above == 1 and not record.elephant
    assert det.elephants() == []

    new, ended = feed.poll({FLOW: AT_5_MBPS})            # second: an elephant
    assert [r.key for r in new] == [FLOW] and ended == []
    assert record.elephant and det.elephants() == [record]

    new, ended = feed.poll({FLOW: AT_5_MBPS})            # reported once only
    assert new == [] and ended == []
    assert record.elephant


def test_elephant_polls_three_needs_a_third_poll(fabric):
    det = detector(fabric, polls=3)
    feed = Feed(det)
    feed.first(FLOW)
    assert feed.poll({FLOW: AT_5_MBPS}) == ([], [])
    assert feed.poll({FLOW: AT_5_MBPS}) == ([], [])
    assert not det.flows[FLOW].elephant
    new, _ = feed.poll({FLOW: AT_5_MBPS})
    assert [r.key for r in new] == [FLOW]


def test_a_dip_below_the_threshold_restarts_the_count(fabric):
    det = detector(fabric)
    feed = Feed(det)
    feed.first(FLOW)
    assert feed.poll({FLOW: AT_5_MBPS}) == ([], [])
    assert feed.poll({FLOW: AT_1_MBPS}) == ([], [])      # 3 over two polls: the count restarts
    assert det.flows[FLOW].above == 0
    assert feed.poll({FLOW: AT_5_MBPS}) == ([], [])      # 3 again: still under
    assert feed.poll({FLOW: AT_5_MBPS}) == ([], [])      # one above again: not yet
    assert not det.flows[FLOW].elephant
    new, _ = feed.poll({FLOW: AT_5_MBPS})
    assert [r.key for r in new] == [FLOW]


def test_one_short_poll_does_not_restart_the_count(fabric):
    """A poll that caught one counter push of two (a steady 5 Mb/s flow reading 2.5) is
    averaged with the one before: the flow is found on time."""
    det = detector(fabric)
    feed = Feed(det)
    feed.first(FLOW)
    assert feed.poll({FLOW: AT_5_MBPS}) == ([], [])
    new, _ = feed.poll({FLOW: AT_5_MBPS // 2 + AT_1_MBPS})   # 3.5 alone, 4.25 over two
    assert [r.key for r in new] == [FLOW]


def test_flows_are_counted_independently(fabric):
    det = detector(fabric)
    feed = Feed(det)
    feed.first(FLOW, OTHER)
    assert feed.poll({FLOW: AT_5_MBPS, OTHER: AT_1_MBPS}) == ([], [])
    new, _ = feed.poll({FLOW: AT_5_MBPS, OTHER: AT_5_MBPS})
    assert [r.key for r in new] == [FLOW]               # OTHER reads 3 over two polls
    assert feed.poll({FLOW: AT_5_MBPS, OTHER: AT_5_MBPS}) == ([], [])
    new, _ = feed.poll({FLOW: AT_5_MBPS, OTHER: AT_5_MBPS})
    assert [r.key for r in new] == [OTHER]
    assert {r.key for r in det.elephants()} == {FLOW, OTHER}


def test_a_counter_the_switch_cannot_read_is_no_reading(fabric):
    """All ones is OpenFlow's "unavailable" (and the app sums a flow's entries: more)."""
    det, feed = elephant(fabric)
    record = det.flows[FLOW]
    before = (record.rate_bps, record.last_bytes, record.last_time)
    for count in (2 ** 64 - 1, 2 ** 64 + 5000):
        assert det.sample(LEAF1, {FLOW: count}, feed.now + 1) == ([], [])
        assert (record.rate_bps, record.last_bytes, record.last_time) == before
    assert record.elephant


def test_a_repeated_timestamp_changes_nothing(fabric):
    det = detector(fabric)
    feed = Feed(det)
    feed.first(FLOW)
    feed.poll({FLOW: AT_5_MBPS})
    before = (det.flows[FLOW].rate_bps, det.flows[FLOW].above, det.flows[FLOW].last_bytes)
    assert det.sample(LEAF1, {FLOW: 10 ** 9}, feed.now) == ([], [])   # same time: no rate
    record = det.flows[FLOW]
    assert (record.rate_bps, record.above, record.last_bytes) == before


# --- ending -----------------------------------------------------------------------------


def elephant(fabric, polls=2):
    det = detector(fabric, polls=polls)
    feed = Feed(det)
    feed.first(FLOW)
    for _ in range(polls):
        new, _ = feed.poll({FLOW: AT_5_MBPS})
    assert [r.key for r in new] == [FLOW]
    return det, feed


def test_demoted_only_after_as_many_polls_under_half(fabric):
    det, feed = elephant(fabric)
    record = det.flows[FLOW]
    for _ in range(5):                                  # under the threshold, over half: stays
        assert feed.poll({FLOW: AT_3_MBPS}) == ([], [])
        assert record.elephant and record.below == 0
    assert feed.poll({FLOW: AT_1_MBPS // 2}) == ([], [])   # 1.75 over two: one under half
    assert record.elephant and record.below == 1
    assert feed.poll({FLOW: AT_5_MBPS}) == ([], [])     # back over half: the count restarts
    assert record.below == 0
    assert feed.poll({FLOW: AT_1_MBPS // 2}) == ([], [])   # 2.75 over two: over half
    assert feed.poll({FLOW: AT_1_MBPS // 2}) == ([], [])   # 0.5: under half, once
    assert record.elephant
    new, ended = feed.poll({FLOW: AT_1_MBPS // 2})      # second in a row under half: demoted
    assert new == [] and [r.key for r in ended] == [FLOW]
    assert not record.elephant and det.elephants() == []
    assert FLOW in det.flows                            # still counted, as a mouse
    assert feed.poll({FLOW: AT_1_MBPS}) == ([], [])     # not reported as ended again


def test_half_the_threshold_exactly_is_not_under_half(fabric):
    det, feed = elephant(fabric)
    for _ in range(4):
        assert feed.poll({FLOW: 250_000}) == ([], [])  # 20 Gb/s: exactly half
    assert det.flows[FLOW].elephant


def test_demotion_with_three_polls(fabric):
    det, feed = elephant(fabric, polls=3)
    assert feed.poll({FLOW: AT_1_MBPS}) == ([], [])     # 3 over two polls: not under half
    for _ in range(2):
        assert feed.poll({FLOW: AT_1_MBPS}) == ([], [])
    _, ended = feed.poll({FLOW: AT_1_MBPS})
    assert [r.key for r in ended] == [FLOW]


def test_a_demoted_flow_can_become_an_elephant_again(fabric):
    det, feed = elephant(fabric)
    for _ in range(2):
        feed.poll({FLOW: AT_1_MBPS})
    _, ended = feed.poll({FLOW: AT_1_MBPS})
    assert [r.key for r in ended] == [FLOW]
    for _ in range(2):                                  # the first reads 3 over two polls
        assert feed.poll({FLOW: AT_5_MBPS}) == ([], [])
    new, _ = feed.poll({FLOW: AT_5_MBPS})
    assert [r.key for r in new] == [FLOW]


def test_a_disappearing_counter_ends_an_elephant(fabric):
    det, feed = elephant(fabric)
    new, ended = feed.poll({OTHER: AT_1_MBPS})          # FLOW's learned entry timed out
    assert new == [] and [r.key for r in ended] == [FLOW]
    assert not ended[0].elephant
    assert FLOW not in det.flows and det.elephants() == []


def test_a_disappearing_mouse_is_forgotten_without_an_end(fabric):
    det = detector(fabric)
    feed = Feed(det)
    feed.first(FLOW)
    feed.poll({FLOW: AT_1_MBPS})
    assert feed.poll({}) == ([], [])
    assert FLOW not in det.flows


def test_a_counter_restart_gives_no_negative_rate(fabric):
    det = detector(fabric)
    feed = Feed(det)
    feed.first(FLOW, count=10 ** 6)
    feed.poll({FLOW: AT_3_MBPS})
    record = det.flows[FLOW]
    assert det.sample(LEAF1, {FLOW: 1000}, feed.now + 1) == ([], [])   # smaller than before
    # A re-learned entry restarts at 0: its 1000 bytes were all sent in this poll (the rate
    # is over two polls: the one before sent AT_3_MBPS).
    assert record.rate_bps == pytest.approx((AT_3_MBPS + 1000) * 8 / 2 / fabric.scale)
    assert record.last_bytes == 1000 and record.last_time == feed.now + 1
    det.sample(LEAF1, {FLOW: 1000 + AT_5_MBPS}, feed.now + 2)           # from the new base
    assert record.rate_bps == pytest.approx((1000 + AT_5_MBPS) * 8 / 2 / fabric.scale)


def test_a_flow_that_sent_nothing_for_a_poll_has_ended(fabric):
    det, feed = elephant(fabric)
    new, ended = feed.poll({FLOW: 0})                   # the counter did not grow
    assert new == [] and [r.key for r in ended] == [FLOW]
    assert det.elephants() == []


def test_a_restarted_counter_that_grew_is_not_a_silent_flow(fabric):
    """A learned entry re-learned (e.g. after its switch was reprogrammed) restarts from 0:
    a smaller count that is not 0 means the flow did send. One such poll must not end an
    elephant as if it had sent nothing (nor does one poll under half demote it)."""
    det, feed = elephant(fabric)
    record = det.flows[FLOW]
    new, ended = det.sample(LEAF1, {FLOW: 1000}, feed.now + 1)
    assert record.rate_bps >= 0.0
    assert ended == [], "a restarted (re-learned) counter ended the elephant"
    assert record.elephant


# --- flows that are not tracked -------------------------------------------------------------


def test_flows_within_a_site_are_ignored(fabric):
    det = detector(fabric)
    local = FlowKey("10.1.1.1", "10.1.2.3", 6, 40000, 5201)        # dc1-h1 -> dc1-h3
    same_leaf = FlowKey("10.1.1.1", "10.1.1.2", 6, 40000, 5201)    # dc1-h1 -> dc1-h2
    feed = Feed(det)
    feed.first(local, same_leaf)
    for _ in range(4):
        assert feed.poll({local: 10 * AT_5_MBPS, same_leaf: 10 * AT_5_MBPS}) == ([], [])
    assert det.flows == {}


def test_flows_reported_at_the_wrong_leaf_are_ignored(fabric):
    det = detector(fabric)
    wrong = Feed(det, leaf=LEAF2)                        # dc1-h1 is on dc1-leaf1
    wrong.first(FLOW)
    for _ in range(4):
        assert wrong.poll({FLOW: AT_5_MBPS}) == ([], [])
    assert det.flows == {}
    far = Feed(det, leaf="dc2-leaf2")                    # the destination leaf
    far.first(FLOW)
    for _ in range(4):
        assert far.poll({FLOW: AT_5_MBPS}) == ([], [])
    assert det.flows == {}


def test_another_leaf_reporting_does_not_end_a_flow(fabric):
    det, feed = elephant(fabric)
    assert det.sample(LEAF2, {}, feed.now + 1) == ([], [])
    assert det.sample("dc2-leaf2", {}, feed.now + 1) == ([], [])
    assert det.flows[FLOW].elephant


def test_unknown_addresses_are_ignored(fabric):
    det = detector(fabric)
    stranger = FlowKey("192.0.2.1", "10.2.2.3", 6, 1, 2)
    to_nowhere = FlowKey("10.1.1.1", "192.0.2.1", 6, 1, 2)
    feed = Feed(det)
    feed.first(stranger, to_nowhere)
    for _ in range(3):
        assert feed.poll({stranger: AT_5_MBPS, to_nowhere: AT_5_MBPS}) == ([], [])
    assert det.flows == {}


def test_flow_key_text():
    assert str(FLOW) == "tcp 10.1.1.1:40000 > 10.2.2.3:5201"
    assert str(OTHER) == "udp 10.1.1.2:50000 > 10.2.2.3:4791"
    assert str(FlowKey("10.1.1.1", "10.2.2.3", 132, 1, 2)) == "132 10.1.1.1:1 > 10.2.2.3:2"
