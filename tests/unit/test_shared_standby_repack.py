"""Re-packing live aggregates to admit one more (te.repack), and shared standby capacity
for PROTECTED reservations: never an overbooked link, whatever the sequence."""

from __future__ import annotations

import random

import pytest
from test_repathing import THREE_SITES

from dcilab.bench.admission import overbooked
from dcilab.fabric import parse_fabric
from dcilab.te.load import Direction
from dcilab.te.placement import Hop, Route
from dcilab.te.repack import Unit, repack
from dcilab.te.reservations import (AdmissionError, Protection, ReservationBook,
                                    ReservationRequest, Selector, State, key_of)

FRACTION = 0.9

# a and b joined directly twice (ab1, ab2: no shared risk) and through h.
SHARE = """
name: share
scale: 1.0e-4
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 4, gateways: 1, fabric_gbps: 3200}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 4, gateways: 1, fabric_gbps: 3200}
  - {name: h, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 1, fabric_gbps: 3200}
dci_links:
  - {name: ab1, a: a, b: b, fiber_km: 80, module: 400ZR, wavelengths: 1}
  - {name: ab2, a: a, b: b, fiber_km: 90, module: 400ZR, wavelengths: 1}
  - {name: ah, a: a, b: h, fiber_km: 60, module: 400ZR, wavelengths: 1}
  - {name: hb, a: h, b: b, fiber_km: 60, module: 400ZR, wavelengths: 1}
"""


def ledger_matches(fabric, book: ReservationBook) -> None:
    """The book's running ledger equals one recomputed from the live reservations."""
    fresh = ReservationBook(fabric, FRACTION, engine=book.engine,
                            share_standby=book.share_standby)
    for res in book.live():
        fresh._pairs.setdefault(key_of(res.request), []).append(res.reservation_id)
        fresh._put([res])
    keys = set(book.reserved) | set(fresh.reserved)
    assert all(abs(book.reserved.get(k, 0.0) - fresh.reserved.get(k, 0.0)) < 1.0 for k in keys)


# -- te.repack ------------------------------------------------------------------------


def two_wavelengths(capacity):
    hop = Hop("ls", "x", "y", (("w1", "g"), ("w2", "g")))
    return (Route((hop,), 1),), {("w1", "g"): capacity, ("w2", "g"): capacity}


def test_repack_moves_the_fewest_to_fit_a_new_unit():
    routes, cap = two_wavelengths(100e9)
    units = [Unit(50e9, routes, (("w1", "g"),)), Unit(30e9, routes, (("w2", "g"),)),
             Unit(20e9, routes, (("w1", "g"),)), Unit(100e9, routes)]
    got = repack(units, cap, time_limit_s=5.0)
    assert got is not None
    load = {}
    for u, path in zip(units, got):
        load[path[0]] = load.get(path[0], 0.0) + u.demand
    assert all(v <= 100e9 for v in load.values())
    # The 30 moves to w1 (now full) and the new one takes w2: one move, not two (50, 20).
    moved = [i for i, (u, p) in enumerate(zip(units[:3], got)) if p != u.current]
    assert moved == [1] and got[3] == (("w2", "g"),)


def test_repack_says_none_when_nothing_fits():
    routes, cap = two_wavelengths(100e9)
    units = [Unit(60e9, routes, (("w1", "g"),)), Unit(60e9, routes, (("w2", "g"),)),
             Unit(90e9, routes)]
    assert repack(units, cap, time_limit_s=5.0) is None


# -- shared standby -------------------------------------------------------------------


def admit_protected(book, n=16, gbps=100.0):
    admitted = []
    for i in range(n):
        req = ReservationRequest(f"a-h{i % 4 + 1}", f"b-h{i // 4 + 1}", gbps,
                                 protection=Protection.PROTECTED)
        try:
            admitted.append(book.admit(req, f"p{i}", 0.0))
        except AdmissionError:
            pass
    return admitted


def test_shared_standby_admits_more_protected_reservations():
    fabric = parse_fabric(SHARE)
    alone = ReservationBook(fabric, FRACTION, share_standby=False)
    shared = ReservationBook(fabric, FRACTION)
    got_alone, got_shared = admit_protected(alone), admit_protected(shared)
    # 360 Gb/s reservable per wavelength: alone, three primaries on ab1 and their standby
    # fill ab2; shared, three more primaries go through h with their standby on ab2 too
    # (ab1 and the h line systems never fail together).
    assert len(got_alone) == 3 and len(got_shared) == 6
    for book in (alone, shared):
        assert overbooked(fabric, book, FRACTION) == []
        ledger_matches(fabric, book)
    ab2 = Direction("ab2.w1", "a-gw1", "b-gw1")
    assert shared.reserved[ab2] == pytest.approx(300e9)          # max(300 for ab1, 300 for h)
    via_h = [r for r in got_shared if any(h.link.startswith("ah") for h in r.hops)]
    assert len(via_h) == 3 and all(any(h.link.startswith("ab2") for h in r.standby)
                                   for r in via_h)
    # Releasing reservations gives back exactly what they held.
    for r in got_shared:
        shared.end(r.reservation_id, State.RELEASED)
    assert shared.reserved_total() == pytest.approx(0.0, abs=1.0)


def test_primaries_never_use_shared_standby_room():
    fabric = parse_fabric(SHARE)
    book = ReservationBook(fabric, FRACTION)
    admit_protected(book)
    # ab2 holds 300 Gb/s of standby: an unprotected 100 Gb/s cannot go there, nor on ab1
    # (300 of primaries) nor through h (300); 60 Gb/s fits on each.
    with pytest.raises(AdmissionError):
        book.admit(ReservationRequest("a-h1", "b-h4", 100.0), "x", 0.0)
    book.admit(ReservationRequest("a-h1", "b-h4", 60.0), "y", 0.0)
    assert overbooked(fabric, book, FRACTION) == []


# -- randomized: re-packing and shared standby never overbook ---------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("topology", [THREE_SITES, SHARE])
def test_random_sequences_never_overbook(topology, seed):
    fabric = parse_fabric(topology)
    book = ReservationBook(fabric, FRACTION, repack_time_limit_s=2.0)
    rng = random.Random(seed)
    hosts = sorted(fabric.hosts)
    live: list[str] = []
    other_moves = 0
    for i in range(150):
        if live and rng.random() < 0.3:
            book.end(live.pop(rng.randrange(len(live))), State.RELEASED)
        src, dst = rng.sample(hosts, 2)
        sel = Selector(6, 6000 + i, 6000 + i) if rng.random() < 0.3 else None
        protection = Protection.PROTECTED if rng.random() < 0.25 else Protection.RESTORABLE
        req = ReservationRequest(src, dst, float(rng.choice([10, 25, 50, 100, 150])),
                                 selector=sel, protection=protection)
        try:
            res, moves = book.admit_moving(req, f"r{i}", float(i))
        except AdmissionError:
            pass
        else:
            live.append(res.reservation_id)
            for move in moves:
                assert [r.reservation_id for r in move.before] == \
                    [r.reservation_id for r in move.after]                  # ids kept
                assert {r.meter_id for r in move.before} == {r.meter_id for r in move.after}
                other_moves += key_of(move.after[0].request) != key_of(req)
        assert overbooked(fabric, book, FRACTION) == []
        ledger_matches(fabric, book)
    if topology == THREE_SITES:
        assert other_moves > 0            # other aggregates were moved to make room


# -- the core applies re-packing moves on the switches ------------------------------------


def test_repacking_moves_reach_the_switches():
    """A random sequence through the controller core on fake switches: after every
    reservation (with re-packing moves of other aggregates among them), every live
    aggregate's packets take exactly the path the book holds for it."""
    from controller_lab import ControllerLab

    fabric = parse_fabric(THREE_SITES)
    lab = ControllerLab(fabric, reservable_fraction=FRACTION)
    lab.bring_up_all()
    book = lab.ctl.book
    repacked = []
    plain = book._repack

    def counting(pair, req):
        got = plain(pair, req)
        repacked.append(got is not None and bool(got[1]))
        return got

    book._repack = counting
    book.repack_time_limit_s = 2.0        # HiGHS finishes: the same moves on any machine
    rng = random.Random(5)
    hosts = sorted(fabric.hosts)
    live: list[str] = []
    for i in range(120):
        if live and rng.random() < 0.3:
            lab.send(lab.ctl.end(live.pop(rng.randrange(len(live)))))
            lab.ack_all()
        s, d = rng.sample(hosts, 2)
        req = ReservationRequest(s, d, float(rng.choice([25, 50, 100, 150, 200])))
        try:
            lab.send(lab.ctl.reserve(req, f"r{i}", float(i)))
        except AdmissionError:
            continue
        live.append(f"r{i}")
        lab.ack_all()
        for res in book.live():
            paths = lab.trace(res.request.src_host, res.request.dst_host)
            assert len(paths) == 1
            assert [(h.dpid, h.out_port) for h in paths[0].hops] == \
                [(lab.dpid(h.switch), h.out_port) for h in res.hops]
        assert overbooked(fabric, book, FRACTION) == []
    assert any(repacked)                  # some admissions needed other aggregates moved


# -- a cut: the primaries it fails take the standby room held for it ----------------------


def _shared_and_full(admit) -> tuple[list, list]:
    """Three 100 Gb/s PROTECTED primaries on ab1 and three through h, all six standbys on
    ab2 (300 Gb/s held, shared: ab1 and the h line systems never fail together); then
    unprotected pairs take what is left, ab2's last 60 Gb/s among it. `admit(request,
    id)` books one and returns it (or raises AdmissionError)."""
    protected, plain = [], []
    for i in range(16):
        try:
            protected.append(admit(ReservationRequest(
                f"a-h{i % 4 + 1}", f"b-h{i // 4 + 1}", 100.0,
                protection=Protection.PROTECTED), f"p{i}"))
        except AdmissionError:
            pass
    taken = {(r.request.src_host, r.request.dst_host) for r in protected}
    for src, dst in [(f"a-h{i}", f"b-h{j}") for i in range(1, 5) for j in range(1, 5)]:
        if (src, dst) not in taken:
            try:
                plain.append(admit(ReservationRequest(src, dst, 60.0), f"u{len(plain)}"))
            except AdmissionError:
                break
    return protected, plain


def _line_system(fabric, res) -> set[str]:
    return {fabric.link(h.link).line_system for h in res.hops} - {None}


def _restore_after_cut(book: ReservationBook) -> list:
    """What the controller does for every pair a cut of ab1 broke (without switches)."""
    for link in book.fabric.wavelengths():
        if link.line_system == "ab1":
            book.engine.set_link(link.name, False)
    shed = []
    for pair in book.pairs_to_restore():
        taken = book.take_standby(pair)
        if taken is not None:
            shed += taken[1]
            continue
        try:
            book.repath(pair)
        except AdmissionError as exc:
            book.degrade(pair, exc.message)
    return shed


def test_a_cut_primary_takes_its_standby_and_the_standbys_sharing_its_room_give_way():
    """An outside tester's case: a line-system cut DEGRADED PROTECTED reservations whose
    standby was reserved. Looking for a fresh path, the book counted the room their
    standby held, shared with the standbys of primaries elsewhere, as taken; and others
    restored first took what was free."""
    fabric = parse_fabric(SHARE)
    book = ReservationBook(fabric, FRACTION)
    protected, plain = _shared_and_full(lambda req, rid: book.admit(req, rid, 0.0))
    assert len(protected) == 6 and len(plain) == 3
    ab2 = Direction("ab2.w1", "a-gw1", "b-gw1")
    assert book.free_bps(ab2) == pytest.approx(0.0, abs=1.0)
    on_ab1 = [r for r in protected if _line_system(fabric, r) == {"ab1"}]
    via_h = [r for r in protected if _line_system(fabric, r) == {"ah", "hb"}]
    assert len(on_ab1) == len(via_h) == 3
    shed = _restore_after_cut(book)
    for r in on_ab1:                    # on their standby, holding their bandwidth
        now = book.get(r.reservation_id)
        assert now.state is not State.DEGRADED and now.hops == r.standby
        assert now.standby == () and _line_system(fabric, now) == {"ab2"}
    # The room they took was the h primaries' standby room too: those lost their standby
    # (and keep their primary); nothing is overbooked, the ledger adds up.
    assert {was.reservation_id for was, _ in shed} == {r.reservation_id for r in via_h}
    for r in via_h:
        now = book.get(r.reservation_id)
        assert now.hops == r.hops and now.standby == () and now.holds_bandwidth
    assert [book.get(r.reservation_id).state for r in plain].count(State.DEGRADED) == 1
    assert overbooked(fabric, book, FRACTION) == []
    ledger_matches(fabric, book)


def test_a_cut_reaches_the_switches_standby_kept_and_shared_standbys_removed():
    from controller_lab import ControllerLab
    from test_protected import delivered_via

    from dcilab.core.reservation_rules import PROTECT_GROUP_BASE

    fabric = parse_fabric(SHARE)
    lab = ControllerLab(fabric, reservable_fraction=FRACTION)
    lab.bring_up_all()
    protected, plain = _shared_and_full(
        lambda req, rid: lab.send(lab.ctl.reserve(req, rid, 0.0)).changed[0])
    lab.ack_all()
    gw = lab.table("a-gw1")
    assert all(PROTECT_GROUP_BASE + r.meter_id in gw.groups for r in protected)
    for link in fabric.wavelengths():
        if link.line_system == "ab1":
            for end in (link.a, link.b):
                lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False, 0.0))
    lab.send(lab.ctl.tick(0.1))
    lab.ack_all()
    book = lab.ctl.book
    for r in protected:
        now = book.get(r.reservation_id)
        assert now.state is State.ACTIVE and now.standby == (), now
        [way] = delivered_via(lab, r.request.src_host, r.request.dst_host)
        assert way == {h.switch for h in now.hops}
        assert PROTECT_GROUP_BASE + r.meter_id not in gw.groups      # no standby left
    assert overbooked(fabric, book, FRACTION) == []


def test_a_standby_link_that_slows_sheds_only_the_standbys_that_no_longer_fit():
    """ab2 holds 300 Gb/s for the three primaries through h and 100 for the one on ab1
    (shared: the largest, 300). Stepped down to 200G (180 reservable), the h event's 300
    no longer fits, the ab1 one's 100 does: h primaries lose their standby until theirs
    fits (two of three), though the ab1 one is the newest (the first to go by order
    alone)."""
    fabric = parse_fabric(SHARE)
    book = ReservationBook(fabric, FRACTION)
    protected = admit_protected(book)
    on_ab1 = [r for r in protected if _line_system(fabric, r) == {"ab1"}]
    via_h = [r for r in protected if _line_system(fabric, r) == {"ah", "hb"}]
    for r in on_ab1:
        book.end(r.reservation_id, State.RELEASED)
    newest = book.admit(ReservationRequest("a-h4", "b-h4", 100.0,
                                           protection=Protection.PROTECTED), "newest", 9.0)
    assert _line_system(fabric, newest) == {"ab1"} and newest.standby
    book.engine.set_rate("ab2.w1", 200.0, "slower mode")
    shed = book.shed_overfull_standbys()
    assert len(shed) == 2 and {was.reservation_id for was, _ in shed} < {
        r.reservation_id for r in via_h}
    assert book.get("newest").standby == newest.standby
    assert sum(bool(book.get(r.reservation_id).standby) for r in via_h) == 1
    assert overbooked(fabric, book, FRACTION) == []
    ledger_matches(fabric, book)


def test_a_pair_the_failure_broke_keeps_the_standby_it_is_about_to_take():
    """A re-tester's trace: a PROTECTED pair lost its standby to make room for others,
    then found no path and went DEGRADED, though the same failure had broken its primary
    and its standby was whole. A pair whose primary is down is never shed: it takes its
    standby next. Here ab2 holds 300 for the three primaries through h (and 300 for the
    three on ab1), ah is cut and ab2 slows to 180 reservable: only standbys of the ab1
    primaries are shed, and the first through h takes its standby."""
    fabric = parse_fabric(SHARE)
    book = ReservationBook(fabric, FRACTION)
    via_h = [r for r in admit_protected(book) if _line_system(fabric, r) == {"ah", "hb"}]
    assert len(via_h) == 3
    book.engine.set_link("ah.w1", False)
    book.engine.set_rate("ab2.w1", 200.0, "slower mode")
    shed = {was.reservation_id for was, _ in book.shed_overfull_standbys()}
    assert shed and not shed & {r.reservation_id for r in via_h}
    first = via_h[0]
    taken = book.take_standby((first.request.src_host, first.request.dst_host))
    assert taken is not None and book.get(first.reservation_id).hops == first.standby


def test_standbys_of_an_event_under_way_are_not_shed_before_its_port_statuses_are_in():
    """A re-tester's trace: a line system's wavelengths were reported down 0.2 s apart;
    a pair on the last one lost its standby to others in between, then went DEGRADED.
    While a line system has a wavelength down, no pair its events may fail is shed. Here
    ab1 and ab2 share a duct: ab1 is cut, ab2 (p2's primary) may follow; both standbys go
    through h, whose ah slows to 90 reservable."""
    fabric = parse_fabric(SHARE.replace("fiber_km: 80, module: 400ZR, wavelengths: 1}",
                                        "fiber_km: 80, module: 400ZR, wavelengths: 1, "
                                        "srlg: [duct]}")
                          .replace("fiber_km: 90, module: 400ZR, wavelengths: 1}",
                                   "fiber_km: 90, module: 400ZR, wavelengths: 1, "
                                   "srlg: [duct]}"))
    book = ReservationBook(fabric, FRACTION)
    p1 = book.admit(ReservationRequest("a-h1", "b-h1", 100.0,
                                       protection=Protection.PROTECTED), "p1", 0.0)
    book.engine.set_link("ab1.w1", False)               # p2's primary: ab2
    p2 = book.admit(ReservationRequest("a-h2", "b-h2", 100.0,
                                       protection=Protection.PROTECTED), "p2", 1.0)
    book.engine.set_link("ab1.w1", True)
    assert _line_system(fabric, p1) == {"ab1"} and _line_system(fabric, p2) == {"ab2"}
    assert "srlg duct" not in book.failing_events()
    book.engine.set_link("ab1.w1", False)                # the cut: ab2 may follow
    assert "srlg duct" in book.failing_events()
    book.engine.set_rate("ah.w1", 100.0, "slower mode")      # 90 reservable: over
    assert book.shed_overfull_standbys() == []
    assert book.get("p2").standby == p2.standby
    book.engine.set_link("ab1.w1", True)                 # over: now they give way
    assert [was.reservation_id for was, _ in book.shed_overfull_standbys()] == ["p2", "p1"]
