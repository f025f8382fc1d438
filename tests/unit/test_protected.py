"""Protection classes: PROTECTED reservations have a reserved standby path sharing no line
system or SRLG with the primary, pre-installed so that a line-system cut is survived by
the switches alone; NONE ones are restored after RESTORABLE ones.

three-site (see test_repathing): frankfurt-amsterdam direct (fra-ams, three wavelengths)
or through paris (fra-par then par-ams, one wavelength each). The only path disjoint
from fra-ams is the one through paris, and the other way round.
"""

from __future__ import annotations

import functools

import pytest
from controller_lab import ControllerLab
from fabric_helpers import topology
from fakeoftable import Outcome
from test_protection import wavelengths_of
from test_repathing import THREE_SITES, ring_with_chord

from dcilab.app.service import ControllerService
from dcilab.core.reservation_rules import PROTECT_GROUP_BASE
from dcilab.fabric import parse_fabric
from dcilab.te.load import Direction
from dcilab.te.reservations import (AdmissionError, Protection, ReservationBook,
                                    ReservationRequest, Selector, State)

SRC, DST = "fra-h1", "ams-h1"
PROTECTED = Protection.PROTECTED


@pytest.fixture
def fabric():
    return parse_fabric(THREE_SITES)


def line_systems(fabric, hops):
    return [fabric.link(h.link).line_system for h in hops if fabric.link(h.link).line_system]


def test_a_protected_reservation_holds_a_disjoint_standby(fabric):
    book = ReservationBook(fabric)
    res = book.admit(ReservationRequest(SRC, DST, 50.0, protection=PROTECTED), "p", 0.0)
    assert line_systems(fabric, res.hops) == ["fra-ams"]
    assert line_systems(fabric, res.standby) == ["fra-par", "par-ams"]
    # Both paths start at the same leaf and end at the destination host.
    assert res.standby[0].switch == res.hops[0].switch == "fra-leaf1"
    assert res.standby[-1] == res.hops[-1]
    # The standby's capacity is reserved: 50 Gb/s on each paris wavelength, one way.
    assert book.reserved[Direction("fra-par.w1", "fra-gw1", "par-gw1")] == 50e9
    assert book.reserved[Direction("par-ams.w1", "par-gw1", "ams-gw1")] == 50e9
    # ... and counted once on the links both paths share (leaf to spine, ...).
    assert book.reserved[Direction(SRC, SRC, "fra-leaf1")] == 50e9
    assert book.reserved[Direction(res.hops[0].link, "fra-leaf1",
                                   fabric.link(res.hops[0].link).other("fra-leaf1").node)] \
        == 50e9
    # A second PROTECTED pair cannot have its standby where only 310 Gb/s remain.
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest("fra-h2", "ams-h2", 320.0, protection=PROTECTED), "q",
                   0.0)
    assert "no standby path" in info.value.message and "PROTECTED" in info.value.message
    # ... naming the bottleneck, as every refusal does (an outside tester missed it)
    assert "on the shortest one, wavelength " in info.value.message
    assert "has 310.000 Gb/s free of 360.000 Gb/s reservable; 320.000 Gb/s asked" \
        in info.value.message
    book.admit(ReservationRequest("fra-h2", "ams-h2", 300.0, protection=PROTECTED), "q", 0.0)


def test_protected_is_refused_without_a_disjoint_path():
    two = topology("two-dc")              # one line system: nothing is disjoint from it
    book = ReservationBook(two)
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest("dc1-h1", "dc2-h1", 10.0, protection=PROTECTED), "p", 0.0)
    # However empty the fabric, there is none: not "no room" (a retry never helps).
    assert info.value.code == AdmissionError.PRECONDITION
    assert "shares no line system or SRLG with its primary (over dc1-dc2-a), even with " \
        "nothing reserved; ask for RESTORABLE" in info.value.message
    assert book.reserved_total() == 0
    book.admit(ReservationRequest("dc1-h1", "dc2-h1", 10.0), "r", 0.0)     # RESTORABLE is fine


def test_no_standby_while_a_link_is_down_is_no_room_not_no_path(fabric):
    """The paris way cut, frankfurt-amsterdam has no disjoint standby now; with every link
    back it has (an outside tester's client, told FAILED_PRECONDITION, never retried)."""
    book = ReservationBook(fabric)
    book.engine.set_link("fra-par.w1", False)
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest(SRC, DST, 10.0, protection=PROTECTED), "p", 0.0)
    assert info.value.code == AdmissionError.EXHAUSTED
    assert "while fra-par.w1 is out of service (down, drained or held down after a " \
        "failure); ask again once they are back" in info.value.message
    book.engine.set_link("fra-par.w1", True)
    assert book.admit(ReservationRequest(SRC, DST, 10.0, protection=PROTECTED), "p",
                      0.0).standby


def test_no_standby_within_the_bound_however_empty_is_final(fabric):
    """The only disjoint standby (through paris, ~0.89 ms) cannot meet a 0.6 ms bound that
    the direct path meets: no retry ever will, so FAILED_PRECONDITION (an outside tester
    got RESOURCE_EXHAUSTED, on which a retrying client would loop for ever)."""
    book = ReservationBook(fabric)
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest(SRC, DST, 10.0, 0.6, protection=PROTECTED), "p", 0.0)
    assert info.value.code == AdmissionError.PRECONDITION
    assert "within max_latency_ms 0.6 (the standby must meet the bound too), even with " \
        "nothing reserved" in info.value.message
    assert book.reserved_total() == 0
    # ... also while a link is down that no standby within the bound could use (a
    # tester's refusal during a hold-down said "ask again once they are back")
    book.engine.set_link("fra-ams.w2", False)
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest(SRC, DST, 10.0, 0.6, protection=PROTECTED), "p", 0.0)
    assert info.value.code == AdmissionError.PRECONDITION, info.value.message
    assert "even with nothing reserved" in info.value.message
    book.engine.set_link("fra-ams.w2", True)
    # ... and while the standby's own way is down, the advice is still about the bound
    book.engine.set_link("fra-par.w1", False)
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest(SRC, DST, 10.0, 0.6, protection=PROTECTED), "p", 0.0)
    assert info.value.code == AdmissionError.PRECONDITION, info.value.message
    assert "within max_latency_ms 0.6 (the standby must meet the bound too)" \
        in info.value.message
    book.engine.set_link("fra-par.w1", True)
    book.admit(ReservationRequest(SRC, DST, 10.0, 0.6), "r", 0.0)         # RESTORABLE is
    assert book.admit(ReservationRequest("fra-h2", "ams-h2", 10.0, 1.0,   # ... and a
                                         protection=PROTECTED), "q", 0.0).standby  # wider bound


def test_a_primary_sharing_a_group_with_the_best_path_is_tried_too():
    """An outside tester's fabric: ab1 in {bldg, d1}, ab2 in {d1}, ac in {bldg}, bc in
    none. The best path (ab1) has no disjoint standby, and avoiding ab1's risks rules out
    ab2 as well; ab2 with ac+bc is a protected pair all the same (it was refused as
    FAILED_PRECONDITION, and removing ab1 from the fabric made it admitted)."""
    fabric = parse_fabric("""
name: srlg
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 2}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 2}
  - {name: c, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 1}
dci_links:
  - {name: ab1, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 1, srlg: [bldg, d1]}
  - {name: ab2, a: a, b: b, fiber_km: 45, module: 400ZR, wavelengths: 1, srlg: [d1]}
  - {name: ac, a: a, b: c, fiber_km: 50, module: 400ZR, wavelengths: 1, srlg: [bldg]}
  - {name: bc, a: b, b: c, fiber_km: 60, module: 400ZR, wavelengths: 1}
""")
    res = ReservationBook(fabric).admit(
        ReservationRequest("a-h1", "b-h1", 10.0, protection=PROTECTED), "p", 0.0)
    assert line_systems(fabric, res.hops) == ["ab2"]
    assert line_systems(fabric, res.standby) == ["ac", "bc"]


# One spine, one leaf and one gateway a site, one wavelength per line system.
RING_WITH_CHORD = ring_with_chord("spines: 1, leaves: 1, hosts_per_leaf: 4, gateways: 1",
                                  (1, 1, 1, 1, 1))


def test_no_standby_because_of_load_is_no_room_not_no_path():
    """n1n2 full: the best primary left, n2-n3-n1, crosses the chord, which shares a duct
    with n1n2, so it has no disjoint standby; but the fabric has one (n1n2 itself, or the
    long way round): RESOURCE_EXHAUSTED, worth a retry, never "even with nothing
    reserved" (an outside tester's finding). Nothing is moved aside here (`rearrange`
    off), or a filler would make way."""
    book = ReservationBook(parse_fabric(RING_WITH_CHORD), rearrange=False)
    for i in range(1, 5):
        book.admit(ReservationRequest(f"n2-h{i}", f"n1-h{i}", 85.0), f"f{i}", 0.0)
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest("n2-h1", "n1-h2", 50.0, protection=PROTECTED), "p", 0.0)
    assert info.value.code == AdmissionError.EXHAUSTED, info.value.message
    assert "even with nothing reserved" not in info.value.message
    book.end("f1", State.RELEASED)
    book.end("f2", State.RELEASED)
    res = book.admit(ReservationRequest("n2-h1", "n1-h2", 50.0, protection=PROTECTED), "p", 0.0)
    assert not set(line_systems(book.fabric, res.hops)) & set(
        line_systems(book.fabric, res.standby))


def test_a_shared_risk_group_rules_a_standby_out():
    # fra-ams and fra-par leave frankfurt in one duct: they fail together.
    text = THREE_SITES.replace("wavelengths: 3}", "wavelengths: 3, srlg: [fra-duct]}").replace(
        "name: fra-par, a: fra, b: par, fiber_km: 90, module: 400ZR, wavelengths: 1}",
        "name: fra-par, a: fra, b: par, fiber_km: 90, module: 400ZR, wavelengths: 1, "
        "srlg: [fra-duct]}")
    shared = parse_fabric(text)
    assert [d.srlg for d in shared.spec.dci_links][:2] == [["fra-duct"], ["fra-duct"]]
    with pytest.raises(AdmissionError) as info:
        ReservationBook(shared).admit(ReservationRequest(SRC, DST, 10.0, protection=PROTECTED),
                                      "p", 0.0)
    assert "no standby path" in info.value.message


def test_protected_and_unprotected_reservations_of_one_traffic_do_not_mix(fabric):
    book = ReservationBook(fabric)
    book.admit(ReservationRequest(SRC, DST, 10.0), "r", 0.0)
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest(SRC, DST, 10.0, protection=PROTECTED), "p", 0.0)
    assert info.value.code == AdmissionError.INVALID
    assert "already reserved RESTORABLE by r" in info.value.message
    assert "selector" in info.value.message


def delivered_via(lab, src, dst):
    """The switches every way of the pair's packets crosses; asserts all are delivered."""
    d = lab.fabric.hosts[dst]
    paths = lab.trace(src, dst)
    assert paths and all(p.outcome is Outcome.EGRESS and p.end == (lab.dpid(d.leaf), d.port)
                         for p in paths), [p.outcome for p in paths]
    names = {sw.dpid: name for name, sw in lab.fabric.switches.items()}
    return [{names[h.dpid] for h in p.hops} for p in paths]


def test_a_line_system_cut_is_survived_by_the_switches_alone_on_the_reserved_standby(fabric):
    lab = ControllerLab(fabric)
    lab.bring_up_all()
    out = lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 50.0, protection=PROTECTED),
                                   "p", 0.0))
    res = out.changed[0]
    lab.ack_all()
    assert lab.ctl.book.get("p").state is State.ACTIVE
    gw = lab.table("fra-gw1")
    assert PROTECT_GROUP_BASE + res.meter_id in gw.groups
    [before] = delivered_via(lab, SRC, DST)
    assert "par-gw1" not in before
    # The whole fra-ams line system is cut; the controller is not told.
    for link in wavelengths_of(fabric, "fra-ams"):
        for end in (link.a, link.b):
            lab.net.down_ports.add((lab.dpid(end.node), end.port))
    for way in delivered_via(lab, SRC, DST):
        assert "par-gw1" in way                 # on the standby, through paris
    [way] = delivered_via(lab, SRC, DST)
    assert way == {h.switch for h in res.standby}
    # Metered still, at the ingress leaf, by its own meter.
    s, d = fabric.hosts[SRC], fabric.hosts[DST]
    from fabric_helpers import tcp_packet
    assert lab.table("fra-leaf1").meter_for(tcp_packet(s, d)) == res.meter_id
    # The controller hears of it: the reservation keeps its bandwidth (never DEGRADED),
    # now on the paris path, and still delivered.
    for link in wavelengths_of(fabric, "fra-ams"):
        for end in (link.a, link.b):
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False, 0.0))
    out = lab.send(lab.ctl.tick(0.1))
    now = lab.ctl.book.get("p")
    assert now.state is not State.DEGRADED and now.holds_bandwidth
    assert line_systems(fabric, now.hops) == ["fra-par", "par-ams"]
    assert now.standby == ()                   # nothing disjoint is left
    [way] = delivered_via(lab, SRC, DST)
    assert "par-gw1" in way
    lab.ack_all()
    assert lab.ctl.book.get("p").state is State.ACTIVE
    assert PROTECT_GROUP_BASE + res.meter_id not in lab.table("fra-gw1").groups


def test_release_of_a_protected_reservation_leaves_no_trace(fabric):
    lab = ControllerLab(fabric)
    lab.bring_up_all()
    fresh = ControllerLab(fabric)
    fresh.bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 50.0, protection=PROTECTED), "p",
                             0.0))
    lab.ack_all()
    lab.send(lab.ctl.end("p"))
    assert lab.states() == fresh.states()


def _b_degraded(fabric) -> ControllerLab:
    """a and b, 300 Gb/s each on fra-ams, which is cut: paris has room for a only."""
    lab = ControllerLab(fabric)
    lab.bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 300.0), "a", 0.0))
    lab.send(lab.ctl.reserve(ReservationRequest("fra-h2", "ams-h2", 300.0), "b", 0.0))
    lab.ack_all()
    for link in wavelengths_of(fabric, "fra-ams"):
        for end in (link.a, link.b):
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False, 0.0))
    lab.send(lab.ctl.tick(0.1))
    return lab


def test_a_degraded_pair_is_restored_when_a_release_gives_room(fabric):
    """An outside tester's case: a DEGRADED reservation stayed DEGRADED, with room free,
    until some unrelated link event (only faults made the controller look again)."""
    lab = _b_degraded(fabric)
    lab.ack_all()
    book = lab.ctl.book
    assert [book.get(r).state for r in "ab"] == [State.ACTIVE, State.DEGRADED]
    lab.send(lab.ctl.tick(1.0))                          # nothing new: it waits
    assert book.get("b").state is State.DEGRADED
    lab.send(lab.ctl.end("a"))
    out = lab.send(lab.ctl.tick(2.0))                    # no link changed
    assert [r.reservation_id for r in out.changed] == ["b"]
    lab.ack_all()
    assert book.get("b").state is State.ACTIVE
    assert line_systems(fabric, book.get("b").hops) == ["fra-par", "par-ams"]
    delivered_via(lab, "fra-h2", "ams-h2")


def test_room_a_release_gives_goes_to_the_degraded_pair_before_any_new_request(fabric):
    """A re-tester's case: a request admitted between a release and the next tick took
    the room the DEGRADED reservation had waited for. Now the release places it."""
    lab = _b_degraded(fabric)
    book = lab.ctl.book
    assert book.get("b").state is State.DEGRADED
    service = ControllerService(lab.ctl, clock=lambda: 1.0)
    service.release("a")                                 # no tick before the next request
    assert book.get("b").state is not State.DEGRADED
    with pytest.raises(AdmissionError, match="60.000 Gb/s free"):
        service.reserve(ReservationRequest(SRC, "ams-h2", 300.0))
    assert line_systems(fabric, book.get("b").hops) == ["fra-par", "par-ams"]


def test_a_release_whose_save_failed_leaves_the_degraded_pair_waiting_for_the_next(fabric):
    """A reviewer's: the failed release was taken back whole, but the controller forgot
    that a DEGRADED reservation waited, and the next release did not place it."""
    from test_service import FailingStore

    from dcilab.core.errors import StoreError
    lab = ControllerLab(fabric)
    lab.bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 300.0), "a", 0.0))
    lab.send(lab.ctl.reserve(ReservationRequest("fra-h2", "ams-h2", 300.0), "b", 0.0))
    lab.ack_all()
    for link in wavelengths_of(fabric, "fra-ams"):
        for end in (link.a, link.b):
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False, 0.0))
    lab.send(lab.ctl.tick(0.1))
    book = lab.ctl.book
    store = FailingStore()
    service = ControllerService(lab.ctl, store=store, clock=lambda: 1.0)
    store.full = True
    with pytest.raises(StoreError):
        service.release("a")
    assert [book.get(r).state for r in "ab"] == [State.ACTIVE, State.DEGRADED]
    store.full = False
    service.release("a")                                 # no tick in between
    assert book.get("b").state is not State.DEGRADED


def test_none_is_restored_after_restorable(fabric):
    """Two pairs on fra-ams, each 360 Gb/s (a whole wavelength); the line system is cut and
    paris has room for one: the RESTORABLE one gets it, though the NONE one is older and
    of higher priority."""
    book = ReservationBook(fabric)
    book.admit(ReservationRequest(SRC, DST, 300.0, protection=Protection.NONE, priority=9),
               "none", 0.0)
    book.admit(ReservationRequest("fra-h2", "ams-h2", 300.0), "restorable", 1.0)
    for link in wavelengths_of(fabric, "fra-ams"):
        book.engine.set_link(link.name, False)
    order = book.pairs_to_restore()
    assert [book.pair_members(*p)[0].reservation_id for p in order] == ["restorable", "none"]
    first = book.repath(order[0])
    assert line_systems(fabric, first[0].hops) == ["fra-par", "par-ams"]
    with pytest.raises(AdmissionError):
        book.repath(order[1])


def test_refusals_name_the_latency_bound_when_paths_with_room_lie_beyond_it():
    ring = topology("four-dc-ring")         # north-east-a 45 km, north-east-b 70 km
    book = ReservationBook(ring)
    first = book.admit(ReservationRequest("north-h1", "east-h1", 10.0, max_latency_ms=0.25),
                       "bounded", 0.0)
    assert {h.wavelength for h in first.hops if h.wavelength} == {"north-east-a.w1"}
    for i, (src, dst) in enumerate([("north-h2", "east-h2"), ("north-h3", "east-h3"),
                                    ("north-h4", "east-h4"), ("north-h2", "east-h3")]):
        book.admit(ReservationRequest(src, dst, 260.0, max_latency_ms=0.25), f"f{i}", 0.0)
    # More for the bounded pair: its bound, not the load, refuses it (north-east-b has room).
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest("north-h1", "east-h1", 300.0), "more", 0.0)
    message = info.value.message
    assert message.startswith("no path for north-h1 -> east-h1 within max_latency_ms 0.25 "
                              "(bounded's bound) has 310.000 Gb/s free, a path of ")
    assert "no path has room" not in message
    # A PROTECTED request whose primary fits within its bound but whose standby never can
    # (north-east-b takes 0.35 ms): final.
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest("north-h2", "east-h1", 100.0, max_latency_ms=0.3,
                                      protection=PROTECTED), "p", 0.0)
    assert info.value.code == AdmissionError.PRECONDITION


def test_a_protected_refusal_names_the_bound_when_standbys_with_room_lie_beyond_it():
    ring = topology("four-dc-ring")
    book = ReservationBook(ring)
    # 300 Gb/s on each north-east-a wavelength and on north-east-b.w1: b.w2 is left.
    for i in range(5):
        book.admit(ReservationRequest(f"north-h{1 + i % 3}", f"east-h{2 + i % 3}", 300.0,
                                      max_latency_ms=0.4, selector=Selector(6, 100 + i, 100 + i)),
                   f"b{i}", 0.0)
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest("north-h4", "east-h1", 100.0, max_latency_ms=0.4,
                                      protection=PROTECTED), "p", 0.0)
    assert info.value.code == AdmissionError.EXHAUSTED     # round the ring has room
    assert "(over north-east-b) and within max_latency_ms 0.4 has 100.000 Gb/s free; a " \
        "longer one has" in info.value.message


def test_a_protected_pair_displaced_beyond_its_bound_is_told_the_bound_not_no_room():
    """An outside tester's case: both north-east line systems cut under a PROTECTED 250
    Gb/s bounded to 1 ms. Restoring takes a path without a standby, so the reason is the
    bound (round the ring has room), as for RESTORABLE pairs: it said "no other path has
    room" while naming a wavelength with 270 Gb/s free."""
    ring = topology("four-dc-ring")
    book = ReservationBook(ring)
    book.admit(ReservationRequest("north-h1", "east-h1", 250.0, max_latency_ms=1,
                                  protection=PROTECTED), "p", 0.0)
    for name in ("north-east-a", "north-east-b"):
        for link in wavelengths_of(ring, name):
            book.engine.set_link(link.name, False)
    [pair] = book.pairs_to_restore()
    with pytest.raises(AdmissionError) as info:
        book.repath(pair)
    message = info.value.message
    assert message.startswith("no path for north-h1 -> east-h1 within max_latency_ms 1 has "
                              "250.000 Gb/s free; a path of "), message
    assert "ms has room" in message


def _set_line_system(lab, fabric, name: str, up: bool, now: float) -> None:
    for link in wavelengths_of(fabric, name):
        for end in (link.a, link.b):
            port = (lab.dpid(end.node), end.port)
            (lab.net.down_ports.discard if up else lab.net.down_ports.add)(port)
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, up, now))


def test_a_protected_reservation_whose_standby_was_cut_is_protected_again_not_degraded(fabric):
    """An outside tester's case. The standby's line system (fra-par) is cut: the
    reservation keeps its healthy primary, unprotected. Another pair takes the room the
    standby held on par-ams. When fra-par returns, the reservation stays ACTIVE on its
    primary (it was DEGRADED, its meter removed, 'None is down'), and once the room is
    released it gets its standby again, pre-installed at the gateway."""
    lab = ControllerLab(fabric)
    lab.bring_up_all()
    res = lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 50.0, protection=PROTECTED),
                                   "p", 0.0)).changed[0]
    lab.ack_all()
    group = PROTECT_GROUP_BASE + res.meter_id
    assert line_systems(fabric, res.standby) == ["fra-par", "par-ams"]
    _set_line_system(lab, fabric, "fra-par", False, 20.0)
    lab.send(lab.ctl.tick(20.1))
    lab.ack_all()
    now = lab.ctl.book.get("p")
    assert now.state is State.ACTIVE and now.hops == res.hops and now.standby == ()
    assert lab.ctl.book.unprotected() == [now]
    # A PROTECTED pair inside one site crosses no line system: nothing to protect, never
    # counted as without its standby.
    lab.send(lab.ctl.reserve(ReservationRequest("fra-h1", "fra-h2", 10.0,
                                                protection=PROTECTED), "local", 20.2))
    assert lab.ctl.book.get("local").standby == () and lab.ctl.book.unprotected() == [now]
    assert group not in lab.table("fra-gw1").groups
    # The room its standby held on par-ams goes to another pair.
    lab.send(lab.ctl.reserve(ReservationRequest("par-h1", "ams-h2", 360.0), "other", 21.0))
    lab.ack_all()
    _set_line_system(lab, fabric, "fra-par", True, 30.0)
    for t in (30.1, 45.0):                         # held down, then in use again
        lab.send(lab.ctl.tick(t))
        lab.ack_all()
    now = lab.ctl.book.get("p")
    assert now.state is State.ACTIVE and now.reason == "" and now.hops == res.hops
    assert now.standby == ()                       # no room for one yet
    s, d = fabric.hosts[SRC], fabric.hosts[DST]
    from fabric_helpers import tcp_packet
    assert lab.table("fra-leaf1").meter_for(tcp_packet(s, d)) == res.meter_id
    # The room comes back: the standby too, pre-installed.
    lab.send(lab.ctl.end("other"))
    out = lab.send(lab.ctl.tick(46.0))
    lab.ack_all()
    now = lab.ctl.book.get("p")
    assert [r.reservation_id for r in out.changed] == ["p"]
    assert now.state is State.ACTIVE and now.hops == res.hops
    assert line_systems(fabric, now.standby) == ["fra-par", "par-ams"]
    assert lab.ctl.book.unprotected() == []
    assert group in lab.table("fra-gw1").groups
    _set_line_system(lab, fabric, "fra-ams", False, 60.0)   # and it carries the traffic
    [way] = delivered_via(lab, SRC, DST)
    assert way == {h.switch for h in now.standby}


def test_what_a_gateway_that_lost_only_its_controller_connection_displaces_says_so():
    """An outside tester's case: north-gw1 (north-east-a, west-north) lost only its
    controller connection; routed around, what no other path had room for was DEGRADED
    with "switch north-gw1 is down", though it forwarded all along."""
    ring = topology("four-dc-ring")
    lab = ControllerLab(ring).bring_up_all()
    ids = ["p"] + [f"n{i}" for i in (2, 3, 4)]
    lab.send(lab.ctl.reserve(ReservationRequest("north-h1", "east-h1", 100.0,
                                                protection=PROTECTED), "p", 0.0))
    for i in (2, 3, 4):
        lab.send(lab.ctl.reserve(ReservationRequest(f"north-h{i}", f"east-h{i}", 300.0,
                                                    protection=Protection.NONE), f"n{i}", 0.0))
    lab.ack_all()
    lab.send(lab.ctl.switch_disconnected(lab.dpid("north-gw1"), 10.0))
    lab.send(lab.ctl.tick(10.1))
    degraded = [lab.ctl.book.get(r) for r in ids if lab.ctl.book.get(r).state == State.DEGRADED]
    assert degraded
    for res in degraded:
        assert res.reason.startswith("switch north-gw1 lost its controller connection "
                                     "(routed around until it is back, in case it died) and "
                                     "no other path has room")
    # It died: its neighbours say so, and so does what it displaces from then on.
    for link in ring.ports("north-gw1").values():
        far = link.other("north-gw1")
        lab.net.down_ports.add((lab.dpid(far.node), far.port))
        lab.send(lab.ctl.port_changed(lab.dpid(far.node), far.port, False, 11.0))
    assert lab.ctl._broken("switch north-gw1") == "switch north-gw1 is down"
    # Whichever of its links a displaced path crossed, the reason names the switch (an
    # outside tester saw one switch-down give three reasons: the switch, a spine link,
    # and "line system north-east-a is down").
    for link in ring.ports("north-gw1").values():
        if link.kind != "host":
            assert lab.ctl._broken(link.wavelength or link.name) == "switch north-gw1 is down"
    # A line system cut alone is still named as such.
    lab = ControllerLab(ring).bring_up_all()
    cut = [l for l in ring.wavelengths() if l.line_system == "north-east-a"]
    for link in cut:
        lab.send(lab.ctl.port_changed(lab.dpid(link.a.node), link.a.port, False, 1.0))
    assert lab.ctl._broken(cut[0].wavelength) == \
        f"line system north-east-a is down (all {len(cut)} wavelengths)"


def test_a_leaf_under_one_spine_is_not_called_down_when_its_only_uplink_is():
    """A leaf with a single uplink, cut: the pairs it strands name that link. "switch
    n1-leaf1 is down" sent an operator to a switch that was up."""
    fabric = parse_fabric(RING_WITH_CHORD)
    lab = ControllerLab(fabric).bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("n1-h1", "n2-h1", 10.0), "r", 0.0))
    lab.ack_all()
    (uplink,) = [l for l in fabric.ports("n1-leaf1").values() if l.kind != "host"]
    for end in (uplink.a, uplink.b):
        lab.net.down_ports.add((lab.dpid(end.node), end.port))
        lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False, 1.0))
    lab.send(lab.ctl.tick(1.1))
    res = lab.ctl.book.get("r")
    assert res.state == State.DEGRADED
    assert res.reason.startswith(f"{uplink.name} is down"), res.reason
    # Its spine, every link down, is a switch down: named as the switch.
    for link in fabric.ports("n1-spine1").values():
        for end in (link.a, link.b):
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False, 2.0))
    assert lab.ctl._broken(uplink.name) == "switch n1-spine1 is down"


NARROW_DETOUR = """
name: narrow
scale: 1.0e-4
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 1, fabric_gbps: 1600}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 1, fabric_gbps: 1600}
  - {name: c, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 1, fabric_gbps: 1600}
dci_links:
  - {name: ab, a: a, b: b, fiber_km: 30, module: 400ZR, wavelengths: 2}
  - {name: ac, a: a, b: c, fiber_km: 40, module: 400ZR, wavelengths: 2}
  - {name: cb, a: c, b: b, fiber_km: 1500, module: 400ZR+, wavelengths: 4}
"""


def test_a_protected_request_no_standby_could_ever_carry_is_a_precondition_at_any_load():
    """An outside tester's ring: every standby of a -> b crosses a 1 500 km line at a
    slower mode (180 Gb/s reservable). 300 Gb/s PROTECTED came back RESOURCE_EXHAUSTED,
    which a client retries for good; and once the primary was busy, any impossible
    PROTECTED request was refused as the primary's lack of room."""
    fabric = parse_fabric(NARROW_DETOUR)
    [narrow] = {l.rate_gbps for l in fabric.wavelengths() if l.line_system == "cb"}
    most = narrow * 0.9
    assert most < 300
    book = ReservationBook(fabric)
    for gbps in (300.0, most + 1):
        with pytest.raises(AdmissionError) as refused:
            book.admit(ReservationRequest("a-h1", "b-h1", gbps, protection=PROTECTED),
                       f"p{gbps}", 0.0)
        assert refused.value.code == AdmissionError.PRECONDITION, refused.value.message
        assert (f"no primary and standby sharing no line system or SRLG can each reserve "
                f"{gbps:g} Gb/s (at most {most:g} Gb/s), even with nothing reserved"
                in refused.value.message)
    # the primary busy: still no retry gets it, and it is said so
    book.admit(ReservationRequest("a-h2", "b-h2", 350.0), "busy", 0.0)
    book.admit(ReservationRequest("a-h2", "b-h2", 350.0, selector=Selector(dscp=46)),
               "busy2", 0.0)
    with pytest.raises(AdmissionError) as refused:
        book.admit(ReservationRequest("a-h1", "b-h1", 300.0, protection=PROTECTED), "p", 0.0)
    assert refused.value.code == AdmissionError.PRECONDITION, refused.value.message
    # what fits the narrow standby is admitted, on the direct primary
    res = ReservationBook(fabric).admit(
        ReservationRequest("a-h1", "b-h1", most, protection=PROTECTED), "ok", 0.0)
    assert line_systems(fabric, res.hops) == ["ab"]
    assert line_systems(fabric, res.standby) == ["ac", "cb"]


def test_a_busy_host_link_does_not_make_a_never_protectable_request_retryable():
    """A re-tester loaded the source host's link first: the same impossible PROTECTED
    request then came back RESOURCE_EXHAUSTED naming the host link."""
    fabric = parse_fabric(NARROW_DETOUR)
    book = ReservationBook(fabric)
    book.admit(ReservationRequest("a-h1", "a-h2", 600.0), "local1", 0.0)
    book.admit(ReservationRequest("a-h1", "a-h2", 600.0, selector=Selector(dscp=10)),
               "local2", 0.0)
    with pytest.raises(AdmissionError) as busy:           # the host link is busy indeed
        book.admit(ReservationRequest("a-h1", "b-h1", 300.0), "r", 0.0)
    assert busy.value.code == AdmissionError.EXHAUSTED and "link a-h1" in busy.value.message
    with pytest.raises(AdmissionError) as refused:
        book.admit(ReservationRequest("a-h1", "b-h1", 300.0, protection=PROTECTED), "p", 0.0)
    assert refused.value.code == AdmissionError.PRECONDITION, refused.value.message


def test_each_aggregates_rules_carry_a_cookie_of_its_own(fabric):
    """A flow-table auditor could tell one reservation's rules from another's only by
    their matches: every rule of an aggregate (its pins, port-range blocks, metered entry
    at the leaf and standby rules) carries its meter id in the cookie, and nothing else
    does, whatever moves it and until it ends."""
    from dcilab.core.reservation_rules import PRIORITY_PORTS, PRIORITY_STANDBY, cookie
    lab = ControllerLab(fabric)
    lab.bring_up_all()
    protected = lab.send(lab.ctl.reserve(ReservationRequest(
        SRC, DST, 50.0, protection=PROTECTED,
        selector=Selector(ip_proto=6, port_min=5200, port_max=5210)), "p", 0.0)).changed[0]
    other = lab.send(lab.ctl.reserve(ReservationRequest("fra-h2", "ams-h2", 20.0), "o",
                                     0.0)).changed[0]
    lab.ack_all()
    assert cookie(protected) != cookie(other)
    assert cookie(protected) & 0xFFFFFFFF == cookie(other) & 0xFFFFFFFF   # dcilab's, marked

    def marked(res) -> dict[str, list]:
        return {name: [f for f in lab.table(name).flows() if f.cookie == cookie(res)]
                for name in fabric.switches}

    rules = marked(protected)
    # 5200-5210 is three masked blocks (5200/29, 5208/31, 5210), at every primary hop.
    for hop in protected.hops:
        assert len([f for f in rules[hop.switch] if f.priority == PRIORITY_PORTS]) == 3
    standby_only = {h.switch for h in protected.standby} - {h.switch for h in protected.hops}
    assert standby_only and all(
        [f.priority for f in rules[s]] == [PRIORITY_STANDBY] for s in standby_only)
    assert {s for s, flows in rules.items() if flows} == \
        {h.switch for h in protected.hops + protected.standby}
    assert {s for s, flows in marked(other).items() if flows} == \
        {h.switch for h in other.hops}
    lab.send(lab.ctl.end("p"))
    lab.send(lab.ctl.end("o"))
    assert not any(f.cookie >> 31 for name in fabric.switches for f in lab.table(name).flows())


def waves_of(lab, rid, standby=False):
    """The wavelengths of a reservation's path (or standby), in order."""
    res = lab.ctl.book.get(rid)
    return [h.wavelength for h in (res.standby if standby else res.hops) if h.wavelength]


# An outside tester's: two wavelengths a-b, one each a-c and c-b (the only way around).
TWO_WAVES = """
name: twowaves
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 3, gateways: 1, fabric_gbps: 1600}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 3, gateways: 1, fabric_gbps: 1600}
  - {name: c, spines: 1, leaves: 1, hosts_per_leaf: 3, gateways: 1, fabric_gbps: 1600}
dci_links:
  - {name: ab, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 2}
  - {name: ac, a: a, b: c, fiber_km: 50, module: 400ZR, wavelengths: 1}
  - {name: cb, a: c, b: b, fiber_km: 50, module: 400ZR, wavelengths: 1}
"""


def test_a_protected_pair_whose_wavelength_is_cut_is_protected_again_before_lower_classes():
    """The tester's PROTECTED and NONE pairs shared ab.w1, a RESTORABLE one had ab.w2.
    ab.w1 cut: the PROTECTED pair took its standby (a > c > b, 2.5 times as long) for good,
    unprotected, while the NONE pair took ab.w2. Where a primary and a standby both have
    room, the PROTECTED pair takes them, first: the NONE pair goes round by c."""
    fabric = parse_fabric(TWO_WAVES)
    lab = ControllerLab(fabric)
    lab.bring_up_all()
    for src, dst, rid, protection in (("a-h1", "b-h1", "p", PROTECTED),
                                      ("a-h2", "b-h2", "n", Protection.NONE),
                                      ("a-h3", "b-h3", "r", Protection.RESTORABLE)):
        lab.send(lab.ctl.reserve(ReservationRequest(src, dst, 150.0, protection=protection),
                                 rid, 0.0))
        lab.ack_all()

    waves = functools.partial(waves_of, lab)

    assert (waves("p"), waves("p", True), waves("n"), waves("r")) == (
        ["ab.w1"], ["ac.w1", "cb.w1"], ["ab.w1"], ["ab.w2"])
    cut = fabric.link("ab.w1")
    for end in (cut.a, cut.b):
        lab.net.down_ports.add((lab.dpid(end.node), end.port))
        lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False, 0.0))
    lab.send(lab.ctl.tick(0.1))
    lab.ack_all()
    assert (waves("p"), waves("p", True)) == (["ab.w2"], ["ac.w1", "cb.w1"])
    assert (waves("n"), waves("r")) == (["ac.w1", "cb.w1"], ["ab.w2"])
    assert all(lab.ctl.book.get(rid).state is State.ACTIVE for rid in "pnr")
    [way] = delivered_via(lab, "a-h1", "b-h1")
    assert "c-gw1" not in way                                     # the short way, again
    assert PROTECT_GROUP_BASE + lab.ctl.book.get("p").meter_id in lab.table("a-gw1").groups


def test_a_line_system_whose_wavelengths_are_reported_down_one_by_one_never_drops_traffic():
    """A code reviewer: when a whole line system is cut its wavelengths are reported a tick
    apart, so the pair is first placed afresh on the sibling that is about to be reported
    down, one move more than before. Harmless in the switches: the new fast-failover
    group watches a port already dark and sends the traffic to the standby; once the
    sibling is reported, the pair keeps its standby as its path, as before."""
    fabric = parse_fabric(TWO_WAVES)
    lab = ControllerLab(fabric)
    lab.bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 150.0, protection=PROTECTED),
                             "p", 0.0))
    lab.ack_all()
    waves = [fabric.link(w) for w in ("ab.w1", "ab.w2")]
    for link in waves:                          # the whole line system dark in the switches
        for end in (link.a, link.b):
            lab.net.down_ports.add((lab.dpid(end.node), end.port))
    [way] = delivered_via(lab, "a-h1", "b-h1")
    assert "c-gw1" in way                       # the switches alone: on the standby
    for i, link in enumerate(waves):            # ... and the controller told a tick apart
        for end in (link.a, link.b):
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False, 0.1 * i))
        lab.send(lab.ctl.tick(0.1 * i + 0.05))
        [way] = delivered_via(lab, "a-h1", "b-h1")         # before the switches answer
        assert "c-gw1" in way
        lab.ack_all()
        [way] = delivered_via(lab, "a-h1", "b-h1")
        assert "c-gw1" in way
    res = lab.ctl.book.get("p")
    assert res.state is State.ACTIVE and res.standby == ()
    assert [h.wavelength for h in res.hops if h.wavelength] == ["ac.w1", "cb.w1"]


def test_at_a_partial_repair_pairs_in_place_move_back_by_class_before_degraded_ones():
    """A re-tester: PROTECTED 200 and RESTORABLE 100 on ab.w1, NONE 200 on ab.w2; the
    whole of ab cut (the PROTECTED pair on its standby through c, the RESTORABLE one
    through c, the NONE one DEGRADED); only ab.w2 back. The DEGRADED NONE pair was placed
    first, onto ab.w2, and the PROTECTED pair stayed the long way round with no standby
    for good. Pairs in place move back first, by class; the NONE pair waits."""
    fabric = parse_fabric(TWO_WAVES)
    lab = ControllerLab(fabric)
    lab.bring_up_all()
    for src, dst, rid, protection, gbps in (("a-h1", "b-h1", "p", PROTECTED, 200.0),
                                            ("a-h2", "b-h2", "r", Protection.RESTORABLE, 100.0),
                                            ("a-h3", "b-h3", "n", Protection.NONE, 200.0)):
        lab.send(lab.ctl.reserve(ReservationRequest(src, dst, gbps, protection=protection),
                                 rid, 0.0))
        lab.ack_all()

    waves = functools.partial(waves_of, lab)

    def link(name, up, now):
        cut = fabric.link(name)
        for end in (cut.a, cut.b):
            (lab.net.down_ports.discard if up else lab.net.down_ports.add)(
                (lab.dpid(end.node), end.port))
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, up, now))
        lab.send(lab.ctl.tick(now + 0.1))
        lab.ack_all()

    assert (waves("p"), waves("r"), waves("n")) == (["ab.w1"], ["ab.w1"], ["ab.w2"])
    link("ab.w1", False, 1.0)
    link("ab.w2", False, 1.0)
    assert (waves("p"), waves("p", True), waves("r")) == (["ac.w1", "cb.w1"], [],
                                                          ["ac.w1", "cb.w1"])
    assert lab.ctl.book.get("n").state is State.DEGRADED
    link("ab.w2", True, 70.0)
    for now in (71.5, 73.0, 75.0, 100.0):          # past the hold-down
        lab.send(lab.ctl.tick(now))
        lab.ack_all()
    assert (waves("p"), waves("p", True)) == (["ab.w2"], ["ac.w1", "cb.w1"])
    assert waves("r") == ["ab.w2"]
    assert lab.ctl.book.get("n").state is State.DEGRADED     # no room left for it
    assert "c-gw1" not in delivered_via(lab, "a-h1", "b-h1")[0]


TWO_SPINE_TRIANGLE = """
name: two-spine-triangle
sites:
  - &site {name: par, spines: 2, leaves: 2, hosts_per_leaf: 1, gateways: 2, fabric_gbps: 800}
  - {<<: *site, name: fra}
  - {<<: *site, name: ams}
dci_links:
  - {name: par-fra, a: par, b: fra, fiber_km: 480, module: 400ZR+, wavelengths: 2}
  - {name: fra-ams, a: fra, b: ams, fiber_km: 60, module: 800ZR, wavelengths: 2}
  - {name: par-ams, a: par, b: ams, fiber_km: 95, module: 400ZR, wavelengths: 3}
"""


def test_a_standby_goes_back_through_the_spine_its_primary_came_by():
    """An outside tester's: the standby left the primary's gateway by the other spine, so
    once carried as the path after a cut it kept the hairpin through the dead gateway,
    its links booked. Back the way it came, that spine takes it straight on."""
    fabric = parse_fabric(TWO_SPINE_TRIANGLE)
    lab = ControllerLab(fabric)
    lab.bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("ams-h1", "fra-h1", 300.0), "x", 0.0))
    res = lab.send(lab.ctl.reserve(ReservationRequest("ams-h1", "fra-h2", 200.0,
                                                      protection=PROTECTED), "p", 0.0)).changed[0]
    lab.ack_all()
    first = next(i for i, h in enumerate(res.hops) if h.wavelength)
    gateway, came = res.hops[first].switch, res.hops[first - 1].switch
    back = res.standby[first]
    assert back.switch == gateway and fabric.link(back.link).other(gateway).node == came, \
        [h.switch for h in res.standby]
    _set_line_system(lab, fabric, "fra-ams", False, 20.0)
    lab.send(lab.ctl.tick(20.1))
    lab.ack_all()
    now = lab.ctl.book.get("p")
    switches = [h.switch for h in now.hops]
    assert now.state is State.ACTIVE and line_systems(fabric, now.hops) == ["par-ams", "par-fra"]
    assert gateway not in switches and len(set(switches)) == len(switches), switches


def test_a_restart_keeps_a_standby_admitted_within_its_bound_the_short_way(tmp_path):
    """An auditor's: admission holds a standby to the bound the short way (its hairpin
    through the primary's gateway cut out), a restart measured the stored hops with the
    hairpin. A member joining with a bound between the two was read back as over it, and
    the controller refused to start on its own unchanged state file."""
    from dcilab.core.controller import FabricController
    from dcilab.store.sqlite import ReservationStore
    from dcilab.te.reservations import without_loops
    from test_repathing import RING_WITH_CHORD

    state = str(tmp_path / "state.db")
    first = ControllerService(FabricController(parse_fabric(RING_WITH_CHORD)),
                              store=ReservationStore(state))
    a = first.reserve(ReservationRequest("n1-h1", "n2-h1", 1.0, protection=PROTECTED))
    book = first.core.book
    looped = book._latency_of("n1-h1", a.standby)
    short = book._latency_of("n1-h1", without_loops(a.standby))
    assert short < looped                      # the standby has a hairpin to cut
    b = first.reserve(ReservationRequest("n1-h1", "n2-h1", 1.0, protection=PROTECTED,
                                         max_latency_ms=(short + looped) / 2))
    assert b.standby == a.standby              # it joined the aggregate, standby and all
    first.store.close()
    again = ControllerService(FabricController(parse_fabric(RING_WITH_CHORD)),
                              store=ReservationStore(state))
    assert again.get(b.reservation_id).standby == b.standby
    again.store.close()


def test_what_was_found_protectable_is_kept_within_a_bound(fabric, monkeypatch):
    """An auditor's: kept by each latency bound asked, a client asking random bounds
    grew the controller's memory for good."""
    from dcilab.te import reservations
    monkeypatch.setattr(reservations, "PROTECTABLE_KEPT", 8)
    book = ReservationBook(fabric)
    for i in range(30):
        book.admit(ReservationRequest(SRC, DST, 1.0, protection=PROTECTED,
                                      max_latency_ms=50.0 + i), f"r{i}", float(i))
        book.end(f"r{i}", State.RELEASED)
    assert 0 < len(book._protectable_bps) <= 8
