"""Re-pathing instead of refusal: a host pair's aggregate moves as a whole to a path with
room for its sum (ids and meter kept), and admission reaches the max-flow bound.

The three-site fabric of issue 11, built here: frankfurt and amsterdam joined by one line
system of three 400ZR wavelengths (360 Gb/s reservable each), and a path through paris
(one 400ZR wavelength fra-par, one par-ams). Intra-site and host links are 1600 Gb/s, so
the wavelengths are the bottleneck. The bound is a networkx max flow over the fabric's
links at 0.9 of their rates, computed here without the book: 4 x 360 = 1440 Gb/s, i.e.
28 reservations of 50 Gb/s.
"""

from __future__ import annotations

import copy
import random

import networkx as nx
import pytest
from controller_lab import ControllerLab
from fakeoftable import Outcome
from os_ken.ofproto import ofproto_v1_3_parser as parser

from dcilab.fabric import parse_fabric
from dcilab.te.reservations import AdmissionError, ReservationBook, ReservationRequest, State

THREE_SITES = """
name: three-site
scale: 1.0e-4
sites:
  - {name: fra, spines: 2, leaves: 2, hosts_per_leaf: 1, gateways: 1, fabric_gbps: 1600}
  - {name: ams, spines: 2, leaves: 2, hosts_per_leaf: 2, gateways: 1, fabric_gbps: 1600}
  - {name: par, spines: 2, leaves: 1, hosts_per_leaf: 1, gateways: 1, fabric_gbps: 1600}
dci_links:
  - {name: fra-ams, a: fra, b: ams, fiber_km: 80, module: 400ZR, wavelengths: 3}
  - {name: fra-par, a: fra, b: par, fiber_km: 90, module: 400ZR, wavelengths: 1}
  - {name: par-ams, a: par, b: ams, fiber_km: 90, module: 400ZR, wavelengths: 1}
"""
FRACTION = 0.9


@pytest.fixture(scope="module")
def fabric():
    return parse_fabric(THREE_SITES)


def pairs_of(fabric):
    src = sorted(h for h in fabric.hosts if h.startswith("fra-"))
    dst = sorted(h for h in fabric.hosts if h.startswith("ams-"))
    assert (len(src), len(dst)) == (2, 4)
    return [(s, d) for s in src for d in dst]


def max_flow_gbps(fabric, pairs) -> float:
    """Independent bound: every link both ways at FRACTION of its rate, parallel links
    summed, a super source on the source hosts and a super sink on the destinations."""
    g = nx.DiGraph()
    for link in fabric.links:
        for a, b in ((link.a.node, link.b.node), (link.b.node, link.a.node)):
            cap = link.rate_gbps * FRACTION
            if g.has_edge(a, b):
                g[a][b]["capacity"] += cap
            else:
                g.add_edge(a, b, capacity=cap)
    for s, d in pairs:
        g.add_edge("S", s, capacity=float("inf"))
        g.add_edge(d, "T", capacity=float("inf"))
    return nx.maximum_flow_value(g, "S", "T")


def overbooked(fabric, book) -> list[str]:
    """Directed links whose reservations (summed from their hops here) exceed FRACTION of
    the link's rate."""
    load: dict[tuple[str, str], float] = {}
    for res in book.live():
        if not res.holds_bandwidth:
            continue
        src = fabric.hosts[res.request.src_host]
        steps = [(src.name, src.name)] + [(h.link, h.switch) for h in res.hops]
        for link, frm in steps:
            load[(link, frm)] = load.get((link, frm), 0.0) + res.request.bandwidth_gbps
    return [f"{link} from {frm}: {gbps} Gb/s" for (link, frm), gbps in load.items()
            if gbps > fabric.link(link).rate_gbps * FRACTION + 1e-6]


def test_the_bound_by_hand(fabric):
    assert max_flow_gbps(fabric, pairs_of(fabric)) == pytest.approx(4 * 360)


@pytest.mark.parametrize("order", ["round-robin", "pair-by-pair", "shuffled-1", "shuffled-2",
                                   "shuffled-3"])
def test_three_sites_admit_at_least_95_percent_of_the_max_flow_bound(fabric, order):
    pairs = pairs_of(fabric)
    bound = int(max_flow_gbps(fabric, pairs) // 50)           # 28
    asks = [pairs[i % len(pairs)] for i in range(2 * bound)]
    if order == "pair-by-pair":
        asks = sorted(asks)
    elif order.startswith("shuffled"):
        random.Random(int(order[-1])).shuffle(asks)
    book = ReservationBook(fabric, FRACTION)
    admitted = 0
    for i, (s, d) in enumerate(asks):
        try:
            book.admit(ReservationRequest(s, d, 50.0), f"r{i}", 0.0)
            admitted += 1
        except AdmissionError as exc:
            assert exc.code == AdmissionError.EXHAUSTED
        assert overbooked(fabric, book) == []
    assert admitted >= 0.95 * bound, (admitted, bound)
    # Each pair still shares one path and one meter.
    for s, d in pairs:
        members = book.pair_members(s, d)
        assert len({r.hops for r in members}) <= 1
        assert len({r.meter_id for r in members}) <= 1


def test_a_full_path_moves_the_aggregate_keeping_ids_and_meter(fabric):
    book = ReservationBook(fabric, FRACTION)
    s, d = "fra-h1", "ams-h1"
    first = book.admit(ReservationRequest(s, d, 200.0), "a", 0.0)
    # Fill the rest of the first wavelength with another pair (best fit puts it there).
    book.admit(ReservationRequest("fra-h2", "ams-h2", 160.0), "b", 0.0)
    wave = [h.wavelength for h in first.hops if h.wavelength]
    assert [h.wavelength for h in book.get("b").hops if h.wavelength] == wave
    res, moves = book.admit_moving(ReservationRequest(s, d, 100.0), "c", 0.0)
    assert [m.before[0].reservation_id for m in moves] == ["a"]
    moved = book.get("a")
    assert moved.meter_id == first.meter_id == res.meter_id
    assert moved.hops == res.hops != first.hops
    assert book.pair_bps(res) == pytest.approx(300e9)
    assert overbooked(fabric, book) == []


def test_refused_only_when_no_path_has_room_and_a_refusal_books_nothing(fabric):
    book = ReservationBook(fabric, FRACTION)
    # Four pairs of 360 Gb/s take the four 360 Gb/s paths.
    for i, (s, d) in enumerate(pairs_of(fabric)[:4]):
        book.admit(ReservationRequest(s, d, 360.0), f"f{i}", 0.0)
    before = dict(book.reserved)
    with pytest.raises(AdmissionError) as info:
        book.admit(ReservationRequest("fra-h2", "ams-h1", 10.0), "x", 0.0)
    assert "Gb/s free" in info.value.message
    assert book.reserved == before and "x" not in book.reservations


def test_a_randomized_sequence_with_releases_never_overbooks(fabric):
    rnd = random.Random(11)
    pairs = pairs_of(fabric) + [("par-h1", "ams-h3"), ("fra-h1", "par-h1")]
    book = ReservationBook(fabric, FRACTION)
    live: list[str] = []
    admitted = 0
    for i in range(400):
        if live and rnd.random() < 0.35:
            book.end(live.pop(rnd.randrange(len(live))), State.RELEASED)
        else:
            s, d = rnd.choice(pairs)
            bound = rnd.choice([None, None, 1.5, 3.0])
            try:
                book.admit(ReservationRequest(s, d, rnd.choice([10, 25, 50, 100, 200]),
                                              max_latency_ms=bound), f"r{i}", 0.0)
                live.append(f"r{i}")
                admitted += 1
            except AdmissionError:
                pass
        assert overbooked(fabric, book) == []
        for res in book.live():
            bound = res.request.max_latency_ms
            assert bound is None or res.latency_ms <= bound + 1e-9
        # The book's own ledger agrees with the sum over its reservations.
        total = sum(r.request.bandwidth_gbps * 1e9 * (len(r.hops) + 1) for r in book.live())
        assert book.reserved_total() == pytest.approx(total, rel=1e-9, abs=1.0)
    assert admitted > 100


# --- the move on the switches ---------------------------------------------------------------


def delivers(lab, src: str, dst: str) -> bool:
    d = lab.fabric.hosts[dst]
    paths = lab.trace(src, dst)
    return bool(paths) and all(p.outcome is Outcome.EGRESS
                               and p.end == (lab.dpid(d.leaf), d.port) for p in paths)


def lab_with_one_full_wavelength(fabric):
    """fra-h1 -> ams-h1 holds 200 Gb/s and fra-h2 -> ams-h2 the other 160 of one
    wavelength, all acknowledged: 100 more for the first pair moves its aggregate."""
    lab = ControllerLab(fabric, reservable_fraction=FRACTION)
    lab.bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("fra-h1", "ams-h1", 200.0), "a", 0.0))
    lab.send(lab.ctl.reserve(ReservationRequest("fra-h2", "ams-h2", 160.0), "b", 0.0))
    lab.ack_all()
    return lab, "fra-h1", "ams-h1"


def test_a_move_keeps_every_table_state_delivering_the_pair(fabric):
    """The move's messages applied one at a time, in many interleavings of the switches
    (each switch in its own order, as OpenFlow guarantees no more): after every single
    message, the pair's packets still reach the destination host."""
    lab, s, d = lab_with_one_full_wavelength(fabric)
    before = lab.ctl.book.get("a")
    snapshot = {dpid: t for dpid, t in lab.net.tables.items()}
    out = lab.ctl.reserve(ReservationRequest(s, d, 100.0), "c", 0.0)
    after = lab.ctl.book.get("a")
    assert after.hops != before.hops and after.meter_id == before.meter_id
    assert {"a", "c"} <= {r.reservation_id for r in out.changed}
    queues = {dpid: [m for m in msgs if not isinstance(m, parser.OFPBarrierRequest)]
              for dpid, msgs in out.messages.items()}
    rnd = random.Random(5)
    for trial in range(12):
        lab.net.tables = {dpid: copy.deepcopy(t) for dpid, t in snapshot.items()}
        pending = {dpid: list(q) for dpid, q in queues.items()}
        assert delivers(lab, s, d)
        while any(pending.values()):
            dpid = rnd.choice([k for k, q in pending.items() if q]) if trial else \
                min(k for k, q in pending.items() if q)
            lab.net.tables[dpid].apply([pending[dpid].pop(0)])
            assert delivers(lab, s, d), f"trial {trial}: a packet of the pair is dropped"
    # The end state: pinned on the new path, metered at the new sum.
    paths = lab.trace(s, d)
    assert len(paths) == 1
    assert [(h.dpid, h.out_port) for h in paths[0].hops] == \
        [(lab.dpid(h.switch), h.out_port) for h in after.hops]
    src = fabric.hosts[s]
    meter = lab.table(src.leaf).meters[after.meter_id]
    assert [b.rate for b in meter.bands] == [round(300e9 * fabric.scale / 1000)]
    lab.ack_all()
    assert lab.ctl.book.get("c").state is State.ACTIVE


def test_a_bound_only_the_live_fabric_misses_is_no_room_for_now(fabric):
    """A bound the direct line system meets, while it is cut: RESOURCE_EXHAUSTED (a
    retry after the repair helps); one no path meets with every link up:
    FAILED_PRECONDITION (none ever will)."""
    book = ReservationBook(fabric, FRACTION)
    direct = book.admit(ReservationRequest("fra-h1", "ams-h1", 10.0), "d", 0.0).latency_ms
    book.end("d", State.RELEASED)
    for link in fabric.links:
        if link.line_system == "fra-ams":
            book.engine.set_link(link.name, False)
    with pytest.raises(AdmissionError) as err:
        book.admit(ReservationRequest("fra-h1", "ams-h1", 10.0, max_latency_ms=direct), "a", 0.0)
    assert err.value.code == AdmissionError.EXHAUSTED
    with pytest.raises(AdmissionError) as err:
        book.admit(ReservationRequest("fra-h1", "ams-h1", 10.0, max_latency_ms=direct / 2),
                   "b", 0.0)
    assert err.value.code == AdmissionError.PRECONDITION
    assert "with every link up" in err.value.message


def ring_with_chord(site: str = "spines: 2, leaves: 2, hosts_per_leaf: 2, gateways: 2",
                    waves: tuple[int, ...] = (2, 3, 2, 1, 2)) -> str:
    """Four sites in a ring, n1..n4, with a chord n1-n3 in one duct with the side n1-n2;
    `waves` per line system n1n2, n2n3, n3n4, n4n1, n1n3."""
    names = [("n1n2", "n1", "n2", 50, ", srlg: [duct-x]"), ("n2n3", "n2", "n3", 70, ""),
             ("n3n4", "n3", "n4", 90, ""), ("n4n1", "n4", "n1", 60, ""),
             ("n1n3", "n1", "n3", 75, ", srlg: [duct-x]")]
    return ("name: ring-chord\nscale: 1.0e-4\nsites:\n"
            + "".join(f"  - {{name: n{i}, {site}, fabric_gbps: 1600}}\n" for i in range(1, 5))
            + "dci_links:\n"
            + "".join(f"  - {{name: {n}, a: {a}, b: {b}, fiber_km: {km}, module: 400ZR, "
                      f"wavelengths: {w}{risk}}}\n"
                      for (n, a, b, km, risk), w in zip(names, waves)))


RING_WITH_CHORD = ring_with_chord()


def test_moves_keep_every_step_within_the_line_rate_and_the_end_within_the_share():
    """Replays 150 random 50 Gb/s requests (an outside tester's sequence) and follows
    every admission's moves one at a time: no step puts more on a link than its line
    rate, and each admission ends within the reservable share. Some steps do use the
    unreserved tenth (a swap of wavelengths that no order could make within the share):
    the admissions they allow were refused before."""
    fabric = parse_fabric(RING_WITH_CHORD)
    book = ReservationBook(fabric, FRACTION)
    rng = random.Random(1)
    hosts = list(fabric.hosts)
    pairs = [(a, b) for a in hosts for b in hosts
             if fabric.hosts[a].site != fabric.hosts[b].site]
    beyond_share = 0
    for i in range(150):
        s, d = rng.choice(pairs)
        load = dict(book.reserved)
        try:
            _, moves = book.admit_moving(ReservationRequest(s, d, 50.0), f"r{i}", 0.0)
        except AdmissionError:
            continue
        for move in moves:
            total = sum(r.bandwidth_bps for r in move.before)
            for link in book.held(move.before[0]):
                load[link] -= total
            for link in book.held(move.after[0]):
                load[link] = load.get(link, 0.0) + total
                line_rate = book.capacity_bps(link) / FRACTION
                assert load[link] <= line_rate + 1.0, (i, link)
                beyond_share += load[link] > book.capacity_bps(link) + 1.0
        assert overbooked(fabric, book) == []
    assert beyond_share > 0


def test_a_reservation_that_moved_its_pair_is_active_once_the_new_path_acknowledges(fabric):
    """The request that moved its pair's aggregate rides the new path: it goes ACTIVE
    when every switch of that path has acknowledged its rules, not before (its pair's
    first reservation, already ACTIVE, left it nothing to wait for)."""
    lab, s, d = lab_with_one_full_wavelength(fabric)
    lab.send(lab.ctl.reserve(ReservationRequest(s, d, 100.0), "c", 0.0))
    last = lab.ctl.book.get("a").hops[-1].switch        # the destination's leaf
    for name in lab.fabric.switches:                      # every other switch answers all
        state = lab.ctl.switches[lab.dpid(name)]
        while name != last and state.barriers_acked < state.barriers_sent:
            lab.barrier(name)
    assert lab.ctl.book.get("c").state is State.PENDING
    lab.barrier(last)
    assert lab.ctl.book.get("c").state is State.ACTIVE
