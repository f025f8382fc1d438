"""ReservationBook: admission without overbooking, one path and one wavelength per DCI hop.

Every expectation is worked out by hand from the fabric numbers:
  a 400ZR wavelength carries 400 Gb/s, so 400 x 0.9 = 360 Gb/s is reservable on it;
  two-dc host and intra-site links are 800 Gb/s (720 reservable);
  four-dc-ring intra-site links are 1600 Gb/s (1440 reservable), 800ZR wavelengths 720.
Latencies are sums of the links' own latencies (INTRA_SITE_LATENCY_MS per intra-site hop).
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from fabric_helpers import topology

from dcilab.fabric import parse_fabric
from dcilab.fabric.model import DCI, INTRA_SITE_LATENCY_MS
from dcilab.te.load import Direction
from dcilab.te.reservations import (METER_REST, AdmissionError, Reservation,
                                    ReservationBook, ReservationRequest, State)

GBPS = 1e9
INTRA = INTRA_SITE_LATENCY_MS


def one_wave_fabric(fabric_gbps: float = 4000, hosts: int = 12):
    """Two sites, 1 spine / 1 leaf / 1 gateway each, joined by a single 400ZR wavelength."""
    return parse_fabric(f"""
name: one-wave
scale: 1.0e-4
sites:
  - {{name: dca, spines: 1, leaves: 1, hosts_per_leaf: {hosts}, gateways: 1, fabric_gbps: {fabric_gbps}}}
  - {{name: dcb, spines: 1, leaves: 1, hosts_per_leaf: {hosts}, gateways: 1, fabric_gbps: {fabric_gbps}}}
dci_links:
  - {{name: ab, a: dca, b: dcb, fiber_km: 80, module: 400ZR, wavelengths: 1}}
""")


WAVE_AB = Direction("ab.w1", "dca-gw1", "dcb-gw1")
WAVE_BA = Direction("ab.w1", "dcb-gw1", "dca-gw1")


class Ids:
    def __init__(self):
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"r{self.n}"


def req(src, dst, gbps, **kw) -> ReservationRequest:
    return ReservationRequest(src_host=src, dst_host=dst, bandwidth_gbps=gbps, **kw)


# --- independent checks of a reservation's path -------------------------------------------


def hop_directions(fabric, res: Reservation) -> list[Direction]:
    """The directed links the reservation should hold, derived from its hops and the file."""
    src = fabric.hosts[res.request.src_host]
    out = [Direction(src.name, src.name, src.leaf)]
    for hop in res.hops:
        link = fabric.link(hop.link)
        out.append(Direction(hop.link, hop.switch, link.other(hop.switch).node))
    return out


def check_path(fabric, res: Reservation) -> None:
    """One contiguous path from src host to dst host, every hop a real port of its switch."""
    src = fabric.hosts[res.request.src_host]
    dst = fabric.hosts[res.request.dst_host]
    assert res.hops[0].switch == src.leaf
    for hop, nxt in zip(res.hops, res.hops[1:] + (None,)):
        link = fabric.ports(hop.switch)[hop.out_port]
        assert link.name == hop.link
        assert hop.wavelength == (link.wavelength if link.kind == DCI else None)
        far = link.other(hop.switch).node
        if nxt is not None:
            assert nxt.switch == far
        else:
            assert far == dst.name and hop.switch == dst.leaf and hop.out_port == dst.port
    # No node visited twice.
    switches = [h.switch for h in res.hops]
    assert len(switches) == len(set(switches))
    # Its latency is the sum of what it crosses, source access link included.
    expected = fabric.link(src.name).latency_ms + sum(fabric.link(h.link).latency_ms
                                                      for h in res.hops)
    assert res.latency_ms == pytest.approx(expected)


def dci_wavelengths(res: Reservation) -> list[str]:
    return [h.wavelength for h in res.hops if h.wavelength is not None]


def expect_refusal(book, request, code=AdmissionError.EXHAUSTED, rid="refused"):
    before = dict(book.reserved)
    count = len(book.reservations)
    with pytest.raises(AdmissionError) as info:
        book.admit(request, rid, 0.0)
    assert info.value.code == code
    # A refusal books nothing.
    assert book.reserved == before
    assert len(book.reservations) == count
    return info.value


# --- exact capacity on one wavelength -------------------------------------------------------


def test_ten_36g_reservations_fill_one_400zr_wavelength_and_the_eleventh_is_refused():
    fabric = one_wave_fabric()
    book = ReservationBook(fabric)
    ids = Ids()
    assert book.capacity_bps(WAVE_AB) == 360 * GBPS   # 400 Gb/s x 0.9
    admitted = [book.admit(req(f"dca-h{i}", f"dcb-h{i}", 36), ids(), 0.0) for i in range(1, 11)]
    assert all(r.state is State.PENDING for r in admitted)
    assert all(dci_wavelengths(r) == ["ab.w1"] for r in admitted)
    assert book.reserved[WAVE_AB] == pytest.approx(360 * GBPS)
    assert book.free_bps(WAVE_AB) == pytest.approx(0.0, abs=1.0)

    err = expect_refusal(book, req("dca-h11", "dcb-h11", 36))
    assert "ab.w1" in err.message and "wavelength" in err.message
    assert "0.000 Gb/s free" in err.message
    assert "36.000 Gb/s asked" in err.message

    # The other direction of the same wavelength is untouched: 360 Gb/s still fit there.
    assert book.reserved.get(WAVE_BA, 0.0) == 0.0
    back = book.admit(req("dcb-h1", "dca-h1", 360), ids(), 0.0)
    assert dci_wavelengths(back) == ["ab.w1"]


def test_exactly_reservable_fits_and_a_hair_more_does_not():
    book = ReservationBook(one_wave_fabric())
    # More than any path could ever carry: no retry helps (not "no room now").
    err = expect_refusal(book, req("dca-h1", "dcb-h1", 360.001), AdmissionError.PRECONDITION)
    assert "can reserve at most 360 Gb/s, every link up and empty" in err.message
    book.admit(req("dca-h1", "dcb-h1", 350), "a", 0.0)
    err = expect_refusal(book, req("dca-h2", "dcb-h2", 10.001))
    assert "ab.w1" in err.message and "10.000 Gb/s free" in err.message
    book.admit(req("dca-h2", "dcb-h2", 10), "b", 0.0)
    assert book.free_bps(WAVE_AB) == pytest.approx(0.0, abs=1.0)


def test_reservable_fraction_is_honoured():
    book = ReservationBook(one_wave_fabric(), reservable_fraction=0.5)   # 200 Gb/s
    for i in range(1, 5):
        book.admit(req(f"dca-h{i}", f"dcb-h{i}", 50), f"r{i}", 0.0)
    err = expect_refusal(book, req("dca-h5", "dcb-h5", 50))
    assert "0.000 Gb/s free of 200.000 Gb/s reservable" in err.message


def test_access_link_is_a_bottleneck_too():
    # Host links of 100 Gb/s: 90 reservable; the wavelength (360) is not the limit.
    book = ReservationBook(one_wave_fabric(fabric_gbps=100))
    err = expect_refusal(book, req("dca-h1", "dcb-h1", 95), AdmissionError.PRECONDITION)
    assert "the host link of dca-h1 can reserve at most 90 Gb/s, however empty" in err.message
    book.admit(req("dca-h1", "dcb-h1", 60), "a", 0.0)
    # 30 left on dca-h1's uplink, and on the leaf's link to dcb-h2 90 left.
    err = expect_refusal(book, req("dca-h1", "dcb-h2", 31))
    assert "dca-h1" in err.message and "30.000 Gb/s free" in err.message
    err = expect_refusal(book, req("dca-h2", "dcb-h1", 31))
    assert "dcb-h1" in err.message and "30.000 Gb/s free" in err.message
    book.admit(req("dca-h1", "dcb-h2", 30), "b", 0.0)


# --- release, expiry, idempotency ---------------------------------------------------------


def test_release_returns_bandwidth_exactly_once():
    book = ReservationBook(one_wave_fabric())
    ids = Ids()
    held = [book.admit(req(f"dca-h{i}", f"dcb-h{i}", 36), ids(), 0.0) for i in range(1, 11)]
    expect_refusal(book, req("dca-h11", "dcb-h11", 36))
    ended = book.end(held[0].reservation_id, State.RELEASED)
    assert ended.state is State.RELEASED
    assert held[0].reservation_id not in book.reservations      # the book holds live ones
    assert book.free_bps(WAVE_AB) == pytest.approx(36 * GBPS)
    # Releasing again is refused and changes nothing (no double credit).
    with pytest.raises(AdmissionError) as info:
        book.end(held[0].reservation_id, State.RELEASED)
    assert info.value.code == AdmissionError.NOT_FOUND
    assert book.free_bps(WAVE_AB) == pytest.approx(36 * GBPS)
    book.admit(req("dca-h11", "dcb-h11", 36), ids(), 0.0)
    expect_refusal(book, req("dca-h12", "dcb-h12", 36))
    for r in held[1:]:
        book.end(r.reservation_id, State.RELEASED)
    assert book.reserved[WAVE_AB] == pytest.approx(36 * GBPS)
    assert {r.reservation_id for r in book.live()} == {"r11"}


def test_expiry_by_duration():
    book = ReservationBook(one_wave_fabric())
    timed = book.admit(req("dca-h1", "dcb-h1", 100, duration_s=30), "timed", 1000.0)
    forever = book.admit(req("dca-h2", "dcb-h2", 100), "forever", 1000.0)
    assert timed.created_at == 1000.0 and timed.expires_at == 1030.0
    assert forever.expires_at is None
    assert book.due(1029.9) == []
    assert book.due(1030.0) == ["timed"]
    assert book.due(10 ** 12) == ["timed"]      # duration 0: never due
    done = book.end("timed", State.EXPIRED)
    assert done.state is State.EXPIRED
    assert book.due(10 ** 12) == []
    assert book.free_bps(WAVE_AB) == pytest.approx(260 * GBPS)


def test_due_names_each_live_reservation_once_soonest_first_until_it_ends():
    book = ReservationBook(one_wave_fabric())
    for rid, duration in (("late", 50), ("early", 10), ("gone", 5), ("mid", 30)):
        book.admit(req("dca-h1", "dcb-h1", 1, duration_s=duration), rid, 1000.0)
    book.end("gone", State.RELEASED)
    book.put_back(book.get("mid"))          # a change taken back books it once more
    assert book.due(1009.0) == []
    assert book.due(1040.0) == ["early", "mid"]
    assert book.due(1040.0) == ["early", "mid"]     # not ended (a failed save): due again
    book.end("early", State.EXPIRED)
    assert book.due(2000.0) == ["mid", "late"]
    for rid in ("mid", "late"):
        book.end(rid, State.EXPIRED)
    assert book.due(2000.0) == []
    # what ended leaves nothing queued behind it: a long life costs what is due
    for i in range(500):
        book.admit(req("dca-h1", "dcb-h1", 1, duration_s=1), f"r{i}", 3000.0 + i)
        book.end(f"r{i}", State.RELEASED)
    assert book.due(10 ** 6) == [] and len(book._expiry) == 0
    # ... and released long before their expiry (a re-reviewer's: 20 000 entries of
    # 30-day reservations released at once stayed until each expiry passed)
    for i in range(2000):
        book.admit(req("dca-h1", "dcb-h1", 1, duration_s=30 * 86400), f"m{i}", 10 ** 6)
        book.end(f"m{i}", State.RELEASED)
    book.admit(req("dca-h1", "dcb-h1", 1, duration_s=30 * 86400), "kept", 10 ** 6)
    assert len(book._expiry) <= 130 and book.due(10 ** 8) == ["kept"]


def test_same_request_id_returns_the_same_reservation_without_booking_twice():
    book = ReservationBook(one_wave_fabric())
    first = book.admit(req("dca-h1", "dcb-h1", 36, request_id="job-1"), "r1", 0.0)
    second = book.admit(req("dca-h1", "dcb-h1", 36, request_id="job-1"), "r2", 5.0)
    assert second == first and second.reservation_id == "r1"
    assert set(book.reservations) == {"r1"}
    assert book.reserved[WAVE_AB] == pytest.approx(36 * GBPS)
    # A different request id is a different reservation.
    book.admit(req("dca-h1", "dcb-h1", 36, request_id="job-2"), "r3", 0.0)
    assert book.reserved[WAVE_AB] == pytest.approx(72 * GBPS)


def test_an_ended_reservation_leaves_the_book_and_its_meter_id_comes_back_after_a_rest():
    book = ReservationBook(one_wave_fabric())
    first = book.admit(req("dca-h1", "dcb-h1", 36, request_id="job-1"), "r1", 0.0)
    book.end("r1", State.RELEASED)
    assert book.reservations == {} and book.by_request_id == {}
    assert book.reserved.get(WAVE_AB, 0.0) == pytest.approx(0.0, abs=1.0)
    # Churn: one aggregate at a time, ids never climb past METER_REST + 2.
    given = []
    for i in range(5 * METER_REST):
        res = book.admit(req("dca-h2", "dcb-h2", 1), f"c{i}", 0.0)
        given.append(res.meter_id)
        book.end(res.reservation_id, State.RELEASED)
    assert max(given) <= METER_REST + 2 and first.meter_id in given[METER_REST:]
    # An id rests while METER_REST others are freed after it.
    assert all(len(set(given[k:k + METER_REST])) == METER_REST
               for k in range(len(given) - METER_REST))
    # Restored live reservations keep their ids; ended ones book nothing and hold none.
    other = ReservationBook(one_wave_fabric())
    other.add(first.with_state(State.RELEASED))
    assert other.reservations == {}
    other.add(replace(first, meter_id=7, reservation_id="r7"))
    assert other.admit(req("dca-h3", "dcb-h3", 1), "r3", 0.0).meter_id == 8
    # Ids between restored ones are free again (a reviewer saw ids climb at every
    # restart, and standby VLAN ids, an id modulo 2047, repeat among few aggregates).
    third = ReservationBook(one_wave_fabric())
    third.add(replace(first, meter_id=1000, reservation_id="r1000"))
    third.add(replace(first, meter_id=2, reservation_id="r2",
                      request=first.request._replace(src_host="dca-h2")))
    assert third.admit(req("dca-h3", "dcb-h3", 1), "r3", 0.0).meter_id == 1
    assert third.admit(req("dca-h4", "dcb-h3", 1), "r4", 0.0).meter_id == 3


# --- invalid arguments and unknown ids ------------------------------------------------------


@pytest.mark.parametrize("request_, word", [
    (req("nobody", "dcb-h1", 10), "src_host"),
    (req("dca-h1", "nobody", 10), "dst_host"),
    (req("dca-h1", "dca-h1", 10), "dca-h1"),
    (req("dca-h1", "dcb-h1", 0), "bandwidth"),
    (req("dca-h1", "dcb-h1", -5), "bandwidth"),
    (req("dca-h1", "dcb-h1", math.nan), "bandwidth"),
    (req("dca-h1", "dcb-h1", math.inf), "bandwidth"),
    (req("dca-h1", "dcb-h1", 10, max_latency_ms=0), "max_latency_ms"),
    (req("dca-h1", "dcb-h1", 10, max_latency_ms=-1), "max_latency_ms"),
    (req("dca-h1", "dcb-h1", 10, max_latency_ms=math.nan), "max_latency_ms"),
    (req("dca-h1", "dcb-h1", 10, duration_s=-1), "duration"),
    (req("dca-h1", "dcb-h1", 10, duration_s=math.nan), "duration"),
    (req("dca-h1", "dcb-h1", 10, duration_s=math.inf), "duration"),
])
def test_invalid_arguments(request_, word):
    book = ReservationBook(one_wave_fabric())
    err = expect_refusal(book, request_, code=AdmissionError.INVALID)
    assert word in err.message


def test_unknown_ids_are_not_found():
    book = ReservationBook(one_wave_fabric())
    for call in (lambda: book.get("nope"), lambda: book.end("nope", State.RELEASED)):
        with pytest.raises(AdmissionError) as info:
            call()
        assert info.value.code == AdmissionError.NOT_FOUND
        assert "nope" in info.value.message


def test_reservable_fraction_must_be_a_fraction():
    fabric = one_wave_fabric()
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError):
            ReservationBook(fabric, reservable_fraction=bad)


# --- which path and which wavelength --------------------------------------------------------


def test_best_fit_puts_a_request_on_the_fullest_wavelength_that_still_fits():
    fabric = topology("two-dc")     # four 400ZR wavelengths, 360 Gb/s reservable each
    book = ReservationBook(fabric)
    r1 = book.admit(req("dc1-h1", "dc2-h1", 300), "r1", 0.0)
    r2 = book.admit(req("dc1-h2", "dc2-h2", 200), "r2", 0.0)   # w1 has 60: next one
    r3 = book.admit(req("dc1-h3", "dc2-h3", 340), "r3", 0.0)   # w1 60, w2 160: next one
    assert dci_wavelengths(r1) == ["dc1-dc2-a.w1"]
    assert dci_wavelengths(r2) == ["dc1-dc2-a.w2"]
    assert dci_wavelengths(r3) == ["dc1-dc2-a.w3"]
    book.end("r1", State.RELEASED)
    # Free now: w1 360, w2 160, w3 20, w4 360. 100 fits w1, w2, w4: best fit is w2.
    r4 = book.admit(req("dc1-h4", "dc2-h4", 100), "r4", 0.0)
    assert dci_wavelengths(r4) == ["dc1-dc2-a.w2"]
    # 15 fits everywhere; the fullest is w3 (20 free).
    r5 = book.admit(req("dc1-h1", "dc2-h1", 15), "r5", 0.0)
    assert dci_wavelengths(r5) == ["dc1-dc2-a.w3"]
    # 360 only fits an untouched wavelength.
    r6 = book.admit(req("dc1-h3", "dc2-h1", 360), "r6", 0.0)
    assert dci_wavelengths(r6) == ["dc1-dc2-a.w1"]
    for r in (r2, r3, r4, r5, r6):
        check_path(fabric, r)


def test_widest_of_equal_latency_paths():
    fabric = topology("two-dc")
    book = ReservationBook(fabric)
    # dc1-leaf1 -> spine -> dc1-leaf2: two equal-latency paths, one per spine.
    first = book.admit(req("dc1-h1", "dc1-h3", 300), "a", 0.0)
    second = book.admit(req("dc1-h2", "dc1-h4", 100), "b", 0.0)
    # The first left 420 of 720 on its spine's links; the other spine has 720: wider.
    assert len(first.hops) == len(second.hops) == 3
    assert first.hops[1].switch != second.hops[1].switch
    assert first.hops[0].out_port != second.hops[0].out_port
    for r in (first, second):
        check_path(fabric, r)


def test_hosts_on_the_same_leaf_can_reserve():
    # dc1-h1 and dc1-h2 both hang off dc1-leaf1: the path is the leaf alone.
    fabric = topology("two-dc")
    book = ReservationBook(fabric)
    res = book.admit(req("dc1-h1", "dc1-h2", 100), "a", 0.0)
    assert [(h.switch, h.out_port) for h in res.hops] == [("dc1-leaf1", 2)]
    assert book.reserved[Direction("dc1-h1", "dc1-h1", "dc1-leaf1")] == pytest.approx(100 * GBPS)
    assert book.reserved[Direction("dc1-h2", "dc1-leaf1", "dc1-h2")] == pytest.approx(100 * GBPS)
    check_path(fabric, res)


# --- latency bounds on the ring --------------------------------------------------------------


@pytest.fixture
def ring():
    return topology("four-dc-ring")


def lat(fabric, name: str) -> float:
    return fabric.link(name).latency_ms


def east_way_ms(ring) -> float:
    # north-h1 -> north-leaf1 -> spine -> north-gw1 =ne-a= east-gw1 =es= south-gw1 -> spine
    # -> south-leaf1 -> south-h1: six intra-site hops (two of them host links).
    return lat(ring, "north-east-a.w1") + lat(ring, "east-south.w1") + 6 * INTRA


def west_way_ms(ring) -> float:
    # north-gw1 =west-north= west-campus-gw2 -> spine -> west-campus-gw1 =south-west=
    # south-gw2 -> spine -> south-leaf1: eight intra-site hops with the host links.
    return lat(ring, "west-north.w1") + lat(ring, "south-west.w1") + 8 * INTRA


def test_ring_latency_numbers_by_hand(ring):
    assert east_way_ms(ring) == pytest.approx(0.7715)
    assert west_way_ms(ring) == pytest.approx(5.700)


def test_latency_bound_between_the_two_ways_takes_the_short_way(ring):
    book = ReservationBook(ring)
    res = book.admit(req("north-h1", "south-h1", 10, max_latency_ms=3.0), "a", 0.0)
    assert res.latency_ms == pytest.approx(east_way_ms(ring))
    waves = dci_wavelengths(res)
    assert len(waves) == 2
    assert waves[0].startswith("north-east-a.") and waves[1].startswith("east-south.")
    check_path(ring, res)


def test_latency_bound_below_the_shortest_is_refused_naming_the_shortest(ring):
    book = ReservationBook(ring)
    err = expect_refusal(book, req("north-h1", "south-h1", 10, max_latency_ms=0.5),
                         code=AdmissionError.PRECONDITION)      # no retry can meet it
    assert "max_latency_ms" in err.message
    assert f"{east_way_ms(ring):.2f}" in err.message       # 0.77 ms


def test_short_line_system_full_uses_the_second_one_within_the_bound(ring):
    book = ReservationBook(ring)
    # Fill north-east-a: four 400ZR wavelengths, one 360 Gb/s reservation each, from
    # north-h3 (on north-leaf2, so north-leaf1's uplinks stay free); its uplink is
    # 1600 Gb/s (1440 reservable): exactly four of them.
    # They are bound to 0.3 ms too, so none can be moved aside onto north-east-b.
    for i in range(4):
        res = book.admit(req("north-h3", f"east-h{i + 1}", 360, max_latency_ms=0.3),
                         f"fill{i}", 0.0)
        assert dci_wavelengths(res) == [f"north-east-a.w{i + 1}"]
    via_a = lat(ring, "north-east-a.w1") + 6 * INTRA                  # 0.2285
    # north-gw2 carries north-east-b: leaf -> spine -> gw2 on both sides.
    via_b = lat(ring, "north-east-b.w1") + 6 * INTRA                  # 0.351
    assert via_a < 0.3 < via_b < 0.4
    err = expect_refusal(book, req("north-h1", "east-h1", 10, max_latency_ms=0.3))
    # The bottleneck named is full: a north-east-a wavelength, or the spine -> north-gw1
    # link the four fill reservations may all have shared (equal headroom: either is widest).
    assert "0.000 Gb/s free" in err.message
    assert "north-east-a.w" in err.message or "north-gw1~spine" in err.message
    res = book.admit(req("north-h1", "east-h1", 10, max_latency_ms=0.4), "b", 0.0)
    assert res.latency_ms == pytest.approx(via_b)
    assert dci_wavelengths(res) == ["north-east-b.w1"]
    check_path(ring, res)


def test_east_way_full_takes_the_west_way_when_the_bound_allows(ring):
    book = ReservationBook(ring)
    # east-south: two 800ZR wavelengths, 720 reservable each; fill both from east hosts.
    book.admit(req("east-h1", "south-h1", 720), "f1", 0.0)
    book.admit(req("east-h2", "south-h2", 720), "f2", 0.0)
    for bound in (1.0, 5.0):
        err = expect_refusal(book, req("north-h1", "south-h1", 10, max_latency_ms=bound))
        assert "east-south.w" in err.message and "0.000 Gb/s free" in err.message
    res = book.admit(req("north-h1", "south-h1", 10, max_latency_ms=6.0), "w", 0.0)
    assert res.latency_ms == pytest.approx(west_way_ms(ring))
    waves = dci_wavelengths(res)
    assert [w.rsplit(".", 1)[0] for w in waves] == ["west-north", "south-west"]
    check_path(ring, res)
    # Without a bound it is the same choice: the only feasible one.
    res2 = book.admit(req("north-h2", "south-h2", 10), "w2", 0.0)
    assert res2.latency_ms == pytest.approx(west_way_ms(ring))


def test_longer_path_is_found_even_with_many_equal_short_variants():
    """Four spines per site make 4 x 4 = 16 equal-latency variants of the short path; the
    long line system (on the other gateways) must still be tried when the short one is full."""
    fabric = parse_fabric("""
name: many-spines
scale: 1.0e-4
sites:
  - {name: dca, spines: 4, leaves: 1, hosts_per_leaf: 2, gateways: 2, fabric_gbps: 4000}
  - {name: dcb, spines: 4, leaves: 1, hosts_per_leaf: 2, gateways: 2, fabric_gbps: 4000}
dci_links:
  - {name: short, a: dca, b: dcb, fiber_km: 45, module: 400ZR, wavelengths: 1}
  - {name: long, a: dca, b: dcb, fiber_km: 70, module: 400ZR, wavelengths: 1}
""")
    book = ReservationBook(fabric)
    assert dci_wavelengths(book.admit(req("dca-h1", "dcb-h1", 360), "a", 0.0)) == ["short.w1"]
    res = book.admit(req("dca-h2", "dcb-h2", 10), "b", 0.0)
    assert dci_wavelengths(res) == ["long.w1"]


# --- randomized: never overbook, bookkeeping equals the live reservations -------------------


def check_books(fabric, book) -> None:
    expected: dict[Direction, float] = {}
    for res in book.reservations.values():
        if res.state.live:
            for d in hop_directions(fabric, res):
                expected[d] = expected.get(d, 0.0) + res.request.bandwidth_gbps * GBPS
    for link in fabric.links:
        for d in (Direction(link.name, link.a.node, link.b.node),
                  Direction(link.name, link.b.node, link.a.node)):
            cap = link.rate_gbps * GBPS * 0.9
            got = book.reserved.get(d, 0.0)
            assert got <= cap * (1 + 1e-12) + 1e-3, d
            assert got == pytest.approx(expected.get(d, 0.0), abs=1e-3), d


def widest_ever(fabric, src: str, dst: str, fraction: float = 0.9) -> float:
    """The most one path from host to host could reserve, every link up and empty, found
    apart from the book: the largest capacity at which the links that large still join
    the two (leaves never transit)."""
    import networkx as nx
    a, b = fabric.hosts[src].leaf, fabric.hosts[dst].leaf
    leaves = {h.leaf for h in fabric.hosts.values()}
    for cap in sorted({link.rate_gbps * GBPS * fraction for link in fabric.links},
                      reverse=True):
        g = nx.Graph()
        g.add_nodes_from((a, b))
        g.add_edges_from((link.a.node, link.b.node) for link in fabric.links
                         if link.rate_gbps * GBPS * fraction >= cap and
                         link.a.node not in fabric.hosts and link.b.node not in fabric.hosts
                         and not ({link.a.node, link.b.node} & (leaves - {a, b})))
        host_links = min(fabric.link(h).rate_gbps * GBPS * fraction for h in (src, dst))
        if nx.has_path(g, a, b):
            return min(cap, host_links)
    return 0.0


@pytest.mark.parametrize("name, seed", [("four-dc-ring", 7), ("two-dc", 2024),
                                        ("two-dc", 11)])
def test_randomized_requests_and_releases_never_overbook(name, seed):
    fabric = topology(name)
    book = ReservationBook(fabric)
    rng = random.Random(seed)
    hosts = sorted(fabric.hosts)
    admitted = refused = 0
    for step in range(600):
        live = [r.reservation_id for r in book.live()]
        if live and rng.random() < 0.3:
            book.end(rng.choice(live), rng.choice([State.RELEASED, State.EXPIRED]))
        else:
            src, dst = rng.sample(hosts, 2)
            if fabric.hosts[src].leaf == fabric.hosts[dst].leaf:
                continue            # same-leaf pairs are covered by their own test
            bound = rng.choice([None, None, rng.uniform(0.2, 8.0)])
            bw = round(rng.uniform(0.5, 380.0), 1)
            try:
                res = book.admit(req(src, dst, bw, max_latency_ms=bound), f"s{step}", step)
            except AdmissionError as exc:
                # PRECONDITION: a bound below the shortest path with every link up, or
                # more than the widest path could ever carry (one wavelength's 360 here)
                never = bw * GBPS > widest_ever(fabric, src, dst) + 1 or (
                    bound is not None and "with every link up" in exc.message)
                assert exc.code == (AdmissionError.PRECONDITION if never
                                    else AdmissionError.EXHAUSTED), exc.message
                refused += 1
            else:
                admitted += 1
                check_path(fabric, res)
                if bound is not None:
                    assert res.latency_ms <= bound
        check_books(fabric, book)
    # The run must exercise both outcomes to mean anything.
    assert admitted > 50 and refused > 50


def test_a_refusal_stands_without_a_new_search_until_room_comes_back(monkeypatch):
    # Clients retrying a full fabric must not hold the book for a full search each time.
    book = ReservationBook(one_wave_fabric())
    capacity = book.capacity_bps(WAVE_AB) / GBPS
    book.admit(req("dca-h1", "dcb-h1", capacity - 10), "r1", 0.0)
    searches = []
    make_way = book._make_way
    monkeypatch.setattr(book, "_make_way", lambda *a: (searches.append(a[2]), make_way(*a))[1])

    def refused(gbps, **kw):
        with pytest.raises(AdmissionError) as exc:
            book.admit(req("dca-h2", "dcb-h2", gbps, **kw), "rx", 0.0)
        assert exc.value.code == AdmissionError.EXHAUSTED
        return exc.value.message

    first = refused(20)
    assert len(searches) == 1 and "Gb/s free" in first
    # ... and says so, with what this request asked.
    assert refused(20) == ("20 Gb/s: 20 Gb/s was refused for this pair and nothing was "
                           "released or moved since; then: " + first)
    assert refused(30).startswith("30 Gb/s: 20 Gb/s was refused") and first in refused(30)
    assert refused(25, max_latency_ms=5.0).startswith("25 Gb/s: 20")    # a tighter bound
    assert len(searches) == 1
    refused(15)                                                   # less: searched again
    assert len(searches) == 2
    book.admit(req("dca-h3", "dcb-h3", 1), "r3", 0.0)             # taking room: still stands
    refused(20)
    assert len(searches) == 3                                     # r3's own placement only
    book.end("r3", State.RELEASED)                                # room came back: search
    refused(20)
    assert len(searches) == 4
    book.end("r1", State.RELEASED)
    assert book.admit(req("dca-h2", "dcb-h2", 20), "r2", 0.0).state is State.PENDING


TWO_LINES = """
name: two-lines
sites:
  - {name: dc1, spines: 2, leaves: 1, hosts_per_leaf: 2, gateways: 2, fabric_gbps: 1600}
  - {name: dc2, spines: 2, leaves: 1, hosts_per_leaf: 2, gateways: 2, fabric_gbps: 1600}
dci_links:
  - {name: short, a: dc1, b: dc2, fiber_km: 20, module: 400ZR, wavelengths: 1}
  - {name: long, a: dc1, b: dc2, fiber_km: 110, module: 800ZR, wavelengths: 1}
"""


def test_more_than_any_path_within_the_bound_could_carry_is_no_retry_case():
    """A re-tester's: 500 Gb/s within 0.3 ms, which only the 400G line meets, came back
    RESOURCE_EXHAUSTED (the 800G line, too long, was counted as its widest), and a
    client retried it for good."""
    book = ReservationBook(parse_fabric(TWO_LINES))
    long = book.admit(req("dc1-h1", "dc2-h1", 500), "long", 0.0)   # unbounded: the long line
    shortest_ms = book.engine.distances_to("dc2-leaf1")["dc1-leaf1"] / 1e6
    bound = shortest_ms + 2 * INTRA_SITE_LATENCY_MS + 0.05   # the short line's way only
    assert long.latency_ms > bound
    err = expect_refusal(book, req("dc1-h2", "dc2-h2", 500, max_latency_ms=bound),
                         AdmissionError.PRECONDITION)
    assert f"within max_latency_ms {bound:.12g} can reserve at most 360 Gb/s" in err.message
