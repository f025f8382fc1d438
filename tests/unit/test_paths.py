"""PathEngine: equal-cost next hops, latency-shortest routes, loop freedom.

Expectations come from the fabric files' numbers, worked out by hand:
  port numbers  leaf: hosts 1..H, then spine j at H+j; spine: leaf i at i, gateway g at
                L+g; gateway: spine j at j, then one port per wavelength (file order)
  latency       4.9 us per fibre km + transceiver DSP (400ZR CFEC 2 us, oFEC 4 us) per
                DCI hop, 1 us per intra-site hop
"""

from __future__ import annotations

import pytest
from fabric_helpers import topology

from dcilab.fabric import parse_fabric
from dcilab.te.paths import PathEngine

US_PER_KM = 4.9
INTRA_HOP_NS = 1000


@pytest.fixture(scope="module")
def two_dc():
    return topology("two-dc")


@pytest.fixture(scope="module")
def ring():
    return topology("four-dc-ring")


def hop_ports(hops) -> set[int]:
    return {h.out_port for h in hops}


def line_systems_crossed(path) -> list[str]:
    return [h.link.line_system for h in path if h.link.kind == "dci"]


# --- two-dc: spreading over spines and wavelengths -------------------------------------------


def test_leaf_spreads_over_every_spine(two_dc):
    hops = PathEngine(two_dc).next_hops("dc2-leaf1")
    # dc1-leaf1 has 2 hosts, so its spines are on ports 3 and 4.
    assert hop_ports(hops["dc1-leaf1"]) == {3, 4}
    assert {h.link.other("dc1-leaf1").node for h in hops["dc1-leaf1"]} == {"dc1-spine1", "dc1-spine2"}


def test_gateway_spreads_over_every_wavelength(two_dc):
    hops = PathEngine(two_dc).next_hops("dc2-leaf1")
    # dc1-gw1: spines on 1, 2; the four wavelengths of dc1-dc2-a on 3..6.
    gw = hops["dc1-gw1"]
    assert hop_ports(gw) == {3, 4, 5, 6}
    assert len(gw) == 4
    assert {h.link.name for h in gw} == {f"dc1-dc2-a.w{k}" for k in range(1, 5)}
    assert {h.link.other("dc1-gw1").node for h in gw} == {"dc2-gw1"}


def test_spines_head_for_the_gateway_with_the_line_system(two_dc):
    hops = PathEngine(two_dc).next_hops("dc2-leaf1")
    # dc1 has 2 leaves, so gw1 is on spine port 3; gw2 carries no DCI link.
    assert hop_ports(hops["dc1-spine1"]) == {3}
    assert hop_ports(hops["dc1-spine2"]) == {3}
    # On the far side the gateway spreads over both spines, which go straight to leaf 1.
    assert hop_ports(hops["dc2-gw1"]) == {1, 2}
    assert hop_ports(hops["dc2-spine1"]) == {1}
    assert "dc2-leaf1" not in hops


def test_all_equal_cost_paths_across_two_dc(two_dc):
    paths = PathEngine(two_dc).paths("dc1-leaf1", "dc2-leaf1", limit=1000)
    # 2 spines x 4 wavelengths x 2 spines.
    assert len(paths) == 16
    assert len({tuple((h.switch, h.out_port) for h in p) for p in paths}) == 16
    for path in paths:
        assert [h.switch for h in path] == ["dc1-leaf1", path[1].switch, "dc1-gw1", "dc2-gw1",
                                            path[4].switch]
        assert line_systems_crossed(path) == ["dc1-dc2-a"]


def test_distance_across_two_dc(two_dc):
    graph = PathEngine(two_dc)
    dci_ns = round((80 * US_PER_KM + 2.0) * 1000)  # 80 km of fibre + 400ZR DSP
    expected_ns = 4 * INTRA_HOP_NS + dci_ns   # leaf-spine-gw ... gw-spine-leaf
    assert graph.distances_to("dc2-leaf1")["dc1-leaf1"] == expected_ns
    assert graph.shortest_latency_ms("dc1-leaf1", "dc2-leaf1") == pytest.approx(0.398)
    # Within a site: leaf-spine-leaf.
    assert graph.distances_to("dc1-leaf2")["dc1-leaf1"] == 2 * INTRA_HOP_NS


# --- the ring: latency-shortest way round ----------------------------------------------------

# Fibre km of each line system in four-dc-ring.yaml.
KM = {"north-east-a": 45, "north-east-b": 70, "east-south": 110, "south-west": 260,
      "west-north": 900}


def test_north_to_west_goes_the_long_way_round_because_it_is_shorter(ring):
    via_east_south = KM["north-east-a"] + KM["east-south"] + KM["south-west"]  # 415 km
    direct = KM["west-north"]                                                    # 900 km
    assert via_east_south < direct
    graph = PathEngine(ring)
    paths = graph.paths("north-leaf1", "west-campus-leaf1", limit=10_000)
    # 2 spines x 4 (north-east-a) x 2 (east-south) x 2 south spines x 4 (south-west) x 2 spines
    assert len(paths) == 256
    for path in paths:
        assert line_systems_crossed(path) == ["north-east-a", "east-south", "south-west"]
    # Latency by hand: DSP 2 us (400ZR) + 4 us (800ZR) + 4 us (400ZR+); six intra-site hops
    # (north leaf-spine-gw1, south gw1-spine-gw2, west gw1-spine-leaf).
    expected_ms = (via_east_south * US_PER_KM + 2 + 4 + 4) / 1000 + 6 * INTRA_HOP_NS / 1e6
    assert graph.shortest_latency_ms("north-leaf1", "west-campus-leaf1") == pytest.approx(
        expected_ms, abs=1e-6)


def test_west_to_north_comes_back_the_same_way(ring):
    paths = PathEngine(ring).paths("west-campus-leaf2", "north-leaf2", limit=10_000)
    assert paths
    for path in paths:
        assert line_systems_crossed(path) == ["south-west", "east-south", "north-east-a"]


@pytest.mark.parametrize("src, dst, expected", [
    # east->west: via south 110+260 = 370 km, via north 45+900 = 945 km
    ("east-leaf1", "west-campus-leaf1", ["east-south", "south-west"]),
    # north->south: via east 45+110 = 155 km, via west 900+260 = 1160 km
    ("north-leaf2", "south-leaf1", ["north-east-a", "east-south"]),
    # south->west: direct 260 km, the other way 110+45+900 = 1055 km
    ("south-leaf1", "west-campus-leaf2", ["south-west"]),
])
def test_ring_routes_by_hand(ring, src, dst, expected):
    paths = PathEngine(ring).paths(src, dst, limit=10_000)
    assert paths
    for path in paths:
        assert line_systems_crossed(path) == expected


def test_longer_parallel_line_system_is_not_used(ring):
    # north-east-a (45 km, on north-gw1) beats north-east-b (70 km, on north-gw2).
    hops = PathEngine(ring).next_hops("east-leaf1")
    # north has 2 leaves, so north-gw1 is spine port 3 and north-gw2 spine port 4.
    assert hop_ports(hops["north-spine1"]) == {3}
    # north-gw1: spines 1, 2; north-east-a.w1..w4 on 3..6; west-north on 7..10.
    assert hop_ports(hops["north-gw1"]) == {3, 4, 5, 6}
    # north-gw2 sends back to the spines rather than over its own 70 km line system.
    assert hop_ports(hops["north-gw2"]) == {1, 2}


# --- a second line system between the same two sites ------------------------------------------

def two_line_systems(km_a: float, km_b: float, gateways: int) -> str:
    return f"""
name: parallel
sites:
  - {{name: s1, spines: 2, leaves: 2, hosts_per_leaf: 1, gateways: {gateways}}}
  - {{name: s2, spines: 2, leaves: 2, hosts_per_leaf: 1, gateways: {gateways}}}
dci_links:
  - {{name: s1-s2-a, a: s1, b: s2, fiber_km: {km_a}, module: 400ZR, wavelengths: 2}}
  - {{name: s1-s2-b, a: s1, b: s2, fiber_km: {km_b}, module: 400ZR, wavelengths: 2}}
"""


def test_equal_length_second_line_system_on_another_gateway_is_equal_cost():
    # Round robin: s1-s2-a lands on gw1 of each site, s1-s2-b on gw2.
    fabric = parse_fabric(two_line_systems(60, 60, gateways=2))
    graph = PathEngine(fabric)
    hops = graph.next_hops("s2-leaf1")
    # 2 leaves: gw1 on spine port 3, gw2 on spine port 4.
    assert hop_ports(hops["s1-spine1"]) == {3, 4}
    assert hop_ports(hops["s1-gw1"]) == {3, 4}
    assert hop_ports(hops["s1-gw2"]) == {3, 4}
    paths = graph.paths("s1-leaf1", "s2-leaf1", limit=1000)
    # 2 spines x (2 gateways x 2 wavelengths) x 2 spines
    assert len(paths) == 16
    used = {h.link.name for p in paths for h in p if h.link.kind == "dci"}
    assert used == {"s1-s2-a.w1", "s1-s2-a.w2", "s1-s2-b.w1", "s1-s2-b.w2"}


def test_equal_length_second_line_system_on_the_same_gateway_adds_wavelengths():
    fabric = parse_fabric(two_line_systems(60, 60, gateways=1))
    hops = PathEngine(fabric).next_hops("s2-leaf2")
    # One gateway: spines on 1, 2; s1-s2-a on 3, 4; s1-s2-b on 5, 6.
    assert hop_ports(hops["s1-gw1"]) == {3, 4, 5, 6}


def test_longer_second_line_system_is_not_an_alternative():
    fabric = parse_fabric(two_line_systems(60, 61, gateways=2))
    graph = PathEngine(fabric)
    hops = graph.next_hops("s2-leaf1")
    assert hop_ports(hops["s1-spine1"]) == {3}
    assert hop_ports(hops["s1-gw1"]) == {3, 4}
    paths = graph.paths("s1-leaf1", "s2-leaf1", limit=1000)
    assert len(paths) == 8
    assert {h.link.line_system for p in paths for h in p if h.link.kind == "dci"} == {"s1-s2-a"}


# --- loop freedom ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["two-dc", "four-dc-ring"])
def test_next_hop_graph_has_no_loops_and_always_arrives(name):
    fabric = topology(name)
    graph = PathEngine(fabric)
    for dst in fabric.switches:
        hops = graph.next_hops(dst)
        # Every switch but dst has somewhere to go (the fabric is connected).
        assert set(hops) == set(fabric.switches) - {dst}
        succ = {u: {h.link.other(u).node for h in hs} for u, hs in hops.items()}
        for u, vs in succ.items():
            assert vs, f"{u} has no next hop towards {dst}"
            assert u not in vs
        # Depth-first search for a cycle (white/grey/black colouring).
        colour: dict[str, int] = {}

        def visit(u: str, trail: list[str]) -> None:
            colour[u] = 1
            for v in succ.get(u, ()):
                assert colour.get(v) != 1, f"loop towards {dst}: {trail + [u, v]}"
                if v not in colour:
                    visit(v, trail + [u])
            colour[u] = 2

        for u in succ:
            if u not in colour:
                visit(u, [])
        # And every walk ends at dst: the sinks of the DAG are exactly {dst}.
        sinks = {v for vs in succ.values() for v in vs} - set(succ)
        assert sinks == {dst}


def test_leaf_reach_shows_which_switches_are_the_only_way():
    engine = PathEngine(topology("two-dc"))
    full = engine.leaf_reach()
    assert len(full) == 4 * 3                       # every leaf to every other, both ways
    engine.set_switch("dc1-spine1", False)          # the other spine is a way around
    assert engine.leaf_reach() == full
    engine.set_switch("dc1-spine1", True)
    assert engine.leaf_reach(without="dc1-spine1") == full       # asked, not marked
    engine.set_switch("dc1-gw1", False)             # the one line system's gateway
    assert engine.leaf_reach() == engine.leaf_reach(without="dc1-gw1") == {("dc1-leaf1", "dc1-leaf2"), ("dc1-leaf2", "dc1-leaf1"),
                                   ("dc2-leaf1", "dc2-leaf2"), ("dc2-leaf2", "dc2-leaf1")}
