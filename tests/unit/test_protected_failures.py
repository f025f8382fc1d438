"""PROTECTED reservations through failures, as an outside reviewer probed them: standby
room shared only by primaries that cannot fail together (a far gateway is a risk too), a
standby wavelength that steps down sheds standbys rather than overbooking, no request
joins a broken path or an unprotected PROTECTED pair, and a pair whose standby broke keeps
a primary that still carries it."""

from __future__ import annotations

import pytest
from controller_lab import ControllerLab
from fakeoftable import Outcome
from fabric_helpers import topology
from test_protected import delivered_via
from test_repathing import THREE_SITES
from test_shared_standby_repack import SHARE

from dcilab.bench.admission import overbooked
from dcilab.core.controller import FAILURE_SETTLE_S
from dcilab.core.reservation_rules import PROTECT_GROUP_BASE, standby_vid
from dcilab.fabric import parse_fabric
from dcilab.te import protection
from dcilab.te.load import Direction
from dcilab.te.paths import PathEngine
from dcilab.te.reservations import (DEFAULT_RESERVABLE_FRACTION, AdmissionError, Protection,
                                    ReservationBook, ReservationRequest, State)

PROTECTED = Protection.PROTECTED

# b has two gateways; ab and cb end on the same one in this order of lines (ab, db, cb:
# b-gw1, b-gw2, b-gw1), on two in the other (ab, cb, db: b-gw1, b-gw2, b-gw1).
FOUR_SITES = """
name: four
scale: 1.0e-4
sites:
  - {{name: a, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 1, fabric_gbps: 1600}}
  - {{name: b, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 2, fabric_gbps: 1600}}
  - {{name: c, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 1, fabric_gbps: 1600}}
  - {{name: d, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 1, fabric_gbps: 1600}}
dci_links:
{lines}
  - {{name: ad, a: a, b: d, fiber_km: 40, module: 400ZR, wavelengths: 1}}
  - {{name: cd, a: c, b: d, fiber_km: 40, module: 400ZR, wavelengths: 1}}
"""
LINE = "  - {{name: {0}, a: {1}, b: b, fiber_km: 40, module: 400ZR, wavelengths: 1}}"


def four_sites(order: str):
    lines = "\n".join(LINE.format(name, name[0]) for name in order.split())
    return parse_fabric(FOUR_SITES.format(lines=lines))


def far_gateway(fabric, res) -> str:
    first = next(h for h in res.hops if h.wavelength)
    return fabric.link(first.link).other(first.switch).node


def test_primaries_into_one_gateway_do_not_share_standby_room():
    """Both primaries end at b-gw1 over two line systems: b-gw1 dying darkens both
    ingress ports at once, and both standbys (over db) would carry 600 Gb/s."""
    fabric = four_sites("ab db cb")
    book = ReservationBook(fabric)
    p1 = book.admit(ReservationRequest("a-h1", "b-h1", 300.0, protection=PROTECTED), "p1", 0.0)
    assert far_gateway(fabric, p1) == "b-gw1"
    with pytest.raises(AdmissionError, match="no standby path"):
        book.admit(ReservationRequest("c-h1", "b-h2", 300.0, protection=PROTECTED), "p2", 0.0)
    # Into two gateways, they share it.
    fabric = four_sites("ab cb db")
    book = ReservationBook(fabric)
    p1 = book.admit(ReservationRequest("a-h1", "b-h1", 300.0, protection=PROTECTED), "p1", 0.0)
    p2 = book.admit(ReservationRequest("c-h1", "b-h2", 300.0, protection=PROTECTED), "p2", 0.0)
    assert far_gateway(fabric, p1) != far_gateway(fabric, p2)
    assert book.reserved[Direction("db.w1", "d-gw1", "b-gw1")] == pytest.approx(300e9)


def test_a_standby_wavelength_stepping_down_sheds_its_standbys():
    """db carries only the two standbys (300 Gb/s held, shared); stepped down to 100G it
    has 90 reservable: the book held 300 there and said nothing."""
    fabric = four_sites("ab cb db")
    lab = ControllerLab(fabric).bring_up_all()
    ctl = lab.ctl
    for rid, src, dst in (("p1", "a-h1", "b-h1"), ("p2", "c-h1", "b-h2")):
        lab.send(ctl.reserve(ReservationRequest(src, dst, 300.0, protection=PROTECTED), rid,
                             0.0))
    lab.ack_all()
    db = Direction("db.w1", "d-gw1", "b-gw1")
    assert ctl.book.reserved[db] == pytest.approx(300e9)
    lab.send(ctl.wavelength_mode(fabric.link("db.w1").wavelength, "slow", 100.0))
    lab.send(ctl.tick(1.0))
    lab.ack_all()
    assert ctl.book.reserved.get(db, 0.0) <= ctl.book.capacity_bps(db) + 1.0
    for rid in ("p1", "p2"):           # no standby has room elsewhere: they run without
        res = ctl.book.get(rid)
        assert res.state is State.ACTIVE and res.standby == ()
        assert PROTECT_GROUP_BASE + res.meter_id not in lab.table(res.hops[1].switch).groups
    assert {r.reservation_id for r in ctl.book.unprotected()} == {"p1", "p2"}
    assert overbooked(fabric, ctl.book, DEFAULT_RESERVABLE_FRACTION) == []


def _cut(lab, links, now, up=False):
    for link in links:
        for end in (link.a, link.b):
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, up, now))


def test_no_request_joins_a_path_a_failure_broke_before_the_tick():
    two = topology("two-dc")
    lab = ControllerLab(two).bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("dc1-h1", "dc2-h3", 36.0), "r1", 0.0))
    lab.ack_all()
    _cut(lab, list(two.wavelengths()), 0.2)
    with pytest.raises(AdmissionError, match="no path from dc1-h1 to dc2-h3 is up"):
        lab.ctl.reserve(ReservationRequest("dc1-h1", "dc2-h3", 10.0), "r2", 0.25)


def test_a_protected_pair_without_its_standby_takes_no_protected_request():
    fabric = parse_fabric(THREE_SITES)
    lab = ControllerLab(fabric).bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("fra-h1", "ams-h1", 50.0,
                                                protection=PROTECTED), "p1", 0.0))
    lab.ack_all()
    _cut(lab, [fabric.link("fra-par.w1")], 1.0)          # its standby's line system
    lab.send(lab.ctl.tick(1.1))
    lab.ack_all()
    assert lab.ctl.book.get("p1").standby == ()
    with pytest.raises(AdmissionError, match="no standby path"):
        lab.ctl.reserve(ReservationRequest("fra-h1", "ams-h1", 10.0, protection=PROTECTED),
                        "p2", 1.2)


def test_a_pair_whose_standby_broke_keeps_its_primary_held_down_after_a_flap():
    """fra-ams blinks (held down for a while: no search offers it), then the standby's
    par-ams is cut: the pair was DEGRADED, its pins and meter removed, though its primary
    carried it all along."""
    fabric = parse_fabric(THREE_SITES)
    lab = ControllerLab(fabric).bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("fra-h1", "ams-h1", 50.0,
                                                protection=PROTECTED), "p1", 0.0))
    lab.ack_all()
    primary = [l for l in fabric.wavelengths() if l.line_system == "fra-ams"]
    _cut(lab, primary, 1.0)
    _cut(lab, primary, 1.05, up=True)
    assert lab.ctl.held_down()
    _cut(lab, [fabric.link("par-ams.w1")], 1.06)
    lab.send(lab.ctl.tick(1.1))
    lab.ack_all()
    p1 = lab.ctl.book.get("p1")
    assert p1.state is State.ACTIVE and p1.standby == ()
    assert {fabric.link(h.link).line_system for h in p1.hops} - {None} == {"fra-ams"}
    [way] = delivered_via(lab, "fra-h1", "ams-h1")
    assert way == {h.switch for h in p1.hops}


def test_a_line_system_with_one_detour_label_of_two_is_listed_unlabelled(monkeypatch):
    fabric = parse_fabric(THREE_SITES)
    monkeypatch.setattr(protection, "MAX_VID", 3)      # fra-ams 1, 2; fra-par 3 (one end)
    assert [d.line_system for d in protection.detours(fabric, PathEngine(fabric))] == [
        "fra-ams", "fra-ams", "fra-par"]
    assert protection.unlabelled(fabric) == ["fra-par", "par-ams"]


def test_a_protected_request_joins_a_pair_only_if_its_standby_meets_the_bound_too():
    """Joining checked the primary's latency only: a tighter bound joined a pair whose
    standby was beyond it, and a cut then put it there (or left it nowhere)."""
    fabric = parse_fabric(THREE_SITES)
    book = ReservationBook(fabric)
    p = book.admit(ReservationRequest("fra-h1", "ams-h1", 50.0, protection=PROTECTED), "p",
                   0.0)
    standby_ms = book._latency_of("fra-h1", p.standby)
    assert p.latency_ms < standby_ms
    bound = (p.latency_ms + standby_ms) / 2
    with pytest.raises(AdmissionError, match="standby"):
        book.admit(ReservationRequest("fra-h1", "ams-h1", 10.0, protection=PROTECTED,
                                      max_latency_ms=bound), "q", 1.0)
    assert book.get("p") == p
    book.admit(ReservationRequest("fra-h1", "ams-h1", 10.0, protection=PROTECTED,
                                  max_latency_ms=standby_ms + 0.001), "r", 1.0)
    assert book.get("r").standby == p.standby


def test_pairs_displaced_by_one_event_end_with_one_reason():
    """A re-tester's: one line-system cut, its port statuses over several ticks, gave
    "dc1-dc2-a.w1 is down ..." to the pairs displaced first and "line system ... is down"
    to the rest, for good."""
    two = topology("two-dc")
    lab = ControllerLab(two).bring_up_all()
    waves = sorted(two.wavelengths(), key=lambda l: l.wavelength)
    for i in range(1, 5):
        lab.send(lab.ctl.reserve(ReservationRequest(f"dc1-h{i}", f"dc2-h{i}", 300.0),
                                 f"r{i}", 0.0))
    lab.ack_all()
    first = lab.ctl.book.get("r1").hops
    cut_first = next(l for l in waves if any(h.link == l.name for h in first))
    _cut(lab, [cut_first], 1.0)
    lab.send(lab.ctl.tick(1.1))
    assert lab.ctl.book.get("r1").state is State.DEGRADED
    assert lab.ctl.book.get("r1").reason.startswith(f"{cut_first.wavelength} is down")
    _cut(lab, [l for l in waves if l is not cut_first], 2.0)
    lab.send(lab.ctl.tick(2.1))
    reasons = {lab.ctl.book.get(f"r{i}").reason for i in range(1, 5)}
    assert {r.split(",")[0] for r in reasons} == {
        f"line system {cut_first.line_system} is down (all 4 wavelengths)"}, reasons


def test_every_gateway_a_primary_crosses_past_its_repair_point_is_a_risk_event():
    """A re-tester's switch-down of a gateway in the middle of primaries (not the far end
    of their first wavelength) sent their standbys onto room held for other events: 495
    Gb/s of standby for it on a wavelength where 245 were counted."""
    fabric = parse_fabric(THREE_SITES)
    book = ReservationBook(fabric)
    book.engine.set_link("fra-ams.w1", False)
    book.engine.set_link("fra-ams.w2", False)
    book.engine.set_link("fra-ams.w3", False)
    hops = book._find("fra-h1", "ams-h1", 1e9, None)[1]      # through paris
    assert {fabric.link(h.link).line_system for h in hops} - {None} == {"fra-par", "par-ams"}
    for name in ("fra-ams.w1", "fra-ams.w2", "fra-ams.w3"):
        book.engine.set_link(name, True)
    direct = book._find("fra-h1", "ams-h1", 1e9, None)[1]
    events = book.risk_events(hops)
    assert {"switch par-gw1", "switch ams-gw1"} <= events and "switch fra-gw1" not in events
    # with a standby through ams-gw1 too, that gateway's loss fails both: not counted
    assert book.risk_events(hops, direct) & {"switch ams-gw1", "switch fra-gw1"} == set()
    assert "switch par-gw1" in book.risk_events(hops, direct)


def test_a_cause_is_renamed_only_to_the_event_it_was_the_first_sign_of():
    """After a switch-up, its wavelengths not yet back, a DEGRADED pair's "switch
    north-gw1 is down" became "line system north-east-a is down" (a re-tester)."""
    ring = topology("four-dc-ring")
    ctl = ControllerLab(ring).bring_up_all().ctl
    wave = next(l for l in ring.wavelengths() if l.line_system == "north-east-a")
    line = "line system north-east-a is down (all 4 wavelengths)"
    assert ctl._renames(line, f"{wave.wavelength} is down and no other path has room: x")
    assert not ctl._renames(line, "switch north-gw1 is down and no other path has room: x")
    assert not ctl._renames(line, "west-north.w1 is down and no other path has room: x")
    assert ctl._renames("switch north-gw1 is down",
                        "north-gw1~spine1 is down, so no path from a to b is up")
    # a switch-down whose line system was reported down before its other ports (seen on
    # the emulation): the switch names it; a switch at neither end of it does not
    assert ctl._renames("switch north-gw1 is down", f"{line} and no other path: x")
    assert not ctl._renames("switch south-gw1 is down", f"{line} and no other path: x")


def test_a_pair_without_its_standby_looks_for_one_every_few_seconds():
    """Room can come back in a way no event announced (a re-tester: pairs stayed without
    a standby for seconds after a repair while a fresh request got one)."""
    from dcilab.core.controller import REPROTECT_S

    fabric = parse_fabric(THREE_SITES)
    lab = ControllerLab(fabric).bring_up_all()
    ctl = lab.ctl
    lab.send(ctl.reserve(ReservationRequest("fra-h1", "ams-h1", 50.0, protection=PROTECTED),
                         "p", 0.0))
    lab.ack_all()
    _cut(lab, [fabric.link("fra-par.w1")], 1.0)
    lab.send(ctl.tick(1.1))
    lab.ack_all()
    assert ctl.book.get("p").standby == ()
    # Paris back, but taken by a reservation of its own before p looked; the book lets it
    # go without telling the controller (as room that returns unannounced).
    lab.send(ctl.reserve(ReservationRequest("fra-h1", "par-h1", 330.0), "filler", 1.2))
    lab.ack_all()
    _cut(lab, [fabric.link("fra-par.w1")], 1.3, up=True)
    lab.send(ctl.tick(1.4))
    lab.send(ctl.tick(40.0))                          # its hold-down over: in use again
    lab.ack_all()
    assert ctl.book.get("p").standby == ()
    ctl.book.end("filler", State.RELEASED)
    lab.send(ctl.tick(40.0 + REPROTECT_S + 0.1))
    lab.ack_all()
    assert ctl.book.get("p").standby != ()


def test_standby_room_over_while_a_failure_settles_is_shed_once_it_has():
    """ab1 and ab2 share a duct; both standbys go through h. ab1 is cut (ab2 may follow,
    so p2's standby is kept), then ah slows to 180 reservable under p1, now on its standby,
    and p2's standby room: p1 moves to ab2, p2's standby stands over. Once the cut's port
    statuses are all in, p2's standby goes; it stood over for as long as ab1 stayed down."""
    fabric = _share_with_a_duct()
    lab = ControllerLab(fabric).bring_up_all()
    ctl = lab.ctl
    lab.send(ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0, protection=PROTECTED),
                         "p1", 0.0))
    ctl.engine.set_link("ab1.w1", False)                # p2's primary: ab2
    lab.send(ctl.reserve(ReservationRequest("a-h2", "b-h2", 100.0, protection=PROTECTED),
                         "p2", 0.0))
    ctl.engine.set_link("ab1.w1", True)
    lab.ack_all()
    p1, p2 = ctl.book.get("p1"), ctl.book.get("p2")
    assert [_line_systems(fabric, r.hops) for r in (p1, p2)] == [{"ab1"}, {"ab2"}]
    _cut(lab, [fabric.link("ab1.w1")], 1.0)
    lab.send(ctl.tick(1.1))
    lab.send(ctl.wavelength_mode(fabric.link("ah.w1").wavelength, "slow", 100.0))
    lab.send(ctl.tick(1.2))
    lab.ack_all()
    assert _line_systems(fabric, ctl.book.get("p1").hops) == {"ab2"}
    assert ctl.book.get("p2").standby == p2.standby               # ab2 may follow
    over = overbooked(fabric, ctl.book, DEFAULT_RESERVABLE_FRACTION)
    assert over
    lab.send(ctl.tick(1.0 + FAILURE_SETTLE_S))
    lab.ack_all()
    p2_now = ctl.book.get("p2")
    assert p2_now.state is State.ACTIVE and p2_now.standby == ()
    assert PROTECT_GROUP_BASE + p2_now.meter_id not in lab.table("a-gw1").groups
    assert overbooked(fabric, ctl.book, DEFAULT_RESERVABLE_FRACTION) == []


def _line_systems(fabric, hops) -> set[str]:
    return {fabric.link(h.link).line_system for h in hops} - {None}


def test_a_standby_dark_too_drops_its_packets_tagged_once():
    """A reviewer's suspicion, confirmed on fake switches: primary and standby both cut
    before the controller hears of it. The standby left north-gw2 by its pin's group,
    whose detour tagged the packet a second time (QinQ, which no rule here matches). A
    standby leaves by its own ports: the packet is dropped at the dark wavelength, once
    tagged, until the controller acts."""
    ring = topology("four-dc-ring")
    lab = ControllerLab(ring).bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("north-h1", "east-h1", 50.0,
                                                protection=PROTECTED), "p", 0.0))
    lab.ack_all()
    p = lab.ctl.book.get("p")
    primary, standby = ({h.wavelength for h in hops if h.wavelength}
                        for hops in (p.hops, p.standby))
    assert len(primary) == len(standby) == 1 and primary != standby
    for name in primary | standby:
        link = ring.link(name)
        for end in (link.a, link.b):
            lab.net.down_ports.add((lab.dpid(end.node), end.port))
    [path] = lab.trace("north-h1", "east-h1")
    assert path.outcome is Outcome.LINK_DOWN
    assert path.packet["vlan_vid"] & 0xFFF == standby_vid(p)


def test_a_pair_carried_by_its_standby_keeps_it_when_only_standby_room_is_over():
    """A re-tester's trace: once a cut's port statuses were all in, pairs that had taken
    their standby as path were re-placed and DEGRADED ("runs a slower mode"), because
    the link they crossed held more than its capacity only by other pairs' standby room.
    Here p1 (ab1) takes its standby over ah; ah slows to 270 reservable: p1's 100 fit,
    p2's 250 of standby room beside it do not. ab2 has no room for p1."""
    fabric = _share_with_a_duct()
    lab = ControllerLab(fabric).bring_up_all()
    ctl = lab.ctl
    lab.send(ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0, protection=PROTECTED),
                         "p1", 0.0))
    ctl.engine.set_link("ab1.w1", False)                # p2 and the filler on ab2
    lab.send(ctl.reserve(ReservationRequest("a-h2", "b-h2", 250.0, protection=PROTECTED),
                         "p2", 0.0))
    lab.send(ctl.reserve(ReservationRequest("a-h3", "b-h3", 60.0), "fill", 0.0))
    ctl.engine.set_link("ab1.w1", True)
    lab.ack_all()
    assert [_line_systems(fabric, ctl.book.get(r).hops) for r in ("p1", "p2", "fill")] == [
        {"ab1"}, {"ab2"}, {"ab2"}]
    p1 = ctl.book.get("p1")
    _cut(lab, [fabric.link("ab1.w1")], 1.0)
    lab.send(ctl.tick(1.1))
    lab.send(ctl.wavelength_mode(fabric.link("ah.w1").wavelength, "slow", 300.0))
    for now in (1.2, 1.0 + FAILURE_SETTLE_S, 2.0 + FAILURE_SETTLE_S):
        lab.send(ctl.tick(now))
        lab.ack_all()
        now_p1 = ctl.book.get("p1")
        assert now_p1.state is State.ACTIVE and now_p1.hops == p1.standby, now
    assert ctl.book.get("p2").standby == ()                     # shed once settled
    assert overbooked(fabric, ctl.book, DEFAULT_RESERVABLE_FRACTION) == []


def _share_with_a_duct():
    """SHARE, with ab1 and ab2 in one duct (an SRLG)."""
    duct = "fiber_km: {}, module: 400ZR, wavelengths: 1, srlg: [duct]}}"
    return parse_fabric(SHARE.replace("fiber_km: 80, module: 400ZR, wavelengths: 1}",
                                      duct.format(80))
                        .replace("fiber_km: 90, module: 400ZR, wavelengths: 1}",
                                 duct.format(90)))


def test_a_standby_taken_as_the_path_goes_the_short_way_the_switches_take():
    """A standby runs from the primary's gateway (its repair point) back through the
    spine it came by. Taken as the path after a cut, carried untagged, that spine's one
    rule for the pair sends it straight to the other gateway: the path said the loop,
    its links were booked and its latency counted (a flow-table auditor's)."""
    from dcilab.bench.faults import DEFAULT_FABRIC
    from test_protection import cut_and_tick

    fabric = parse_fabric(DEFAULT_FABRIC)
    lab = ControllerLab(fabric).bring_up_all()
    book = lab.ctl.book
    looped = None
    for src in ("a-h1", "a-h2"):
        for dst in ("c-h1", "c-h2"):
            res = lab.send(lab.ctl.reserve(ReservationRequest(
                src, dst, 50.0, protection=PROTECTED), f"{src}>{dst}", 0.0)).changed[0]
            switches = [h.switch for h in res.standby]
            if looped is None and len(set(switches)) < len(switches):
                looped = res
    lab.ack_all()
    assert looped is not None, "no standby returns through its spine on this fabric"
    standby = looped.standby
    line = fabric.link(next(h.link for h in looped.hops if h.wavelength)).line_system
    cut = [l for l in fabric.links if l.line_system == line]
    cut_and_tick(lab, *cut, now=1.0)
    lab.ack_all()
    now = book.get(looped.reservation_id)
    switches = [h.switch for h in now.hops]
    assert len(set(switches)) == len(switches), switches
    assert [h.link for h in now.hops if h.wavelength] == \
        [h.link for h in standby if h.wavelength]
    assert now.latency_ms < book._latency_of(looped.request.src_host, standby)
    src, dst = looped.request.src_host, looped.request.dst_host
    assert delivered_via(lab, src, dst) == [set(switches)]        # as the switches carry it
    # The loop's links carry none of it, and hold none of it.
    skipped = {h.link for h in standby} - {h.link for h in now.hops}
    assert skipped and all(book.reserved.get(d, 0.0) == 0.0
                           for d in book.reserved if d.link in skipped)
    assert not skipped & {d.link for d in book.held(now)}


def test_a_latency_bound_holds_for_the_standby_as_it_will_carry_traffic():
    """The hairpin through the primary's gateway lasts only until the controller hears of
    the failure; the standby then carries the pair the short way. A bound between the two
    admits it (the auditor: refused on a path the switches carry faster)."""
    from dcilab.bench.faults import DEFAULT_FABRIC
    from dcilab.te.reservations import without_loops

    fabric = parse_fabric(DEFAULT_FABRIC)
    lab = ControllerLab(fabric).bring_up_all()
    book = lab.ctl.book
    res = lab.send(lab.ctl.reserve(ReservationRequest(
        "a-h1", "c-h1", 50.0, protection=PROTECTED), "probe", 0.0)).changed[0]
    looped = book._latency_of("a-h1", res.standby)
    short = book._latency_of("a-h1", without_loops(res.standby))
    assert short < looped and res.latency_ms < looped
    lab.send(lab.ctl.end("probe"))
    bound = max(res.latency_ms, (short + looped) / 2)
    admitted = lab.send(lab.ctl.reserve(ReservationRequest(
        "a-h1", "c-h1", 50.0, protection=PROTECTED, max_latency_ms=bound), "p", 0.0))
    got = admitted.changed[0]
    # the same primary and the same standby, hairpin and all: not another way round
    assert (got.hops, got.standby) == (res.hops, res.standby)
    assert book._latency_of("a-h1", without_loops(got.standby)) <= bound
