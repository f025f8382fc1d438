"""FabricController reservations end to end through simulated switches.

Every switch of two-dc is connected, told its ports and programmed; the Outbox messages
are applied to one FakeOFTable per dpid, wired into a FakeFabric by fabric_helpers, and
packets are traced through it.

By hand from two-dc.yaml: dc1-h1 is dc1-leaf1 port 1 (10.1.1.1); dc2-h3 is dc2-leaf2 port 1
(10.2.2.3). dc1-h1 -> dc2-h3 crosses dc1-leaf1, a dc1 spine, dc1-gw1, one wavelength,
dc2-gw1, a dc2 spine, dc2-leaf2: six switches. scale 1e-4, so 36 Gb/s is policed at
36e9 x 1e-4 = 3.6e6 b/s = 3600 kb/s, burst max(120, 3600 x 0.1) = 360 kbit.
"""

from __future__ import annotations

import math

import pytest
from controller_lab import ControllerLab
from fabric_helpers import dci_links_of_path, tcp_packet, topology
from fakeoftable import FakeOFTable, Outcome
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser


from dcilab.core.controller import FabricController
from dcilab.core.damping import HOLD_DOWN_S
from dcilab.core.reservation_rules import PRIORITY_RESERVATION
from dcilab.core.rules import PRIORITY_NOT_RESERVED_CLASS, SPREAD_HOLD_S
from dcilab.te.reservations import AdmissionError, ReservationRequest, State, key_of

SRC, DST = "dc1-h1", "dc2-h3"
RATE_KBPS = 3600            # 36 Gb/s x 1e-4
BURST_KBITS = 360


Lab = ControllerLab


@pytest.fixture
def fabric():
    return topology("two-dc")


@pytest.fixture
def lab(fabric):
    lab = Lab(fabric)
    lab.bring_up_all()
    return lab


def request(src=SRC, dst=DST, gbps=36.0, **kw) -> ReservationRequest:
    return ReservationRequest(src, dst, gbps, **kw)


def hop_switches(res) -> list[str]:
    return [h.switch for h in res.hops]


def assert_pinned(lab: Lab, res) -> None:
    """The reservation's traffic follows its hops, one way only, and is metered at ingress."""
    fabric = lab.fabric
    src, dst = fabric.hosts[res.request.src_host], fabric.hosts[res.request.dst_host]
    paths = lab.trace(src.name, dst.name)
    assert len(paths) == 1, [p.choices for p in paths]
    path = paths[0]
    assert path.choices == ()
    assert path.outcome is Outcome.EGRESS
    assert path.end == (lab.dpid(dst.leaf), dst.port)
    assert [(h.dpid, h.out_port) for h in path.hops] == \
        [(lab.dpid(h.switch), h.out_port) for h in res.hops]
    pkt = {**tcp_packet(src, dst)}
    ingress = lab.table(src.leaf)
    assert ingress.meter_for(pkt) == res.meter_id
    meter = ingress.meters[res.meter_id]
    assert meter.flags & ofp.OFPMF_KBPS
    assert [b.rate for b in meter.bands] == [round(res.request.bandwidth_gbps * 1e9
                                                   * fabric.scale / 1000)]
    # Above every other rule on every switch of the path.
    for hop_in, hop in zip(path.hops, res.hops):
        table = lab.net.tables[hop_in.dpid]
        entry = table.lookup({**pkt, "in_port": hop_in.in_port})
        assert entry.priority == PRIORITY_RESERVATION
        # (but the drop of host packets posing as the reserved class: not the pair's own)
        others = [e.priority for e in table.flows()
                  if e.priority not in (PRIORITY_RESERVATION, PRIORITY_NOT_RESERVED_CLASS)]
        assert PRIORITY_RESERVATION > max(others)
    # Only the ingress leaf meters it.
    for hop_in in path.hops[1:]:
        assert lab.net.tables[hop_in.dpid].meter_for({**pkt, "in_port": hop_in.in_port}) is None


def assert_spread(lab: Lab, src: str, dst: str) -> None:
    paths = lab.trace(src, dst)
    d = lab.fabric.hosts[dst]
    assert len(paths) > 1
    assert all(p.choices for p in paths)
    assert {p.end for p in paths} == {(lab.dpid(d.leaf), d.port)}
    assert all(p.outcome is Outcome.EGRESS for p in paths)


# --- before any reservation ------------------------------------------------------------------


def test_without_reservations_traffic_spreads_and_is_unmetered(lab):
    assert_spread(lab, SRC, DST)
    s, d = lab.fabric.hosts[SRC], lab.fabric.hosts[DST]
    assert lab.table("dc1-leaf1").meter_for(tcp_packet(s, d)) is None


# --- admitting and pinning -------------------------------------------------------------------


def test_reservation_pins_the_pair_and_meters_it_at_the_ingress_leaf(lab):
    out = lab.send(lab.ctl.reserve(request(), "r1", 0.0))
    assert len(out.changed) == 1
    res = out.changed[0]
    assert res.state is State.PENDING and res.reservation_id == "r1"
    switches = hop_switches(res)
    assert switches[0] == "dc1-leaf1" and switches[-1] == "dc2-leaf2"
    assert switches[2:4] == ["dc1-gw1", "dc2-gw1"]
    assert len(switches) == 6
    # Messages go to exactly the path's switches, each batch closed by a barrier.
    assert set(out.messages) == {lab.dpid(s) for s in switches}
    for msgs in out.messages.values():
        assert isinstance(msgs[-1], parser.OFPBarrierRequest)
    assert_pinned(lab, res)
    meter = lab.table("dc1-leaf1").meters[res.meter_id]
    assert [(b.rate, b.burst_size) for b in meter.bands] == [(RATE_KBPS, BURST_KBITS)]
    assert isinstance(meter.bands[0], parser.OFPMeterBandDrop)
    # Other pairs, and the reverse direction, still spread over the select groups.
    assert_spread(lab, "dc1-h2", "dc2-h4")
    assert_spread(lab, DST, SRC)
    assert_spread(lab, SRC, "dc2-h4")


def test_pending_until_every_path_switch_acknowledges(lab):
    res = lab.send(lab.ctl.reserve(request(), "r1", 0.0)).changed[0]
    switches = hop_switches(res)
    # Barrier replies from switches off the path change nothing.
    for name in lab.fabric.switches:
        if name not in switches:
            assert lab.barrier(name).changed == []
    for name in switches[:-1]:
        assert lab.barrier(name).changed == []
        assert lab.ctl.book.get("r1").state is State.PENDING
    done = lab.barrier(switches[-1])
    assert [(r.reservation_id, r.state) for r in done.changed] == [("r1", State.ACTIVE)]
    assert lab.ctl.book.get("r1").state is State.ACTIVE
    # Later replies do not report it again.
    for name in switches:
        assert lab.barrier(name).changed == []


def test_reservation_barrier_counts_after_the_program_barrier():
    fabric = topology("two-dc")
    lab = Lab(fabric)
    for name in fabric.switches:
        lab.connect(name)                      # programs sent, barriers not yet back
    res = lab.send(lab.ctl.reserve(request(), "r1", 0.0)).changed[0]
    switches = hop_switches(res)
    for name in switches:                      # these answer the program barriers
        assert lab.barrier(name).changed == []
    assert lab.ctl.book.get("r1").state is State.PENDING
    for name in switches[:-1]:
        assert lab.barrier(name).changed == []
    assert [r.state for r in lab.barrier(switches[-1]).changed] == [State.ACTIVE]


def test_reservation_before_switches_connect_goes_out_in_their_program(fabric):
    lab = Lab(fabric)
    out = lab.ctl.reserve(request(), "r1", 0.0)
    assert out.messages == {}
    res = out.changed[0]
    assert res.state is State.PENDING
    switches = hop_switches(res)
    for name in fabric.switches:
        program = lab.connect(name)
        pinned = [m for m in program if isinstance(m, parser.OFPFlowMod)
                  and m.priority == PRIORITY_RESERVATION]
        assert len(pinned) == (1 if name in switches else 0), name
    assert_pinned(lab, res)
    for name in fabric.switches:
        if name not in switches:
            assert lab.barrier(name).changed == []
    for name in switches[:-1]:
        assert lab.barrier(name).changed == []
    assert lab.ctl.book.get("r1").state is State.PENDING
    assert [r.state for r in lab.barrier(switches[-1]).changed] == [State.ACTIVE]


def test_a_pair_on_one_leaf_that_dies_is_degraded_and_the_tick_restores_the_others(lab):
    """A restart tester's traceback, at every tick: two hosts of one leaf have a path of
    no hop once their leaf is down, and naming its bottleneck raised ValueError, which
    ended the tick before any other pair was restored."""
    fabric = lab.fabric
    leaf = fabric.hosts[SRC].leaf
    src, dst = [h.name for h in fabric.hosts.values() if h.leaf == leaf][:2]
    local = lab.send(lab.ctl.reserve(request(src, dst, 10), "local", 0.0)).changed[0]
    away = next(h.name for h in fabric.hosts.values() if h.site == "dc1" and h.leaf != leaf)
    other = lab.send(lab.ctl.reserve(request(away, DST, 10), "other", 1.0)).changed[0]
    lab.ack_all()
    [wave] = [h.wavelength for h in other.hops if h.wavelength]
    for link in fabric.ports(leaf).values():                 # the leaf died: its spines'
        far = link.other(leaf)                               # ports went down, then its
        if far.node in fabric.switches:                      # connection
            lab.send(lab.ctl.port_changed(lab.dpid(far.node), far.port, False, 0.2))
    lab.send(lab.ctl.switch_disconnected(lab.dpid(leaf)))
    assert not lab.ctl.engine.switch_up(leaf)
    gw_link = fabric.link(wave)
    lab.send(lab.ctl.port_changed(lab.dpid(gw_link.a.node), gw_link.a.port, False, 0.2))
    out = lab.send(lab.ctl.tick(0.3))
    states = {r.reservation_id: r.state for r in out.changed}
    assert states["local"] is State.DEGRADED
    assert lab.ctl.book.get("local").reason.endswith(f"no path from {src} to {dst} is up")
    moved = lab.ctl.book.get("other")                        # restored at the same tick
    assert moved.state is not State.DEGRADED
    assert wave not in {h.wavelength for h in moved.hops if h.wavelength}
    assert local.reservation_id == "local"


def test_a_reservation_whose_only_gateway_dies_is_degraded_then_back_when_it_returns(lab):
    res = lab.send(lab.ctl.reserve(request(), "r1", 0.0)).changed[0]
    lab.ack_all()
    switches = hop_switches(res)
    gw = switches[2]                         # two-dc has one line system: no way around
    # Its connection alone: it is the only way between the sites, so routes stay.
    lab.send(lab.ctl.switch_disconnected(lab.dpid(gw)))
    assert lab.send(lab.ctl.tick(0.1)).changed == []
    assert lab.ctl.book.get("r1").state is State.ACTIVE
    assert_pinned(lab, res)
    # It died: its neighbours' ports go down (the far gateway's wavelengths too).
    for link in lab.fabric.ports(gw).values():
        far = link.other(gw)
        lab.send(lab.ctl.port_changed(lab.dpid(far.node), far.port, False, 0.2))
    out = lab.send(lab.ctl.tick(0.3))         # displaced reservations are placed at a tick
    assert [(r.reservation_id, r.state) for r in out.changed] == [("r1", State.DEGRADED)]
    assert "is down" in lab.ctl.book.get("r1").reason
    assert lab.ctl.book.reserved_total() == 0            # it holds nothing while degraded
    lab.net.tables[lab.dpid(gw)] = FakeOFTable()          # came back empty
    lab.ctl.switch_connected(lab.dpid(gw))
    lab.send(lab.ctl.ports_described(lab.dpid(gw), lab.ports(gw), frozenset(), 0.4))
    for link in lab.fabric.ports(gw).values():
        far = link.other(gw)
        lab.send(lab.ctl.port_changed(lab.dpid(far.node), far.port, True, 0.5))
    lab.send(lab.ctl.tick(0.6 + HOLD_DOWN_S))            # links back: after their hold-down
    back = lab.ctl.book.get("r1")
    assert back.state is State.PENDING and back.reason == ""
    assert_pinned(lab, back)
    lab.ack_all()
    assert lab.ctl.book.get("r1").state is State.ACTIVE


def test_idempotent_retry_sends_nothing(lab):
    first = lab.send(lab.ctl.reserve(request(request_id="job"), "r1", 0.0))
    again = lab.ctl.reserve(request(request_id="job"), "r2", 1.0)
    assert again.messages == {} and again.changed == []
    assert set(lab.ctl.book.reservations) == {"r1"}
    assert_pinned(lab, first.changed[0])


def test_refusal_sends_nothing(lab):
    with pytest.raises(AdmissionError) as info:
        lab.ctl.reserve(request(gbps=361), "big", 0.0)      # a wavelength holds 360
    assert info.value.code == AdmissionError.PRECONDITION
    assert lab.ctl.book.reservations == {}


# --- release and expiry ----------------------------------------------------------------------


def fresh_states(fabric) -> dict[str, object]:
    """Table states of switches programmed by a controller that never saw a reservation."""
    other = Lab(fabric)
    other.bring_up_all()
    return other.states()


def test_release_removes_the_pin_and_the_meter(lab, fabric):
    res = lab.send(lab.ctl.reserve(request(), "r1", 0.0)).changed[0]
    for name in hop_switches(res):
        lab.barrier(name)
    out = lab.send(lab.ctl.end("r1"))
    assert [(r.reservation_id, r.state) for r in out.changed] == [("r1", State.RELEASED)]
    assert set(out.messages) == {lab.dpid(s) for s in hop_switches(res)}
    assert res.meter_id not in lab.table("dc1-leaf1").meters
    assert_spread(lab, SRC, DST)
    s, d = fabric.hosts[SRC], fabric.hosts[DST]
    assert lab.table("dc1-leaf1").meter_for(tcp_packet(s, d)) is None
    assert lab.states() == fresh_states(fabric)
    # Ending it again, or an id never seen: NOT_FOUND, nothing sent (the service answers
    # for ended ones).
    for rid in ("r1", "nope"):
        with pytest.raises(AdmissionError) as info:
            lab.ctl.end(rid)
        assert info.value.code == AdmissionError.NOT_FOUND


def test_expire_ends_due_reservations(lab, fabric):
    timed = lab.send(lab.ctl.reserve(request(duration_s=10), "timed", 100.0)).changed[0]
    keep = lab.send(lab.ctl.reserve(request("dc1-h2", "dc2-h4"), "keep", 100.0)).changed[0]
    early = lab.ctl.expire(109.999)
    assert early.messages == {} and early.changed == []
    out = lab.send(lab.ctl.expire(110.0))
    assert [(r.reservation_id, r.state) for r in out.changed] == [("timed", State.EXPIRED)]
    assert "timed" not in lab.ctl.book.reservations
    assert timed.meter_id not in lab.table("dc1-leaf1").meters
    assert_spread(lab, SRC, DST)
    assert_pinned(lab, keep)
    assert lab.ctl.expire(10 ** 9).changed == []


def test_reservations_of_one_pair_share_a_path_and_a_meter_at_their_sum(lab, fabric):
    first = lab.send(lab.ctl.reserve(request(), "r1", 0.0)).changed[0]
    second = lab.send(lab.ctl.reserve(request(gbps=20), "r2", 0.0)).changed[0]
    assert second.hops == first.hops and second.meter_id == first.meter_id
    ingress = lab.table(fabric.hosts["dc1-h1"].leaf)
    assert [b.rate for b in ingress.meters[first.meter_id].bands] == \
        [round((36 + 20) * 1e9 * fabric.scale / 1000)]
    lab.send(lab.ctl.end("r1"))
    assert lab.ctl.book.get("r2").state.live
    # r2 still holds its bandwidth, so its traffic must still be pinned and policed at 20.
    assert_pinned(lab, second)


# --- reconnects and restore ---------------------------------------------------------------


def test_reprogramming_after_reconnect_is_idempotent_and_keeps_reservations(lab, fabric):
    res = lab.send(lab.ctl.reserve(request(), "r1", 0.0)).changed[0]
    for name in hop_switches(res):
        lab.barrier(name)
    assert lab.ctl.book.get("r1").state is State.ACTIVE
    before = lab.states()
    for name in fabric.switches:
        lab.ctl.switch_disconnected(lab.dpid(name))
    for name in fabric.switches:                  # onto the old tables, one by one
        lab.connect(name)
    # Each switch came back routing around the ones still away, then followed them back:
    # the same routing in the end, the reservation kept (on the other, as short, spine
    # of a site if it was moved there meanwhile: a spine away is routed around).
    def routing(states):
        return {name: (frozenset(f for f in state.flows if f[1] != PRIORITY_RESERVATION),
                       state.groups, state.meters) for name, state in states.items()}
    assert routing(lab.states()) == routing(before)
    lab.ack_all()
    assert lab.ctl.book.get("r1").state is State.ACTIVE
    for name in fabric.switches:
        assert lab.barrier(name).changed == []      # already active: nothing to report
    now = lab.ctl.book.get("r1")
    assert now.state is State.ACTIVE and now.meter_id == res.meter_id
    assert [h.wavelength for h in now.hops] == [h.wavelength for h in res.hops]
    assert_pinned(lab, now)


def test_a_reconnecting_switch_is_reprogrammed_in_one_atomic_bundle_its_meters_kept(lab):
    """What a restarted controller sends a switch it finds programmed: its flows and groups
    rewritten from empty tables only inside one atomic bundle (packets see the old tables
    or the new), the meter set again before it, never deleted (that takes its flows)."""
    res = lab.send(lab.ctl.reserve(request(), "r1", 0.0)).changed[0]
    lab.ack_all()
    leaf = lab.dpid(hop_switches(res)[0])
    before = lab.table(hop_switches(res)[0]).table_state()
    lab.ctl.switch_disconnected(leaf)
    lab.ctl.switch_connected(leaf)
    msgs = lab.send(lab.ctl.ports_described(leaf, lab.ports(hop_switches(res)[0]), frozenset(),
                                            lab.CONNECT_TIME)).messages[leaf]
    kinds = [type(m).__name__ for m in msgs]
    opened = kinds.index("ONFBundleCtrlMsg")
    assert set(kinds[:opened]) == {"OFPMeterMod"}
    assert [(m.meter_id, m.command) for m in msgs[:opened]] == [
        (ofp.OFPM_CONTROLLER, ofp.OFPMC_ADD), (ofp.OFPM_CONTROLLER, ofp.OFPMC_MODIFY),
        (res.meter_id, ofp.OFPMC_ADD), (res.meter_id, ofp.OFPMC_MODIFY)]
    commit = len(kinds) - 1 - kinds[::-1].index("ONFBundleCtrlMsg")
    assert set(kinds[opened + 1:commit]) == {"ONFBundleAddMsg"}
    assert kinds[commit + 1:] == ["OFPMeterConfigStatsRequest", "OFPBarrierRequest"]
    assert {msgs[opened].bundle_id, msgs[commit].bundle_id} == {msgs[opened + 1].bundle_id}
    assert msgs[opened + 1].message.command == ofp.OFPFC_DELETE      # from empty tables
    assert lab.table(hop_switches(res)[0]).table_state() == before


def test_a_meter_whose_pair_ended_while_its_leaf_was_away_is_deleted_when_it_is_back(lab):
    """Connecting keeps meters (deleting one deletes its flows): after its program a leaf
    is asked for its meters, and one that no live pair holds (a reservation that ended
    while the leaf was away, or before a restarted controller reached it) is deleted."""
    res = lab.send(lab.ctl.reserve(request(), "r1", 0.0)).changed[0]
    other = lab.send(lab.ctl.reserve(request("dc1-h2", "dc2-h4", 10), "r2", 0.0)).changed[0]
    lab.ack_all()
    leaf = hop_switches(res)[0]
    # and the packet-in limit (the controller meter), which is no reservation's: kept
    assert set(lab.table(leaf).meters) == {res.meter_id, other.meter_id, ofp.OFPM_CONTROLLER}
    lab.ctl.switch_disconnected(lab.dpid(leaf))
    lab.ctl.end("r1", State.EXPIRED)
    program = lab.connect(leaf)
    assert set(lab.table(leaf).meters) == {res.meter_id, other.meter_id, ofp.OFPM_CONTROLLER}
    assert any(isinstance(m, parser.OFPMeterConfigStatsRequest) for m in program)
    out = lab.send(lab.ctl.meters_listed(lab.dpid(leaf), set(lab.table(leaf).meters)))
    assert set(lab.table(leaf).meters) == {other.meter_id, ofp.OFPM_CONTROLLER}
    assert [m.meter_id for m in out.messages[lab.dpid(leaf)]] == [res.meter_id]
    assert_pinned(lab, other)
    assert lab.ctl.meters_listed(lab.dpid(leaf), {other.meter_id}).messages == {}


def test_restore_puts_a_stored_reservation_back(fabric):
    old = Lab(fabric)
    pending = old.ctl.reserve(request(), "r1", 0.0).changed[0]
    active = old.ctl.reserve(request("dc1-h2", "dc2-h4", 50), "r2", 0.0).changed[0]
    active = active.with_state(State.ACTIVE)
    released = old.ctl.reserve(request("dc1-h3", "dc2-h1", 10), "r3", 0.0).changed[0]
    released = old.ctl.end("r3").changed[0]

    lab = Lab(fabric)
    for res in (pending, active, released):
        lab.ctl.restore(res)
    assert set(lab.ctl.book.reservations) == {"r1", "r2"}      # an ended one books nothing
    lab.bring_up_all()
    assert_pinned(lab, pending)
    assert_pinned(lab, active)
    assert_spread(lab, "dc1-h3", "dc2-h1")
    assert lab.ctl.book.get("r1").state is State.ACTIVE
    assert lab.ctl.book.get("r2").state is State.ACTIVE
    # The restored bandwidth is held: a new reservation gets a meter id no live one has
    # (an ended one's may come back: its meter left the switches with it), and the
    # wavelengths count what is already booked.
    new = lab.send(lab.ctl.reserve(request("dc1-h4", "dc2-h2", 10), "r4", 0.0)).changed[0]
    assert new.meter_id not in {pending.meter_id, active.meter_id}
    assert_pinned(lab, new)
    assert_pinned(lab, pending)


def test_gathering_programs_every_switch_together_once_all_have_listed_their_ports(fabric):
    lab = Lab(fabric, FabricController(fabric, gather_s=3.0))
    names = list(fabric.switches)
    for name in names[:-1]:
        dpid = lab.dpid(name)
        lab.ctl.switch_connected(dpid)
        out = lab.send(lab.ctl.ports_described(dpid, lab.ports(name), frozenset(), 10.0))
        assert dpid not in out.messages, name              # nothing yet, not even a barrier
    assert lab.send(lab.ctl.tick(12.9)).messages == {}     # before the deadline
    last = lab.dpid(names[-1])
    lab.ctl.switch_connected(last)
    out = lab.send(lab.ctl.ports_described(last, lab.ports(names[-1]), frozenset(), 13.0))
    assert set(out.messages) == {lab.dpid(n) for n in names}
    for msgs in out.messages.values():
        assert isinstance(msgs[-1], parser.OFPBarrierRequest)
    lab.ack_all()
    assert lab.ctl.ready
    assert_spread(lab, SRC, DST)


def test_gathering_stops_at_its_deadline_and_a_late_switch_is_programmed_on_arrival(fabric,
                                                                                     caplog):
    lab = Lab(fabric, FabricController(fabric, gather_s=3.0))
    late, *names = list(fabric.switches)
    for name in names:
        lab.ctl.switch_connected(lab.dpid(name))
        lab.send(lab.ctl.ports_described(lab.dpid(name), lab.ports(name), frozenset(), 10.0))
    out = lab.send(lab.ctl.tick(13.0))
    assert set(out.messages) == {lab.dpid(n) for n in names}
    assert any(late in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    program = lab.connect(late)                   # programmed as it arrives, from now on
    assert program
    lab.ack_all()
    assert lab.ctl.ready


def test_ending_a_degraded_reservation_sends_nothing_its_degrading_removed(lab):
    """An outside reviewer: releasing one of a DEGRADED pair's reservations resized the
    meter its degrading had deleted (the switch refused it: an OpenFlow error)."""
    for rid in ("r1", "r2"):
        lab.send(lab.ctl.reserve(request(gbps=10.0), rid, 0.0))
    lab.ack_all()
    gw = hop_switches(lab.ctl.book.get("r1"))[2]
    for link in lab.fabric.ports(gw).values():
        far = link.other(gw)
        lab.send(lab.ctl.port_changed(lab.dpid(far.node), far.port, False, 0.2))
    out = lab.send(lab.ctl.tick(0.3))
    assert {r.state for r in out.changed} == {State.DEGRADED}
    for rid in ("r1", "r2"):
        out = lab.ctl.end(rid)
        assert out.messages == {} and out.changed[0].state is State.RELEASED


def test_a_whole_line_system_down_is_named_and_no_room_is_not_claimed(lab):
    """An outside tester: with every wavelength of dc1-dc2-a cut, the reason named w1 alone
    and said 'no other path has room: no path ... is up'."""
    lab.send(lab.ctl.reserve(request(gbps=10.0), "r1", 0.0))
    lab.ack_all()
    for link in lab.fabric.wavelengths():
        lab.send(lab.ctl.port_changed(lab.dpid(link.a.node), link.a.port, False, 0.2))
    lab.send(lab.ctl.tick(0.3))
    res = lab.ctl.book.get("r1")
    assert res.state is State.DEGRADED
    assert res.reason == ("line system dc1-dc2-a is down (all 4 wavelengths), so no path from "
                          "dc1-h1 to dc2-h3 is up"), res.reason


# -- the hashed spread beside reservations -------------------------------------------------


def hashed_onto(lab: Lab, src: str, dst: str) -> set[str]:
    """The wavelengths a packet of src -> dst (not reserved) may be hashed onto."""
    return {link.name for path in lab.trace(src, dst)
            for link in dci_links_of_path(lab.fabric, path.hops)}


def spread_weights_at(lab: Lab, gateway: str) -> set[tuple[int, ...]]:
    """The bucket weights of the gateway's select groups over more than one DCI port."""
    dci = {p for p, link in lab.fabric.ports(gateway).items() if link.wavelength}
    return {tuple(b.weight for b in g.buckets)
            for g in lab.table(gateway).groups.values()
            if g.type == ofp.OFPGT_SELECT
            and {a.port for b in g.buckets for a in b.actions if hasattr(a, "port")} <= dci
            and len(g.buckets) > 1}


def test_hashed_flows_keep_off_a_reserved_wavelength_while_one_has_nothing_booked(lab):
    """A busy reservation lost packets to a new elephant hashed onto its wavelength before
    steering pinned it (an emulation tester's): from the tick after a reservation, the
    gateway hashes only onto wavelengths with nothing booked, in the reserved direction."""
    all_four = {f"dc1-dc2-a.w{n}" for n in range(1, 5)}
    assert hashed_onto(lab, "dc1-h2", "dc2-h4") == all_four
    res = lab.send(lab.ctl.reserve(request(gbps=150.0), "r1", 0.0)).changed[0]
    lab.ack_all()
    reserved = next(h.link for h in res.hops if h.wavelength)
    assert hashed_onto(lab, "dc1-h2", "dc2-h4") == all_four      # not before the tick
    out = lab.send(lab.ctl.tick(0.1))
    assert set(out.messages) == {lab.dpid("dc1-gw1")}            # one gateway, one way
    assert hashed_onto(lab, "dc1-h2", "dc2-h4") == all_four - {reserved}
    assert hashed_onto(lab, "dc2-h4", "dc1-h2") == all_four      # nothing booked that way
    assert lab.trace(SRC, DST)[0].outcome is Outcome.EGRESS      # its own traffic: pinned
    assert lab.send(lab.ctl.tick(0.2)).messages == {}            # nothing changed: nothing sent
    # The other three dark, before the controller hears of it: the switch itself hashes
    # onto the reserved one (a select group whose buckets weighed 0 would drop them).
    for name in all_four - {reserved}:
        link = lab.fabric.link(name)
        lab.net.down_ports |= {(lab.dpid(end.node), end.port) for end in (link.a, link.b)}
    assert hashed_onto(lab, "dc1-h2", "dc2-h4") == {reserved}
    lab.net.down_ports.clear()
    lab.send(lab.ctl.end("r1"))
    # Released: held a while before best effort is re-hashed onto it (reservations that
    # come and go would re-hash, and reorder, every flow of the line system at each).
    assert lab.send(lab.ctl.tick(0.3)).messages == {}
    assert hashed_onto(lab, "dc1-h2", "dc2-h4") == all_four - {reserved}
    lab.send(lab.ctl.tick(0.3 + SPREAD_HOLD_S))
    assert hashed_onto(lab, "dc1-h2", "dc2-h4") == all_four
    assert spread_weights_at(lab, "dc1-gw1") == {(1, 1, 1, 1)}


def test_with_every_wavelength_booked_hashed_flows_spread_by_what_is_left(lab):
    # Each too large for what the wavelengths before it have left (best fit would put two
    # on one wavelength otherwise): one pair on each of the four.
    pairs = [("dc1-h1", "dc2-h1", 360.0), ("dc1-h2", "dc2-h2", 300.0),
             ("dc1-h3", "dc2-h3", 200.0), ("dc1-h4", "dc2-h4", 180.0)]
    booked = {}
    for n, (src, dst, gbps) in enumerate(pairs):
        res = lab.send(lab.ctl.reserve(request(src, dst, gbps), f"r{n}", 0.0)).changed[0]
        booked[next(h.link for h in res.hops if h.wavelength)] = gbps
    assert len(booked) == 4, booked
    lab.ack_all()
    lab.send(lab.ctl.tick(0.1))
    ports = {link.name: port for port, link in lab.fabric.ports("dc1-gw1").items()
             if link.wavelength}
    # Sixteenths of 400 Gb/s left, a booked part counted whole: 40 Gb/s left of the
    # first (the tenth reservations leave to best effort) still takes a sixteenth.
    expected = tuple(16 - math.ceil(booked[name] / 400.0 * 16)
                     for name in sorted(ports, key=ports.get))
    assert spread_weights_at(lab, "dc1-gw1") == {expected}
    assert sorted(expected) == [1, 4, 8, 8]
    assert len(hashed_onto(lab, "dc1-h1", "dc2-h4")) == 4


def test_a_degraded_reservations_meter_is_said_to_be_its_not_a_stranger(lab, caplog):
    """An outside tester's restart: meters of reservations DEGRADED for a second were
    deleted as ones "no live reservation of this controller's state file holds", which
    sends an operator looking for another state file."""
    import logging

    res = lab.send(lab.ctl.reserve(request(), "r1", 0.0)).changed[0]
    lab.ack_all()
    leaf = hop_switches(res)[0]
    lab.ctl.book.degrade(key_of(res.request), "a cut")
    with caplog.at_level(logging.INFO, logger="dcilab"):
        out = lab.send(lab.ctl.meters_listed(lab.dpid(leaf), {res.meter_id}))
    assert [m.meter_id for m in out.messages[lab.dpid(leaf)]] == [res.meter_id]
    said = [r.getMessage() for r in caplog.records]
    assert any(f"deleting meters {res.meter_id} of DEGRADED reservations" in m for m in said)
    assert not any("no live reservation" in m for m in said), said
