"""Restoration makes room as admission does: a pair a cut displaced, or one DEGRADED
waiting for room, fits once other aggregates move aside (one of them, or a re-packing),
make before break. Traced on the simulated flow tables."""

from __future__ import annotations

from dataclasses import replace

import pytest
from controller_lab import ControllerLab
from fabric_helpers import dci_links_of_path, tcp_packet
from test_protection import cut_and_tick

from dcilab.core import controller as core
from dcilab.fabric import parse_fabric
from dcilab.te.reservations import Protection, ReservationRequest, State, key_of

TWO_SITES = """
name: two
sites:
  - {name: a, spines: 4, leaves: 3, hosts_per_leaf: 3, gateways: 1}
  - {name: b, spines: 4, leaves: 3, hosts_per_leaf: 3, gateways: 1}
dci_links:
  - {name: a-b, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 3}
"""


def wavelength_of(lab, rid: str) -> str:
    (link,) = [h.link for h in lab.ctl.book.get(rid).hops if h.wavelength]
    return link


def laid_out() -> ControllerLab:
    """Three 400G wavelengths (360 Gb/s reservable each): C (250 Gb/s) alone on one,
    A (100) and E (150) on the second, B (100) and D (150) on the third. Best fit packs,
    so fillers steer the layout and are released."""
    lab = ControllerLab(parse_fabric(TWO_SITES)).bring_up_all()
    order = [("C", 250), ("G", 110), ("A", 100), ("E", 150), ("H", 110), ("B", 100), ("D", 150)]
    for n, (rid, gbps) in enumerate(order, start=1):
        lab.send(lab.ctl.reserve(ReservationRequest(f"a-h{n}", f"b-h{n}", gbps), rid, 0.0))
    lab.ack_all()
    for rid in "GH":
        lab.send(lab.ctl.end(rid))
    lab.ack_all()
    assert len({wavelength_of(lab, r) for r in "CAB"}) == 3
    assert wavelength_of(lab, "A") == wavelength_of(lab, "E")
    assert wavelength_of(lab, "B") == wavelength_of(lab, "D")
    return lab


def assert_within_capacity(lab) -> None:
    book = lab.ctl.book
    for d, bps in book.reserved.items():
        assert bps <= book.capacity_bps(d) + 1.0, d


def assert_carried(lab, rid: str, over: str) -> None:
    """`rid`'s packets cross `over` (and no other wavelength), metered by its meter."""
    res = lab.ctl.book.get(rid)
    src, dst = (lab.fabric.hosts[h] for h in (res.request.src_host, res.request.dst_host))
    paths = lab.net.trace(lab.dpid(src.leaf), src.port, tcp_packet(src, dst))
    assert paths
    for path in paths:
        assert [l.name for l in dci_links_of_path(lab.fabric, path.hops)] == [over]
    assert lab.table(src.leaf).meter_for(tcp_packet(src, dst)) == res.meter_id


def test_a_cut_pair_takes_the_room_another_makes_by_moving_aside():
    lab = laid_out()
    lab.send(lab.ctl.end("B"))
    lab.ack_all()
    cut = lab.fabric.link(wavelength_of(lab, "C"))
    meters = {rid: lab.ctl.book.get(rid).meter_id for rid in "ACDE"}
    # 110 and 210 Gb/s free on the survivors: no path has room for C's 250 as things
    # lie, but E moved beside D leaves A's wavelength 260 free (before: C DEGRADED).
    out = cut_and_tick(lab, cut)
    lab.ack_all()
    book = lab.ctl.book
    assert book.get("C").state is State.ACTIVE and book.get("C").reason == ""
    assert book.get("E").state is State.ACTIVE
    assert wavelength_of(lab, "E") == wavelength_of(lab, "D")
    assert wavelength_of(lab, "C") == wavelength_of(lab, "A") != cut.name
    assert {r.reservation_id for r in out.changed} >= {"C", "E"}
    assert_within_capacity(lab)
    for rid in "ACDE":
        assert book.get(rid).meter_id == meters[rid]
        assert_carried(lab, rid, wavelength_of(lab, rid))


def test_a_degraded_pair_is_placed_when_a_release_lets_others_make_room():
    lab = laid_out()
    cut_and_tick(lab, lab.fabric.link(wavelength_of(lab, "C")))
    lab.ack_all()
    assert lab.ctl.book.get("C").state is State.DEGRADED    # 110 + 110 Gb/s free: no way
    # B's release leaves 110 and 210: still no room for C as things lie; E moved beside
    # D makes it 260.
    out = lab.send(lab.ctl.place_degraded(lab.ctl.end("B")))     # as the service releases
    lab.ack_all()
    assert lab.ctl.book.get("C").state is State.ACTIVE
    assert wavelength_of(lab, "E") == wavelength_of(lab, "D")
    assert wavelength_of(lab, "C") == wavelength_of(lab, "A")
    assert {r.reservation_id for r in out.changed} >= {"B", "C", "E"}
    assert_within_capacity(lab)
    for rid in "ACDE":
        assert_carried(lab, rid, wavelength_of(lab, rid))


def test_a_pair_no_moves_can_place_is_tried_again_only_once_the_layout_changes(monkeypatch):
    lab = laid_out()
    tries = []
    making = lab.ctl.book.repath_making_room
    monkeypatch.setattr(lab.ctl.book, "repath_making_room",
                        lambda pair: tries.append(pair) or making(pair))
    cut_and_tick(lab, lab.fabric.link(wavelength_of(lab, "C")))
    # tried when the cut broke its path, and once DEGRADED (that freed its room)
    assert 1 <= len(tries) <= 2 and lab.ctl.book.get("C").state is State.DEGRADED
    del tries[:]
    for t in range(2, 6):                           # ticks: nothing changed, nothing tried
        lab.send(lab.ctl.tick(float(t)))
    assert tries == []
    lab.send(lab.ctl.place_degraded(lab.ctl.end("B")))   # room back: tried again, placed
    assert len(tries) == 1 and lab.ctl.book.get("C").state is State.PENDING


def test_a_restoration_makes_room_for_a_few_pairs_and_the_rest_at_the_next_tick(monkeypatch):
    lab = laid_out()
    lab.send(lab.ctl.end("B"))
    lab.ack_all()
    monkeypatch.setattr(core, "ROOM_MAKING_PER_RESTORE", 0)
    cut_and_tick(lab, lab.fabric.link(wavelength_of(lab, "C")))
    assert lab.ctl.book.get("C").state is State.DEGRADED
    assert lab.ctl.placements_pending                # waits for the next tick
    monkeypatch.setattr(core, "ROOM_MAKING_PER_RESTORE", 1)
    lab.send(lab.ctl.tick(1.0))
    assert lab.ctl.book.get("C").state is State.PENDING
    assert not lab.ctl.placements_pending


def test_protected_pairs_are_not_restored_by_moving_others():
    lab = laid_out()
    book = lab.ctl.book
    c = book.get("C")
    book.reservations["C"] = replace(c, request=c.request._replace(
        protection=Protection.PROTECTED))
    assert book.repath_making_room(("a-h1", "b-h1", None)) is None
    assert book.reservations["C"].hops == c.hops


@pytest.mark.parametrize("seed", [1, 6])
def test_random_cuts_and_repairs_under_reservations_never_overbook(seed):
    """Reservations, releases, cuts and repairs at random through the core on fake
    switches: after each, no link holds more than its reservable share, the ledger is
    the live reservations', nothing holding bandwidth crosses a dead link, and each
    aggregate's packets take the path the book holds for it."""
    import random

    from test_protection import report_cut, report_up
    from test_shared_standby_repack import FRACTION, ledger_matches

    from dcilab.bench.admission import overbooked
    from dcilab.core.damping import HOLD_DOWN_S
    from dcilab.te.reservations import AdmissionError

    fabric = parse_fabric(TWO_SITES)
    lab = ControllerLab(fabric, reservable_fraction=FRACTION).bring_up_all()
    book = lab.ctl.book
    book.repack_time_limit_s = 2.0          # HiGHS finishes: the same moves on any machine
    made = []
    making = book.repath_making_room

    def counted(pair):
        got = making(pair)
        made.append(got is not None)
        return got

    book.repath_making_room = counted
    rng = random.Random(seed)
    hosts, wavelengths = sorted(fabric.hosts), list(fabric.wavelengths())
    live, down, now = [], [], 0.0
    for i in range(80):
        now += 1.0
        roll = rng.random()
        if roll < 0.15 and len(down) < 3:
            link = rng.choice([w for w in wavelengths if w not in down])
            report_cut(lab, link, now=now)
            down.append(link)
        elif roll < 0.25 and down:
            link = down.pop(rng.randrange(len(down)))
            report_up(lab, link, now=now)
            now += HOLD_DOWN_S * 8                  # past any hold-down of a flapped link
        elif roll < 0.45 and live:
            lab.send(lab.ctl.place_degraded(lab.ctl.end(live.pop(rng.randrange(len(live))))))
        else:
            s, d = rng.sample(hosts, 2)
            try:
                lab.send(lab.ctl.reserve(ReservationRequest(
                    s, d, float(rng.choice([25, 50, 100, 150, 200]))), f"r{i}", now))
                live.append(f"r{i}")
            except AdmissionError:
                pass
        lab.send(lab.ctl.tick(now + 0.1))
        lab.ack_all()
        assert overbooked(fabric, book, FRACTION) == []
        ledger_matches(fabric, book)
        for res in book.live():
            if res.holds_bandwidth:
                assert book.crosses_down(res) is None, res.reservation_id
                paths = lab.trace(res.request.src_host, res.request.dst_host)
                assert [[(h.dpid, h.out_port) for h in p.hops] for p in paths] == \
                    [[(lab.dpid(h.switch), h.out_port) for h in res.hops]]
    # Restoration tried to make room (tests above show it succeeding). Seed 1 restored a
    # DEGRADED pair onto a destination host link others had filled meanwhile: 500 Gb/s.
    assert made


@pytest.mark.parametrize("seed", [61, 108, 131])
def test_random_protected_faults_overbook_standby_room_only_while_a_failure_settles(seed):
    """A re-tester's randomized run on four-dc-ring (every protection class, latency
    bounds, priorities, cuts and repairs of wavelengths) read standby room over a link's
    capacity right after a PROTECTED pair took its standby. By design for FAILURE_SETTLE_S
    (a line system's port statuses come in over several ticks, and the standbys of
    primaries it may yet fail are kept): primaries always fit, and once no failure is
    settling nor placement pending, everything, standby room too, fits; nothing holding
    bandwidth crosses a dead link or breaks its bound, and an aggregate keeps one path
    and one meter."""
    import random

    from fabric_helpers import topology
    from test_protection import report_cut, report_up

    from dcilab.te.reservations import AdmissionError

    fabric = topology("four-dc-ring")
    lab = ControllerLab(fabric).bring_up_all()
    book = lab.ctl.book
    rng = random.Random(seed)
    dci, hosts = [l for l in fabric.links if l.kind == "dci"], list(fabric.hosts)
    down: set[str] = set()
    now, n = 1.0, 0

    def check(settled: bool) -> None:
        book._sync()
        for d, bps in book.reserved.items():
            primaries = bps - (0.0 if settled else book._standby_max.get(d, 0.0))
            assert primaries <= book.capacity_bps(d) + 1.0, (d, bps / 1e9)
        aggregates: dict = {}
        for r in book.live():
            aggregates.setdefault(key_of(r.request), []).append(r)
            if r.holds_bandwidth and not lab.ctl.placements_pending:
                assert book._down_on(r.hops) is None, r.reservation_id
                bound = r.request.max_latency_ms
                assert bound is None or r.latency_ms <= bound + 1e-6, r.reservation_id
        for members in aggregates.values():
            assert len({m.hops for m in members}) == len({m.meter_id for m in members}) == 1

    for _ in range(150):
        roll = rng.random()
        if roll < 0.5:
            n += 1
            try:
                lab.send(lab.ctl.reserve(ReservationRequest(
                    *rng.sample(hosts, 2), rng.choice([20, 50, 100, 150, 200, 250, 300]),
                    max_latency_ms=rng.choice([None, None, None, 0.5, 1.0, 2.0, 5.0]),
                    protection=rng.choice([Protection.NONE, Protection.RESTORABLE,
                                           Protection.RESTORABLE, Protection.PROTECTED]),
                    priority=rng.randint(0, 3)), f"r{n}", now))
            except AdmissionError:
                pass
        elif roll < 0.7 and book.reservations:
            lab.send(lab.ctl.place_degraded(lab.ctl.end(rng.choice(sorted(book.reservations)))))
        elif roll < 0.85 and len(down) < 4:
            link = rng.choice(dci)
            if link.name not in down:
                report_cut(lab, link, now=now)
                down.add(link.name)
        elif down:
            name = rng.choice(sorted(down))
            report_up(lab, fabric.link(name), now=now)
            down.discard(name)
        now += 0.3
        lab.send(lab.ctl.tick(now))
        lab.ack_all()
        check(settled=not lab.ctl._settling and not lab.ctl.placements_pending)
    for name in sorted(down):
        report_up(lab, fabric.link(name), now=now)
    for _ in range(200):                          # every hold-down over
        now += 0.5
        lab.send(lab.ctl.tick(now))
        lab.ack_all()
    check(settled=True)


def test_a_request_between_a_cut_and_the_next_tick_does_not_take_the_displaced_room():
    """A cut displaces A (priority 9); the tick that places it comes up to 100 ms later. A
    request (priority 0) in between took the room left, and A stayed DEGRADED for good
    (a reviewer's): now A is placed first, and the request refused."""
    from dcilab.app.service import ControllerService
    from dcilab.te.reservations import AdmissionError

    fabric = parse_fabric(TWO_SITES.replace("wavelengths: 3", "wavelengths: 2"))
    lab = ControllerLab(fabric).bring_up_all()
    service = ControllerService(lab.ctl)
    service.attach(lambda outbox: len(lab.send(outbox).messages))
    a = service.reserve(ReservationRequest("a-h1", "b-h1", 250, priority=9))
    lab.ack_all()
    link = lab.fabric.link(wavelength_of(lab, a.reservation_id))
    gw = lab.fabric.switches[link.a.node]
    service.apply(lambda c: c.port_changed(gw.dpid, link.a.port, False, now=100.0))
    assert lab.ctl.placements_pending
    with pytest.raises(AdmissionError) as refused:
        service.reserve(ReservationRequest("a-h2", "b-h2", 250, priority=0))
    assert refused.value.code == AdmissionError.EXHAUSTED
    placed = service.get(a.reservation_id)
    assert placed.state is not State.DEGRADED and wavelength_of(lab, a.reservation_id) != link.name
    assert not lab.ctl.placements_pending
    assert_within_capacity(lab)


def test_a_restart_places_what_waited_for_room_before_any_new_request(tmp_path):
    """A DEGRADED reservation (priority 9) is restored by a controller that starts after
    the one holding the room lapsed meanwhile. It was booked as DEGRADED and left waiting
    for a release or a failure that never came, so a request (priority 0) took the room
    it waited for (a known low of the last review): now it is placed first."""
    from dcilab.app.service import ControllerService
    from dcilab.store.sqlite import ReservationStore

    fabric = parse_fabric(TWO_SITES.replace("wavelengths: 3", "wavelengths: 2"))
    now = [1000.0]

    def start() -> tuple[ControllerLab, ControllerService]:
        lab = ControllerLab(fabric)
        service = ControllerService(lab.ctl, clock=lambda: now[0],
                                    store=ReservationStore(tmp_path / "s.db", fabric="two"))
        service.attach(lambda outbox: len(lab.send(outbox).messages))
        return lab, service

    lab, service = start()
    lab.bring_up_all()
    a = service.reserve(ReservationRequest("a-h1", "b-h1", 250, priority=9))
    b = service.reserve(ReservationRequest("a-h2", "b-h2", 250, duration_s=5))
    lab.ack_all()
    link = fabric.link(wavelength_of(lab, a.reservation_id))
    gw = fabric.switches[link.a.node]
    service.apply(lambda c: c.port_changed(gw.dpid, link.a.port, False, now=100.0))
    service.apply(lambda c: c.tick(100.2))
    assert service.get(a.reservation_id).state is State.DEGRADED     # 110 Gb/s free
    service.close()

    now[0] += 60                                  # b lapsed while no controller ran
    lab, service = start()
    assert service.get(b.reservation_id).state is State.EXPIRED
    c = service.reserve(ReservationRequest("a-h3", "b-h3", 250))
    placed = service.get(a.reservation_id)
    assert placed.state is State.PENDING and placed.holds_bandwidth
    assert wavelength_of(lab, a.reservation_id) != wavelength_of(lab, c.reservation_id)
    assert_within_capacity(lab)
    service.close()


def _parallel_lines(km: dict[str, int]):
    """Sites a and b joined by one-wavelength 400ZR+ line systems (name -> fibre km): the
    lab, ticked once; each wavelength by name; and port(wavelength, up, now), its a end."""
    fabric = parse_fabric("name: lines\nsites:\n" + "".join(
        f"  - {{name: {site}, spines: 1, leaves: 1, hosts_per_leaf: 4, gateways: {len(km)}, "
        f"fabric_gbps: 3200}}\n" for site in "ab") + "dci_links:\n" + "".join(
        f"  - {{name: {name}, a: a, b: b, fiber_km: {k}, module: 400ZR+, wavelengths: 1}}\n"
        for name, k in km.items()))
    lab = ControllerLab(fabric).bring_up_all()
    wavelength = {link.wavelength: link for link in fabric.wavelengths()}

    def port(name: str, up: bool, now: float) -> None:
        end = wavelength[name].a
        lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, up, now))
    lab.send(lab.ctl.tick(0.0))
    return lab, wavelength, port


def test_a_link_back_in_the_tick_another_fails_goes_to_the_pairs_in_class_order():
    """A reviewer's: v came back in the tick y failed; the NONE pair y broke was restored
    first and took v, while a DEGRADED RESTORABLE pair of priority 9 stayed DEGRADED (it
    does not preempt, so it stayed so as long as the NONE pair held v)."""
    lab, wavelength, port = _parallel_lines({"x": 40, "y": 50, "z": 60, "v": 70})
    ctl = lab.ctl
    port("v.w1", False, 1.0)
    lab.send(ctl.tick(1.1))
    lab.send(ctl.reserve(ReservationRequest("a-h1", "b-h1", 300.0, priority=9), "R", 2.0))
    lab.send(ctl.reserve(ReservationRequest("a-h2", "b-h2", 300.0,
                                            protection=Protection.NONE), "N", 3.0))
    lab.send(ctl.reserve(ReservationRequest("a-h3", "b-h3", 300.0), "F", 4.0))
    lab.ack_all()
    assert wavelength_of(lab, "R") == wavelength["x.w1"].name
    port("x.w1", False, 5.0)
    lab.send(ctl.tick(5.1))
    assert ctl.book.get("R").state is State.DEGRADED            # no room on y or z
    port("v.w1", True, 6.0)
    lab.send(ctl.tick(6.1))
    back_at = ctl.held_down()["v.w1"]
    port("y.w1", False, back_at - 0.05)          # y fails in the tick v comes back in use
    lab.send(ctl.tick(back_at + 0.01))
    lab.ack_all()
    assert ctl.book.get("R").state is State.ACTIVE
    assert wavelength_of(lab, "R") == wavelength["v.w1"].name
    assert ctl.book.get("N").state is State.DEGRADED


def test_a_pair_broken_in_the_tick_a_link_returns_goes_before_shorter_paths_for_others():
    """A re-tester's: l3 came back in the tick l2 failed; two whole RESTORABLE pairs of
    higher priority moved from l0 onto l3, 8 km shorter, and the PROTECTED pair l2 broke,
    whose bound only l3 met, was left DEGRADED. A shorter path must not cost a displaced
    pair its place."""
    lab, wavelength, port = _parallel_lines({"l0": 74, "l1": 33, "l2": 28, "l3": 66})
    ctl = lab.ctl
    port("l3.w1", False, 1.0)
    lab.send(ctl.tick(1.1))
    probe = lab.send(ctl.reserve(ReservationRequest("a-h4", "b-h4", 10.0), "probe", 1.5))
    inside = probe.changed[0].latency_ms - wavelength["l2.w1"].latency_ms
    lab.send(ctl.end("probe"))
    # l3's way meets the bound, l0's does not
    bound = inside + (wavelength["l3.w1"].latency_ms + wavelength["l0.w1"].latency_ms) / 2
    lab.send(ctl.reserve(ReservationRequest("a-h1", "b-h1", 300.0, priority=3,
                                            protection=Protection.PROTECTED,
                                            max_latency_ms=bound), "r1", 2.0))
    lab.send(ctl.reserve(ReservationRequest("a-h2", "b-h2", 100.0, priority=5), "r0", 3.0))
    lab.send(ctl.reserve(ReservationRequest("a-h3", "b-h3", 150.0, priority=6), "r2", 4.0))
    lab.ack_all()
    assert wavelength_of(lab, "r1") == wavelength["l2.w1"].name
    assert wavelength_of(lab, "r0") == wavelength_of(lab, "r2") == wavelength["l0.w1"].name
    port("l1.w1", False, 5.0)                           # r1's standby goes with it
    lab.send(ctl.tick(5.2))
    lab.ack_all()
    port("l3.w1", True, 6.0)
    lab.send(ctl.tick(6.1))
    back_at = ctl.held_down()[wavelength["l3.w1"].name]
    port("l2.w1", False, back_at - 0.05)         # l2 fails in the tick l3 comes back in use
    lab.send(ctl.tick(back_at + 0.01))
    lab.ack_all()
    assert ctl.book.get("r1").state is State.ACTIVE
    assert wavelength_of(lab, "r1") == wavelength["l3.w1"].name
    assert {ctl.book.get(r).state for r in ("r0", "r2")} == {State.ACTIVE}
