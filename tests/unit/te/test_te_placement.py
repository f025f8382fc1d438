"""Candidates and placement policies on small hand-made fabrics with known answers.

Latency of a route (ns): 4.9 us per fibre km + 2 us 400ZR DSP per DCI hop, plus 1 us per
intra-site hop (leaf->spine->gateway at each end, gateway->spine->gateway in transit).
"""

from __future__ import annotations

import zlib

import pytest

from dcilab.fabric import parse_fabric
from dcilab.te.placement import (Candidates, EcmpPlacer, Flow, LoadAwarePlacer, ShortestPlacer,
                                 add_load, five_tuple_hash, make_placer)

GBPS = 1e9


def fabric(links: list[tuple[str, str, str, float, int]], sites=("a", "b")):
    """Sites with 1 spine, 1 leaf, 4 hosts, 1 gateway; links (name, a, b, km, wavelengths)."""
    text = "name: t\nsites:\n" + "".join(
        f"  - {{name: {s}, spines: 1, leaves: 1, hosts_per_leaf: 4}}\n" for s in sites)
    text += "dci_links:\n" + "".join(
        f"  - {{name: {n}, a: {a}, b: {b}, fiber_km: {km}, module: 400ZR, wavelengths: {w}}}\n"
        for n, a, b, km, w in links)
    return parse_fabric(text)


@pytest.fixture
def pair():
    """Two sites, one line system of two 400G wavelengths."""
    return Candidates(fabric([("ab", "a", "b", 80, 2)]))


@pytest.fixture
def triangle():
    """a-b direct over 80 km; a-c-b over 60 + 50 km (1.38x the direct latency)."""
    return Candidates(fabric([("ab", "a", "b", 80, 1), ("ac", "a", "c", 60, 1),
                              ("cb", "c", "b", 50, 1)], sites=("a", "b", "c")))


def wavelengths(path):
    return [name for name, _ in path]


def elephant(i, sport=50000 + 1, src="a-h1", dst="b-h1"):
    return Flow(i, src, dst, sport)


def test_a_route_is_one_hop_per_line_system_with_every_wavelength(pair):
    (route,) = pair.routes("a", "b")
    assert [h.line_system for h in route.hops] == ["ab"]
    assert route.hops[0].wavelengths == (("ab.w1", "a-gw1"), ("ab.w2", "a-gw1"))
    assert route.latency_ns == round(80 * 4900 + 2000) + 4 * 1000
    assert pair.routes("b", "a")[0].hops[0].wavelengths[0] == ("ab.w1", "b-gw1")


def test_routes_within_stretch_only(triangle):
    assert [[h.line_system for h in r.hops] for r in triangle.routes("a", "b")] == \
        [["ab"], ["ac", "cb"]]
    narrow = Candidates(triangle.fabric, max_stretch=1.2)
    assert [[h.line_system for h in r.hops] for r in narrow.routes("a", "b")] == [["ab"]]
    assert [[h.line_system for h in r.hops] for r in triangle.equal_cost("a", "b")] == [["ab"]]


def test_loadaware_puts_two_elephants_on_two_wavelengths(pair):
    placer = LoadAwarePlacer(pair)
    load = {}
    paths = []
    for i in range(2):
        path = placer.place(elephant(i, src=f"a-h{i + 1}"), 400 * GBPS, load)
        add_load(load, path, 400 * GBPS)
        paths.append(path)
    assert sorted(wavelengths(p)[0] for p in paths) == ["ab.w1", "ab.w2"]


def test_loadaware_counts_load_it_is_given_such_as_reservations(pair):
    load = {("ab.w1", "a-gw1"): 300 * GBPS}     # reserved
    assert wavelengths(LoadAwarePlacer(pair).place(elephant(0), 100 * GBPS, load)) == ["ab.w2"]
    # the other direction is a different resource
    back = Flow(1, "b-h1", "a-h1", 50001)
    assert wavelengths(LoadAwarePlacer(pair).place(back, 100 * GBPS, load)) == ["ab.w1"]


def test_loadaware_takes_the_detour_when_the_direct_wavelength_is_busy(triangle):
    placer = LoadAwarePlacer(triangle)
    load = {}
    first = placer.place(elephant(0), 300 * GBPS, load)
    add_load(load, first, 300 * GBPS)
    second = placer.place(elephant(1, src="a-h2"), 300 * GBPS, load)
    assert wavelengths(first) == ["ab.w1"]
    assert wavelengths(second) == ["ac.w1", "cb.w1"]


def test_loadaware_prefers_the_shorter_route_on_a_tie(triangle):
    assert wavelengths(LoadAwarePlacer(triangle).place(elephant(0), 100 * GBPS, {})) == ["ab.w1"]


def colliding_sports(fab, modulus, want=2):
    """Source ports whose flows a-h1 -> b-h1 hash to the same bucket, found by CRC-32."""
    by_bucket = {}
    for sport in range(49152, 49252):
        key = f"{fab.hosts['a-h1'].ip}|{fab.hosts['b-h1'].ip}|17|{sport}|4791".encode()
        by_bucket.setdefault(zlib.crc32(key) % modulus, []).append(sport)
    return next(ports[:want] for ports in by_bucket.values() if len(ports) >= want)


def test_ecmp_picks_the_wavelength_its_hash_names(pair):
    flow = elephant(0, sport=49999)
    key = f"{pair.fabric.hosts['a-h1'].ip}|{pair.fabric.hosts['b-h1'].ip}|17|49999|4791"
    assert five_tuple_hash(pair.fabric, flow) == zlib.crc32(key.encode())
    assert wavelengths(EcmpPlacer(pair).place(flow)) == [f"ab.w{zlib.crc32(key.encode()) % 2 + 1}"]


def test_ecmp_with_colliding_hashes_shares_one_wavelength_while_another_idles(pair):
    s1, s2 = colliding_sports(pair.fabric, 2)
    placer = EcmpPlacer(pair)
    load = {}
    first = placer.place(elephant(0, sport=s1), 400 * GBPS, load)
    add_load(load, first, 400 * GBPS)
    second = placer.place(elephant(1, sport=s2), 400 * GBPS, load)
    assert first == second
    # loadaware, given the same load, uses the idle one
    assert LoadAwarePlacer(pair).place(elephant(1, sport=s2), 400 * GBPS, load) != first


def test_shortest_puts_every_flow_of_a_site_pair_on_one_wavelength():
    cands = Candidates(fabric([("ab", "a", "b", 80, 4)]))
    placer = ShortestPlacer(cands)
    paths = {placer.place(Flow(i, f"a-h{i % 4 + 1}", f"b-h{i % 4 + 1}", 49152 + i))
             for i in range(20)}
    assert len(paths) == 1
    # while the hash spreads the same flows
    ecmp = EcmpPlacer(cands)
    assert len({ecmp.place(Flow(i, "a-h1", "b-h1", 49152 + i)) for i in range(20)}) > 1


def test_flows_inside_a_site_cross_no_wavelength(pair):
    for policy in ("ecmp", "shortest", "loadaware"):
        assert make_placer(policy, pair).place(Flow(0, "a-h1", "a-h2", 1), 1.0, {}) == ()


def test_unknown_policy_is_refused(pair):
    with pytest.raises(ValueError, match="unknown policy"):
        make_placer("random", pair)


# --- revisit and hysteresis ------------------------------------------------------------------

W1, W2 = ("ab.w1", "a-gw1"), ("ab.w2", "a-gw1")


def test_revisit_moves_a_collided_elephant_and_then_leaves_it_alone(pair):
    placer = LoadAwarePlacer(pair, min_gain=0.05)
    a, b = elephant(0), elephant(1, src="a-h2")
    placed = {a: (400 * GBPS, (W1,)), b: (400 * GBPS, (W1,))}
    load = {W1: 800 * GBPS}
    moves = placer.revisit(placed, load)
    assert len(moves) == 1 and moves[0].old == (W1,) and moves[0].new == (W2,)
    assert load == {W1: 800 * GBPS}                  # the caller's load is not modified
    moved = moves[0].flow
    placed[moved] = (400 * GBPS, (W2,))
    assert placer.revisit(placed, {W1: 400 * GBPS, W2: 400 * GBPS}) == []


def test_hysteresis_no_move_when_the_gain_is_below_the_threshold(pair):
    # w1 carries A (0.5 of a wavelength) and B (0.1): B sees 0.6. w2 carries 0.48 of
    # background: B would see 0.58 there, a gain of 0.02.
    a, b = elephant(0), elephant(1, src="a-h2")
    placed = {a: (200 * GBPS, (W1,)), b: (40 * GBPS, (W1,))}
    load = {W1: 240 * GBPS, W2: 192 * GBPS}
    assert LoadAwarePlacer(pair, min_gain=0.05).revisit(placed, load) == []
    moves = LoadAwarePlacer(pair, min_gain=0.01).revisit(placed, load)
    assert [(m.flow, m.new) for m in moves] == [(b, (W2,))]


# --- reserved room ---------------------------------------------------------------------------

def test_an_elephant_keeps_off_reserved_wavelengths_while_a_path_has_none(pair):
    """Reservations are policed, not queued first, and an elephant grows into whatever room
    it finds: beside a reservation it takes reserved packets. w1 has 150 booked, w2 an
    elephant of 400: utilization alone picks w1 (1.375 against 2.0); the cost picks w2,
    and so for a slower one whose rate would "fit" (a TCP elephant moved there grew)."""
    placer = LoadAwarePlacer(pair)
    load = {W1: 150 * GBPS, W2: 400 * GBPS}
    assert placer.place(elephant(0), 400 * GBPS, load) == (W1,)        # nothing reserved
    assert placer.place(elephant(0), 400 * GBPS, load, {W1: 150 * GBPS}) == (W2,)
    assert placer.place(elephant(0), 50 * GBPS, load, {W1: 150 * GBPS}) == (W2,)
    # With every wavelength reserved, the one with the least booked, whatever its load.
    load = {W1: 150 * GBPS, W2: 300 * GBPS}
    assert placer.place(elephant(0), 400 * GBPS, load, {W1: 150 * GBPS, W2: 100 * GBPS}) \
        == (W2,)


def test_revisit_moves_an_elephant_off_a_reserved_wavelength_and_never_onto_one(pair):
    placer = LoadAwarePlacer(pair, min_gain=0.05)
    a, b = elephant(0), elephant(1, src="a-h2")
    booked = {W1: 150 * GBPS}
    # A (400) beside 150 booked on w1, B (400) alone on w2: A moves to w2, though the
    # utilization along its path rises (1.375 to 2.0).
    placed = {a: (400 * GBPS, (W1,)), b: (400 * GBPS, (W2,))}
    load = {W1: 550 * GBPS, W2: 400 * GBPS}
    moves = placer.revisit(placed, load, booked)
    assert [(m.flow, m.new) for m in moves] == [(a, (W2,))]
    placed[a] = (400 * GBPS, (W2,))
    assert placer.revisit(placed, {W1: 150 * GBPS, W2: 800 * GBPS}, booked) == []
    # Even one whose demand is small: a paced flow's rate is what it sends now.
    placed = {a: (50 * GBPS, (W2,)), b: (400 * GBPS, (W2,))}
    assert placer.revisit(placed, {W1: 150 * GBPS, W2: 450 * GBPS}, booked) == []
    # Unreserved, the same load evens out the other way.
    placed = {a: (400 * GBPS, (W2,)), b: (400 * GBPS, (W2,))}
    assert [(m.flow, m.new) for m in placer.revisit(placed, {W1: 150 * GBPS, W2: 800 * GBPS})] \
        == [(a, (W1,))]
