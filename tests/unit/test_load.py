"""LoadTracker: port counters -> per-direction rates, utilizations and totals in real units.

two-dc has scale 1e-4: one emulated byte stands for 10,000 real bytes. Its intra-site and
host links run at 800 Gb/s (real). Ports (by hand from the file): dc1-leaf1 has hosts on
1, 2 and spines on 3, 4; dc1-spine1 has leaves on 1, 2 and gateways on 3, 4.
"""

from __future__ import annotations

import pytest
from fabric_helpers import topology

from dcilab.core.controller import FabricController
from dcilab.te.load import Direction, LoadTracker
from dcilab.te.reservations import ReservationRequest

SCALE = 1e-4
UPLINK = "dc1-leaf1~spine1"        # dc1-leaf1 port 3 <-> dc1-spine1 port 1
UP = Direction(UPLINK, "dc1-leaf1", "dc1-spine1")
DOWN = Direction(UPLINK, "dc1-spine1", "dc1-leaf1")


@pytest.fixture
def fabric():
    f = topology("two-dc")
    assert f.scale == SCALE
    assert f.ports("dc1-leaf1")[3].name == UPLINK and f.ports("dc1-spine1")[1].name == UPLINK
    assert f.ports("dc1-leaf1")[1].name == "dc1-h1"
    return f


@pytest.fixture
def tracker(fabric):
    return LoadTracker(fabric)


def load_of(snapshot, d: Direction):
    hits = [x for x in snapshot if (x.link, x.src, x.dst) == (d.link, d.src, d.dst)]
    assert len(hits) == 1, d
    return hits[0]


def test_rate_and_utilization_in_real_units(tracker):
    tracker.sample("dc1-leaf1", {3: (0, 0)}, 100.0)
    tracker.sample("dc1-leaf1", {3: (1_000_000, 250_000)}, 101.0)
    # 1e6 emulated bytes / 1e-4 = 1e10 real bytes in 1 s = 8e10 b/s = 80 Gb/s.
    up = load_of(tracker.snapshot(), UP)
    assert up.rate_bps == pytest.approx(8e10)
    assert up.utilization_ratio == pytest.approx(8e10 / 800e9)      # 0.1
    assert up.capacity_bps == pytest.approx(800e9)
    assert up.transmit_bytes_total == pytest.approx(1e10)
    assert up.kind == "fabric" and up.site_a == up.site_b == "dc1"
    # The other direction comes from the leaf's rx counter: 2.5e9 bytes -> 20 Gb/s.
    down = load_of(tracker.snapshot(), DOWN)
    assert down.rate_bps == pytest.approx(2e10)
    assert down.utilization_ratio == pytest.approx(0.025)


def test_rate_is_per_second_of_the_interval(tracker):
    tracker.sample("dc1-leaf1", {3: (0, 0)}, 0.0)
    tracker.sample("dc1-leaf1", {3: (1_000_000, 0)}, 4.0)
    # 1e10 real bytes over 4 s: 2e10 b/s.
    assert load_of(tracker.snapshot(), UP).rate_bps == pytest.approx(2e10)
    assert tracker.rate_bps(UP) == pytest.approx(2e10)


def test_first_sample_gives_no_rate_and_the_total_starts_from_the_switch(tracker):
    tracker.sample("dc1-leaf1", {3: (10 ** 12, 10 ** 12)}, 0.0)
    up = load_of(tracker.snapshot(), UP)
    assert up.rate_bps == 0.0
    assert up.transmit_bytes_total == pytest.approx(10 ** 12 / SCALE)


def test_a_restarted_controller_goes_on_from_the_last_ones_totals(fabric):
    """An SRE restarted the controller under a steady 375 Gb/s: its totals restarted at 0,
    and rate() over them read 213-283 Gb/s for 15 s (the seconds before the new
    controller's first poll were lost). The switches' counters ran on: so do the totals."""
    before = LoadTracker(fabric)
    before.sample("dc1-leaf1", {3: (10 ** 6, 0)}, 0.0)
    before.sample("dc1-leaf1", {3: (5 * 10 ** 6, 0)}, 1.0)
    last = load_of(before.snapshot(), UP).transmit_bytes_total
    after = LoadTracker(fabric)                           # 5 s later, 2e6 bytes on
    after.sample("dc1-leaf1", {3: (7 * 10 ** 6, 0)}, 6.0)
    first = load_of(after.snapshot(), UP).transmit_bytes_total
    assert first - last == pytest.approx(2 * 10 ** 6 / SCALE)


def test_a_counter_the_switch_cannot_read_is_skipped(tracker):
    """OVS answers all ones for a port whose interface is going away (OpenFlow's
    "unavailable"). An SRE saw the link totals jump by 1.8e23 bytes at every lab's end,
    and 9e22 b/s in every traffic graph."""
    tracker.sample("dc1-leaf1", {3: (1000, 1000)}, 0.0)
    tracker.sample("dc1-leaf1", {3: (2 ** 64 - 1, 2 ** 64 - 1)}, 1.0)
    up = load_of(tracker.snapshot(), UP)
    assert up.transmit_bytes_total == pytest.approx(1000 / SCALE)
    assert up.rate_bps == 0.0
    tracker.sample("dc1-leaf1", {3: (3000, 1000)}, 2.0)   # read again: over both seconds
    up = load_of(tracker.snapshot(), UP)
    assert up.transmit_bytes_total == pytest.approx(3000 / SCALE)
    assert up.rate_bps == pytest.approx(2000 / SCALE * 8 / 2)


def test_counter_going_backwards_gives_zero_then_resumes(tracker):
    tracker.sample("dc1-leaf1", {3: (0, 0)}, 0.0)
    tracker.sample("dc1-leaf1", {3: (1_000_000, 0)}, 1.0)
    total_before = load_of(tracker.snapshot(), UP).transmit_bytes_total
    tracker.sample("dc1-leaf1", {3: (500_000, 0)}, 2.0)          # reset / wrap
    up = load_of(tracker.snapshot(), UP)
    assert up.rate_bps == 0.0
    assert up.transmit_bytes_total == pytest.approx(total_before)
    tracker.sample("dc1-leaf1", {3: (1_500_000, 0)}, 3.0)        # +1e6 from the new base
    up = load_of(tracker.snapshot(), UP)
    assert up.rate_bps == pytest.approx(8e10)
    assert up.transmit_bytes_total == pytest.approx(2e10)


def test_64_bit_wrap_is_not_an_absurd_rate(tracker):
    top = 2 ** 64 - 1000
    tracker.sample("dc1-leaf1", {3: (top, top)}, 0.0)
    tracker.sample("dc1-leaf1", {3: (5000, 5000)}, 1.0)
    for d in (UP, DOWN):
        x = load_of(tracker.snapshot(), d)
        assert 0.0 <= x.rate_bps <= x.capacity_bps
    assert load_of(tracker.snapshot(), UP).transmit_bytes_total == pytest.approx(top / SCALE)


def test_switch_reconnect_never_gives_negative_rates_and_totals_keep_growing(tracker):
    totals = []

    def observe():
        snap = tracker.snapshot()
        for x in snap:
            assert x.rate_bps >= 0.0
            assert x.utilization_ratio >= 0.0
            assert x.rate_bps <= x.capacity_bps * 1.01, x
        up = load_of(snap, UP)
        totals.append(up.transmit_bytes_total)
        return up

    tracker.sample("dc1-leaf1", {3: (0, 0), 1: (0, 0)}, 0.0)
    tracker.sample("dc1-leaf1", {3: (5_000_000, 1_000_000), 1: (100, 100)}, 1.0)
    assert observe().rate_bps == pytest.approx(4e11)       # 5e10 real bytes in 1 s
    tracker.switch_down("dc1-leaf1")
    up = observe()
    assert up.rate_bps == 0.0 and not up.up
    # Reconnected: counters restart small; the first sample is a new baseline.
    tracker.sample("dc1-leaf1", {3: (100, 50), 1: (10, 10)}, 30.0)
    assert observe().rate_bps == 0.0
    tracker.sample("dc1-leaf1", {3: (100 + 1_000_000, 50), 1: (10, 10)}, 31.0)
    assert observe().rate_bps == pytest.approx(8e10)
    assert totals == sorted(totals)
    assert totals[-1] == pytest.approx(5e10 + 1e10)


def test_a_switch_that_only_lost_its_control_channel_is_counted_across_its_absence(tracker):
    """Its counters ran on while the controller could not read them: the bytes of those
    seconds are in the total, and the first rate after it is their average."""
    tracker.sample("dc1-leaf1", {3: (0, 0)}, 0.0)
    tracker.sample("dc1-leaf1", {3: (10 ** 6, 0)}, 1.0)
    tracker.switch_down("dc1-leaf1")
    assert load_of(tracker.snapshot(), UP).rate_bps == 0.0
    tracker.sample("dc1-leaf1", {3: (11 * 10 ** 6, 0)}, 11.0)
    up = load_of(tracker.snapshot(), UP)
    assert up.transmit_bytes_total == pytest.approx(11 * 10 ** 6 / SCALE)
    assert up.rate_bps == pytest.approx(10 ** 7 / SCALE * 8 / 10)


def test_host_link_directions_use_the_leaf_counters(tracker):
    # dc1-h1 hangs off dc1-leaf1 port 1; the host has no counters of its own.
    tracker.sample("dc1-leaf1", {1: (0, 0)}, 0.0)
    tracker.sample("dc1-leaf1", {1: (200_000, 1_000_000)}, 2.0)
    snap = tracker.snapshot()
    to_leaf = load_of(snap, Direction("dc1-h1", "dc1-h1", "dc1-leaf1"))
    to_host = load_of(snap, Direction("dc1-h1", "dc1-leaf1", "dc1-h1"))
    # host -> leaf is what the leaf received: 1e6 / 1e-4 * 8 / 2 s = 4e10 b/s.
    assert to_leaf.rate_bps == pytest.approx(4e10)
    assert to_leaf.transmit_bytes_total == pytest.approx(1e10)
    assert to_leaf.kind == "host"
    # leaf -> host is what the leaf sent: 2e5 / 1e-4 * 8 / 2 = 8e9 b/s.
    assert to_host.rate_bps == pytest.approx(8e9)
    assert to_host.utilization_ratio == pytest.approx(8e9 / 800e9)


def test_receive_total_comes_from_the_far_end(tracker):
    tracker.sample("dc1-leaf1", {3: (0, 0)}, 0.0)
    tracker.sample("dc1-spine1", {1: (0, 0)}, 0.0)
    tracker.sample("dc1-leaf1", {3: (1_000_000, 0)}, 1.0)
    tracker.sample("dc1-spine1", {1: (0, 900_000)}, 1.0)     # 10% lost on the way
    up = load_of(tracker.snapshot(), UP)
    assert up.transmit_bytes_total == pytest.approx(1e10)
    assert up.receive_bytes_total == pytest.approx(9e9)
    # What arrived: userspace OVS counts as sent what a shaped link then drops.
    assert up.rate_bps == pytest.approx(7.2e10)


def test_each_total_keeps_to_one_ends_counter_whichever_switch_is_read_first(tracker):
    """A reviewer's case: a restarted controller read the receiver first, and the transmit
    total stood in with its receive counter (80 GB), then fell to the sender's own (30 GB)
    once the sender was read: a counter reset to Prometheus."""
    tracker.sample("dc1-spine1", {1: (0, 8 * 10 ** 6)}, 0.0)     # the receiver read first
    first = load_of(tracker.snapshot(), UP)
    assert not first.transmit_counted and first.receive_counted
    assert first.receive_bytes_total == pytest.approx(8e10)
    tracker.sample("dc1-leaf1", {3: (3 * 10 ** 6, 0)}, 0.5)      # then the sender
    second = load_of(tracker.snapshot(), UP)
    assert second.transmit_counted and second.transmit_bytes_total == pytest.approx(3e10)
    assert second.receive_bytes_total == pytest.approx(8e10)
    # a host has no counters: its switch's stand in, for good
    to_leaf = load_of(tracker.snapshot(), Direction("dc1-h1", "dc1-h1", "dc1-leaf1"))
    assert not to_leaf.transmit_counted and not to_leaf.receive_counted
    tracker.sample("dc1-leaf1", {1: (0, 10 ** 6), 3: (3 * 10 ** 6, 0)}, 1.0)
    to_leaf = load_of(tracker.snapshot(), Direction("dc1-h1", "dc1-h1", "dc1-leaf1"))
    assert to_leaf.transmit_counted and to_leaf.transmit_bytes_total == pytest.approx(1e10)


def test_reserved_bps_is_per_direction(tracker, fabric):
    snap = tracker.snapshot({UP: 36e9})
    assert load_of(snap, UP).reserved_bps == 36e9
    assert load_of(snap, DOWN).reserved_bps == 0.0
    assert len(snap) == 2 * len(fabric.links)


def test_up_follows_switches_and_ports(tracker):
    # Nothing heard from yet: down.
    assert not load_of(tracker.snapshot(), UP).up
    tracker.sample("dc1-leaf1", {}, 0.0)
    assert not load_of(tracker.snapshot(), UP).up          # spine still unheard
    tracker.sample("dc1-spine1", {}, 0.0)
    assert load_of(tracker.snapshot(), UP).up and load_of(tracker.snapshot(), DOWN).up
    assert load_of(tracker.snapshot(), Direction("dc1-h1", "dc1-h1", "dc1-leaf1")).up
    tracker.port_state("dc1-spine1", 1, False)
    snap = tracker.snapshot()
    assert not load_of(snap, UP).up and not load_of(snap, DOWN).up
    assert load_of(snap, Direction("dc1-h1", "dc1-h1", "dc1-leaf1")).up
    tracker.port_state("dc1-spine1", 1, True)
    assert load_of(tracker.snapshot(), UP).up


def test_a_link_that_went_down_carries_nothing_not_its_last_rate(tracker):
    tracker.sample("dc1-leaf1", {3: (0, 0)}, 0.0)
    tracker.sample("dc1-spine1", {1: (0, 0)}, 0.0)
    tracker.sample("dc1-leaf1", {3: (9_000, 0)}, 1.0)
    tracker.sample("dc1-spine1", {1: (0, 9_000)}, 1.0)
    assert load_of(tracker.snapshot(), UP).rate_bps > 0
    tracker.port_state("dc1-spine1", 1, False)        # before the next sample
    snap = tracker.snapshot()
    assert load_of(snap, UP).rate_bps == 0.0 and load_of(snap, UP).utilization_ratio == 0.0
    assert load_of(snap, UP).receive_bytes_total > 0      # what it carried is kept


# --- through the controller -----------------------------------------------------------------


def connect_all(ctl, fabric):
    for sw in fabric.switches.values():
        ctl.switch_connected(sw.dpid)
        ports = {p: sw.interface(p) for p in fabric.ports(sw.name)}
        ctl.ports_described(sw.dpid, ports)
        ctl.barrier_replied(sw.dpid)


def test_controller_link_loads_carry_reservations_and_samples(fabric):
    ctl = FabricController(fabric)
    connect_all(ctl, fabric)
    assert ctl.ready
    assert set(ctl.stats_requests().messages) == {sw.dpid for sw in fabric.switches.values()}
    out = ctl.reserve(ReservationRequest("dc1-h1", "dc2-h3", 36), "r1", 0.0)
    res = out.changed[0]
    leaf = fabric.switches["dc1-leaf1"].dpid
    ctl.port_stats(leaf, {1: (0, 0)}, 10.0)
    ctl.port_stats(leaf, {1: (0, 450_000)}, 11.0)            # 4.5e9 real bytes: 36 Gb/s
    loads = ctl.link_loads()
    held = [Direction("dc1-h1", "dc1-h1", "dc1-leaf1")]
    for hop in res.hops:
        far = fabric.link(hop.link).other(hop.switch).node
        held.append(Direction(hop.link, hop.switch, far))
    assert len(held) == 7
    for d in held:
        assert load_of(loads, d).reserved_bps == pytest.approx(36e9), d
        back = Direction(d.link, d.dst, d.src)
        assert load_of(loads, back).reserved_bps == 0.0, back
    access = load_of(loads, held[0])
    assert access.rate_bps == pytest.approx(36e9)
    assert access.utilization_ratio == pytest.approx(36 / 800)
    # A disconnected switch's counters are ignored, and its links read as down.
    ctl.switch_disconnected(leaf)
    ctl.port_stats(leaf, {1: (0, 10)}, 12.0)
    access = load_of(ctl.link_loads(), held[0])
    assert access.rate_bps == 0.0 and not access.up


def test_a_wavelengths_margin_is_the_reported_one_else_the_plans_and_none_when_down(
        tracker, fabric):
    wave = next(fabric.wavelengths())
    for name in fabric.switches:
        tracker.sample(name, {}, 1.0)

    def margins(**kw):
        return {x.margin_db for x in tracker.snapshot(**kw) if x.link == wave.name}
    assert margins() == {wave.channel.margin_db}                      # the plan's
    assert margins(reported_margins_db={wave.wavelength: 1.25}) == {1.25}
    assert {x.margin_db for x in tracker.snapshot() if x.link == "dc1-leaf1~spine1"} == {None}
    tracker.port_state(wave.a.node, wave.a.port, False)               # cut or dark
    assert margins() == {None} and margins(reported_margins_db={wave.wavelength: 1.25}) == {None}


def test_a_wavelengths_margin_is_in_the_mode_it_runs():
    ring = topology("four-dc-ring")
    link = next(l for l in ring.wavelengths() if l.channel.module == "400ZR+"
                and l.channel.mode == "400G")
    tracker = LoadTracker(ring)
    for name in ring.switches:
        tracker.sample(name, {}, 1.0)
    slower = ring.catalog.module("400ZR+").mode("300G")
    [margin] = {x.margin_db for x in tracker.snapshot(modes={link.name: "300G"})
                if x.link == link.name}
    assert margin == pytest.approx(link.channel.gsnr_db - slower.required_osnr_db)
    assert margin > link.channel.margin_db                    # 300G needs less than 400G


def test_a_snapshot_is_built_once_until_something_it_shows_changes(tracker):
    """Readers ask for it again and again between two polls (ListLinks, /metrics): the
    same list while nothing changed, a new one as soon as anything it shows does."""
    tracker.sample("dc1-leaf1", {3: (0, 0)}, 100.0)
    reserved = {UP: 1e9}
    first = tracker.snapshot(reserved)
    assert tracker.snapshot(dict(reserved)) is first
    reserved[UP] = 2e9                                 # the book's dict, changed in place
    changed = tracker.snapshot(reserved)
    assert changed is not first and load_of(changed, UP).reserved_bps == 2e9
    assert load_of(first, UP).reserved_bps == 1e9      # what an earlier reader holds
    tracker.sample("dc1-leaf1", {3: (1_000_000, 0)}, 101.0)
    sampled = tracker.snapshot(reserved)
    assert sampled is not changed and load_of(sampled, UP).rate_bps == pytest.approx(8e10)
    tracker.port_state("dc1-leaf1", 3, up=False)
    assert not load_of(tracker.snapshot(reserved), UP).up
    assert tracker.snapshot(reserved, out_of_service=frozenset({UPLINK})) is not \
        tracker.snapshot(reserved)
    fabric_only = tracker.snapshot(reserved, kinds=frozenset({"fabric"}))
    assert tracker.snapshot(reserved, kinds={"fabric"}) is fabric_only    # a set will do
    assert tracker.snapshot(reserved) is not fabric_only


def test_a_snapshot_after_a_booking_equals_one_made_afresh(fabric):
    """Reservations come and go between polls: only their directions change, and the
    answer is what a tracker building it from nothing gives."""
    tracker, fresh = LoadTracker(fabric), LoadTracker(fabric)
    for t in (tracker, fresh):
        t.sample("dc1-leaf1", {3: (0, 0)}, 100.0)
        t.sample("dc1-leaf1", {3: (1_000_000, 250_000)}, 101.0)
    reserved = {UP: 1e9, DOWN: 2e9}
    before = tracker.snapshot(reserved)
    reserved.pop(DOWN)
    reserved[UP] = 3e9
    after = tracker.snapshot(reserved)
    assert after == fresh.snapshot(reserved)
    assert load_of(after, UP).reserved_bps == 3e9 and load_of(after, DOWN).reserved_bps == 0
    kept = [i for i, load in enumerate(after) if load.link != UPLINK]
    assert kept and all(after[i] is before[i] for i in kept)   # the rest not rebuilt
