"""The fabric expanded: names, addresses, port numbers, gateways and wavelengths.

Expected values are worked out from the rules in the issue and in model.py's docstring,
not read back from the program.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dcilab.fabric import load_fabric, parse_fabric
from dcilab.fabric.model import DCI, FABRIC, HOST

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
IFNAMSIZ = 15  # Linux: 16 bytes with the NUL


def site(name, spines=1, leaves=1, hosts_per_leaf=1, **more):
    return {"name": name, "spines": spines, "leaves": leaves, "hosts_per_leaf": hosts_per_leaf,
            **more}


def link(name, a, b, fiber_km=40, module="400ZR", wavelengths=1, **more):
    return {"name": name, "a": a, "b": b, "fiber_km": fiber_km, "module": module,
            "wavelengths": wavelengths, **more}


def build(sites, links=(), **top):
    data = {"name": "t", **top, "sites": list(sites), "dci_links": list(links)}
    return parse_fabric(yaml.safe_dump(data, sort_keys=False))


def peer(fabric, switch, port):
    """The node at the far end of `switch`'s `port`."""
    return fabric.ports(switch)[port].other(switch).node


@pytest.fixture(scope="module")
def two_dc():
    return load_fabric(TOPOLOGIES / "two-dc.yaml")


@pytest.fixture(scope="module")
def ring():
    return load_fabric(TOPOLOGIES / "four-dc-ring.yaml")


# --- counts and defaults -------------------------------------------------------------------

def test_two_dc_counts(two_dc):
    # per site: 2 spines + 2 leaves + 2 gateways; 2 leaves x 2 hosts
    assert len(two_dc.switches) == 12
    assert len(two_dc.hosts) == 8
    assert sum(1 for _ in two_dc.wavelengths()) == 4
    kinds = [l.kind for l in two_dc.links]
    assert kinds.count(HOST) == 8
    # per site: leaf-spine 2x2 + gateway-spine 2x2
    assert kinds.count(FABRIC) == 2 * (4 + 4)
    assert kinds.count(DCI) == 4


def test_defaults():
    fabric = build([site("a")])
    s = fabric.sites[0]
    assert s.gateways == 1
    assert s.fabric_gbps == 400
    assert fabric.scale == pytest.approx(1e-4)
    assert {l.rate_gbps for l in fabric.links if l.kind in (HOST, FABRIC)} == {400}
    spec = build([site("a"), site("b")], [link("l", "a", "b")]).spec.dci_links[0]
    assert spec.band == "C" and spec.span_km == 80 and spec.a_gateway is None


def test_fabric_gbps_sets_host_and_fabric_link_rates(two_dc):
    assert {l.rate_gbps for l in two_dc.links if l.kind in (HOST, FABRIC)} == {800}


# --- hosts -----------------------------------------------------------------------------------

def test_hosts_are_numbered_across_the_site_leaf_by_leaf():
    fabric = build([site("dc1", leaves=3, hosts_per_leaf=2),
                    site("dc2", leaves=2, hosts_per_leaf=3)],
                   [link("l", "dc1", "dc2")])
    expected = {
        # name: (leaf, port on leaf, address)
        "dc1-h1": ("dc1-leaf1", 1, "10.1.1.1"),
        "dc1-h2": ("dc1-leaf1", 2, "10.1.1.2"),
        "dc1-h3": ("dc1-leaf2", 1, "10.1.2.3"),
        "dc1-h6": ("dc1-leaf3", 2, "10.1.3.6"),
        "dc2-h1": ("dc2-leaf1", 1, "10.2.1.1"),
        "dc2-h3": ("dc2-leaf1", 3, "10.2.1.3"),
        "dc2-h4": ("dc2-leaf2", 1, "10.2.2.4"),
        "dc2-h6": ("dc2-leaf2", 3, "10.2.2.6"),
    }
    assert len(fabric.hosts) == 12
    assert set(fabric.hosts) == {f"dc1-h{n}" for n in range(1, 7)} | {f"dc2-h{n}" for n in range(1, 7)}
    for name, (leaf, port, ip) in expected.items():
        host = fabric.hosts[name]
        assert (host.leaf, host.port, host.ip, host.prefix_len) == (leaf, port, ip, 8), name
        assert host.site == name.split("-")[0]
        assert fabric.host_by_ip(ip) is host
        # the leaf's port really leads to the host
        assert peer(fabric, leaf, port) == name


def test_site_index_follows_file_order_not_name():
    fabric = build([site("zulu"), site("alpha"), site("mike")],
                   [link("l1", "zulu", "alpha"), link("l2", "alpha", "mike")])
    assert fabric.hosts["zulu-h1"].ip == "10.1.1.1"
    assert fabric.hosts["alpha-h1"].ip == "10.2.1.1"
    assert fabric.hosts["mike-h1"].ip == "10.3.1.1"


def test_254_hosts_fit_the_address_plan():
    fabric = build([site("a", leaves=2, hosts_per_leaf=127)])
    assert len(fabric.hosts) == 254
    assert fabric.hosts["a-h254"].ip == "10.1.2.254"
    assert fabric.hosts["a-h128"].ip == "10.1.2.128"
    assert fabric.hosts["a-h127"].ip == "10.1.1.127"
    assert len({h.ip for h in fabric.hosts.values()}) == 254
    assert len({h.mac for h in fabric.hosts.values()}) == 254


# --- port numbers ----------------------------------------------------------------------------

def test_leaf_ports_are_hosts_then_spines(two_dc):
    # H = 2 hosts per leaf, then spine1, spine2
    assert sorted(two_dc.ports("dc2-leaf2")) == [1, 2, 3, 4]
    assert peer(two_dc, "dc2-leaf2", 1) == "dc2-h3"
    assert peer(two_dc, "dc2-leaf2", 2) == "dc2-h4"
    assert peer(two_dc, "dc2-leaf2", 3) == "dc2-spine1"
    assert peer(two_dc, "dc2-leaf2", 4) == "dc2-spine2"


def test_spine_ports_are_leaves_then_gateways():
    fabric = build([site("a", spines=2, leaves=3, hosts_per_leaf=1, gateways=2)])
    assert sorted(fabric.ports("a-spine2")) == [1, 2, 3, 4, 5]
    assert [peer(fabric, "a-spine2", p) for p in range(1, 6)] == [
        "a-leaf1", "a-leaf2", "a-leaf3", "a-gw1", "a-gw2"]
    # and from the other end: leaf1 reaches spine2 on its port H + 2
    leaf_to_spine = fabric.ports("a-leaf1")[1 + 2]
    assert leaf_to_spine.other("a-leaf1").node == "a-spine2"
    assert leaf_to_spine.other("a-leaf1").port == 1


def test_gateway_ports_are_spines_then_wavelengths_in_file_order():
    # b has one gateway: a transit site whose gateway terminates both links.
    fabric = build([site("a"), site("b", spines=3), site("c")],
                   [link("ab", "a", "b", wavelengths=2), link("bc", "b", "c", wavelengths=3)])
    ports = fabric.ports("b-gw1")
    assert sorted(ports) == list(range(1, 3 + 2 + 3 + 1))
    assert [peer(fabric, "b-gw1", p) for p in (1, 2, 3)] == ["b-spine1", "b-spine2", "b-spine3"]
    assert [ports[p].name for p in range(4, 9)] == ["ab.w1", "ab.w2", "bc.w1", "bc.w2", "bc.w3"]
    # on the single-spine gateways the wavelengths start at port 2
    assert [fabric.ports("a-gw1")[p].name for p in (2, 3)] == ["ab.w1", "ab.w2"]
    assert [fabric.ports("c-gw1")[p].name for p in (2, 3, 4)] == ["bc.w1", "bc.w2", "bc.w3"]


def test_every_port_is_used_once_and_numbered_without_gaps(ring):
    used = {}
    for l in ring.links:
        for end in (l.a, l.b):
            if end.node in ring.switches:
                key = (end.node, end.port)
                assert key not in used, f"{key} used by {used[key]} and {l.name}"
                used[key] = l.name
    for name in ring.switches:
        ports = sorted(p for (sw, p) in used if sw == name)
        assert ports == list(range(1, len(ports) + 1)), name


def test_host_and_switch_names_never_clash():
    # a site called like another site's host or switch
    fabric = build([site("a", leaves=1, hosts_per_leaf=2), site("a-h1"), site("a-spine1")],
                   [link("l1", "a", "a-h1"), link("l2", "a", "a-spine1")])
    assert not set(fabric.hosts) & set(fabric.switches)
    assert len(fabric.hosts) == 4


# --- short Linux names -----------------------------------------------------------------------

def _linux_names(fabric):
    names = [sw.bridge for sw in fabric.switches.values()]
    names += [sw.interface(p) for sw in fabric.switches.values() for p in fabric.ports(sw.name)]
    names += [h.interface for h in fabric.hosts.values()]
    names += [h.node for h in fabric.hosts.values()]
    return names


def test_a_48_character_site_with_254_hosts_keeps_linux_names_short():
    long_name = "a" * 47 + "z"
    fabric = build([site("dc1"), site(long_name, spines=4, leaves=2, hosts_per_leaf=127,
                                      gateways=2)],
                   [link("l", "dc1", long_name, wavelengths=8)])
    assert len(fabric.hosts_of(long_name)) == 254
    names = _linux_names(fabric)
    assert max(len(n) for n in names) <= IFNAMSIZ, max(names, key=len)
    assert len(set(names)) == len(names)


def test_linux_names_stay_short_at_the_largest_fabric_the_schema_allows():
    # 254 sites (3-digit site index); the last has 64 spines, 254 leaves, 64 gateways,
    # a 48-character name and a long link name: the longest bridge and port numbers.
    sites = [site(f"s{i}") for i in range(1, 254)]
    big = "b" * 48
    sites.append(site(big, spines=64, leaves=254, hosts_per_leaf=1, gateways=64))
    links = [link(f"l{i}", f"s{i}", f"s{i + 1}") for i in range(1, 253)]
    links.append(link("x" * 48, "s253", big, wavelengths=64))
    fabric = build(sites, links)
    names = _linux_names(fabric)
    assert max(len(n) for n in names) <= IFNAMSIZ, max(names, key=len)
    assert len(set(names)) == len(names)
    dpids = [sw.dpid for sw in fabric.switches.values()]
    assert len(set(dpids)) == len(dpids)
    assert all(0 < d < 2 ** 64 for d in dpids)


def test_dpids_are_unique_and_map_back_to_their_switch(ring):
    dpids = [sw.dpid for sw in ring.switches.values()]
    assert len(set(dpids)) == len(dpids)
    for sw in ring.switches.values():
        assert ring.switch_by_dpid(sw.dpid) is sw
    assert ring.switch_by_dpid(max(dpids) + 12345) is None


def test_bridge_names_are_unique_across_similar_indices():
    # site 1 spine 12 vs site 11 spine 2, host 12 of site 1 vs host 2 of site 11 ...
    sites = [site(f"s{i}", spines=12, leaves=12, hosts_per_leaf=1) for i in range(1, 13)]
    links = [link(f"l{i}", f"s{i}", f"s{i + 1}") for i in range(1, 12)]
    names = _linux_names(build(sites, links))
    assert len(set(names)) == len(names)


# --- DCI links: gateways and wavelengths -----------------------------------------------------

def _gateways_of(fabric, line_system):
    w = next(l for l in fabric.wavelengths() if l.line_system == line_system)
    return w.a.node, w.b.node


def test_round_robin_gateways_in_the_ring(ring):
    # Ends at each site counted in file order; n-th end -> gateway ((n-1) mod 2) + 1.
    # north: north-east-a (1), north-east-b (2), west-north (3)
    # east:  north-east-a (1), north-east-b (2), east-south (3)
    # south: east-south (1), south-west (2); west-campus: south-west (1), west-north (2)
    assert _gateways_of(ring, "north-east-a") == ("north-gw1", "east-gw1")
    assert _gateways_of(ring, "north-east-b") == ("north-gw2", "east-gw2")
    assert _gateways_of(ring, "east-south") == ("east-gw1", "south-gw1")
    assert _gateways_of(ring, "south-west") == ("south-gw2", "west-campus-gw1")
    assert _gateways_of(ring, "west-north") == ("west-campus-gw2", "north-gw1")


def test_ring_gateway_ports(ring):
    # north-gw1: spines 1-2, north-east-a's 4 wavelengths, then west-north's 4
    ports = ring.ports("north-gw1")
    assert [ports[p].name for p in range(3, 11)] == (
        [f"north-east-a.w{k}" for k in range(1, 5)] + [f"west-north.w{k}" for k in range(1, 5)])
    assert sorted(ring.ports("north-gw2")) == [1, 2, 3, 4]


def test_round_robin_wraps_around_three_gateways():
    fabric = build([site("hub", gateways=3), site("a"), site("b"), site("c"), site("d")],
                   [link("l1", "hub", "a"), link("l2", "b", "hub"), link("l3", "hub", "c"),
                    link("l4", "d", "hub")])
    assert _gateways_of(fabric, "l1")[0] == "hub-gw1"
    assert _gateways_of(fabric, "l2")[1] == "hub-gw2"
    assert _gateways_of(fabric, "l3")[0] == "hub-gw3"
    assert _gateways_of(fabric, "l4")[1] == "hub-gw1"


def test_pinned_gateways():
    fabric = build([site("a", gateways=3), site("b", gateways=2)],
                   [link("l1", "a", "b", a_gateway=3, b_gateway=2, wavelengths=2),
                    link("l2", "b", "a", b_gateway=3)])
    assert _gateways_of(fabric, "l1") == ("a-gw3", "b-gw2")
    assert _gateways_of(fabric, "l2")[1] == "a-gw3"
    # a-gw3 (1 spine): l1's two wavelengths then l2's
    assert [fabric.ports("a-gw3")[p].name for p in (2, 3, 4)] == ["l1.w1", "l1.w2", "l2.w1"]
    # a-gw1 and a-gw2 terminate no wavelength
    assert sorted(fabric.ports("a-gw1")) == [1]
    assert sorted(fabric.ports("a-gw2")) == [1]


def test_each_wavelength_is_its_own_dci_link_between_the_two_gateways(two_dc):
    waves = list(two_dc.wavelengths())
    assert [w.name for w in waves] == [f"dc1-dc2-a.w{k}" for k in range(1, 5)]
    for w in waves:
        assert w.kind == DCI
        assert w.line_system == "dc1-dc2-a"
        assert w.wavelength == w.name
        assert two_dc.switches[w.a.node].role == "gateway"
        assert two_dc.switches[w.b.node].role == "gateway"
        assert (two_dc.switches[w.a.node].site, two_dc.switches[w.b.node].site) == ("dc1", "dc2")
        assert (w.site_a, w.site_b) == ("dc1", "dc2")
        assert w.rate_gbps == 400           # 400ZR carries 400 Gb/s
        # at least the propagation delay of 80 km of fibre (~4.9 us/km)
        assert w.latency_ms >= 80 * 0.0048
    # distinct frequencies on distinct ports
    assert len({w.channel.frequency_thz for w in waves}) == 4
    assert len({w.a.port for w in waves}) == 4


def test_a_long_400zr_plus_link_falls_back_to_300g(ring):
    # west-north: 900 km in 12 spans of 75 km (16.5 dB each). Line OSNR
    # 58 - 16.5 - 5.5 - 10log10(12) = 25.2 dB, with the 34 dB transmitter 24.7 dB:
    # short of 400G's 24 + 2 dB margin, enough for 300G's 21 + 2 dB.
    rates = {w.rate_gbps for w in ring.wavelengths() if w.line_system == "west-north"}
    assert rates == {300}
    assert ring.line_systems["west-north"].capacity_gbps == 4 * 300
    # and the short 400ZR+ link runs at full rate
    assert {w.rate_gbps for w in ring.wavelengths() if w.line_system == "south-west"} == {400}


def test_800zr_link_rate(ring):
    assert {w.rate_gbps for w in ring.wavelengths() if w.line_system == "east-south"} == {800}


def test_mode_can_be_forced():
    fabric = build([site("a"), site("b")], [link("l", "a", "b", module="400ZR+", mode="200G")])
    assert {w.rate_gbps for w in fabric.wavelengths()} == {200}


def test_capacity_by_site_pair_adds_parallel_line_systems(ring):
    caps = ring.capacity_by_site_pair()
    # north-east-a 4 x 400 + north-east-b 2 x 400
    assert caps[("east", "north")] == 2400
    assert caps[("east", "south")] == 2 * 800
    assert ("north", "south") not in caps and ("east", "west-campus") not in caps


def test_module_overrides_change_power_and_cost():
    fabric = build([site("a"), site("b")], [link("l", "a", "b", wavelengths=4)],
                   modules={"400ZR": {"power_w": 15, "price_usd": 1000}})
    plan = fabric.line_systems["l"]
    # two modules per wavelength
    assert plan.power_w == pytest.approx(2 * 4 * 15)
    assert plan.cost_usd == pytest.approx(2 * 4 * 1000)


def test_every_assumed_figure_of_the_readme_can_be_overridden():
    # README: DSP/FEC latency, transmitter OSNR and a mode's figures (the 100G slot) are
    # assumptions a fabric file may replace with its vendor's.
    plain = build([site("a"), site("b")], [link("l", "a", "b", wavelengths=4)])
    fabric = build([site("a"), site("b")], [link("l", "a", "b", wavelengths=4)],
                   modules={"400ZR": {"dsp_latency_us": 12.0, "tx_osnr_db": 30.0,
                                      "modes": {"400G": {"required_osnr_db": 24.5}}}})
    before, after = plain.line_systems["l"], fabric.line_systems["l"]
    assert after.latency_ms == pytest.approx(before.latency_ms + (12.0 - 2.0) / 1e3)
    assert after.channels[0].gsnr_db < before.channels[0].gsnr_db - 0.5   # 30 dB beside 34
    assert after.channels[0].required_osnr_db == 24.5
    assert fabric.catalog.module("400ZR+").dsp_latency_us == 4.0          # others unchanged


def test_c_plus_l_band_fits_more_than_64_400zr_wavelengths():
    fabric = build([site("a"), site("b")],
                   [link("l", "a", "b", wavelengths=65, band="C+L")])
    assert sum(1 for _ in fabric.wavelengths()) == 65


# --- valid shapes not in the repository ------------------------------------------------------

def test_one_site_without_dci_links():
    fabric = build([site("solo", spines=2, leaves=2, hosts_per_leaf=3)])
    assert len(fabric.hosts) == 6
    assert list(fabric.wavelengths()) == []
    assert fabric.capacity_by_site_pair() == {}
    assert sorted(fabric.ports("solo-gw1")) == [1, 2]


def test_three_sites_in_a_line_with_transit():
    fabric = build([site("west"), site("mid", gateways=2), site("east")],
                   [link("w-m", "west", "mid", wavelengths=2), link("m-e", "mid", "east")])
    # mid's two link ends go round-robin to its two gateways
    assert _gateways_of(fabric, "w-m") == ("west-gw1", "mid-gw1")
    assert _gateways_of(fabric, "m-e") == ("mid-gw2", "east-gw1")
    assert fabric.capacity_by_site_pair() == {("mid", "west"): 800, ("east", "mid"): 400}
    assert fabric.hosts["east-h1"].ip == "10.3.1.1"


def test_the_smallest_site():
    fabric = build([site("a"), site("b")], [link("l", "a", "b")])
    assert sorted(sw for sw in fabric.switches if sw.startswith("a-")) == [
        "a-gw1", "a-leaf1", "a-spine1"]
    assert peer(fabric, "a-leaf1", 1) == "a-h1"
    assert peer(fabric, "a-leaf1", 2) == "a-spine1"
    assert peer(fabric, "a-spine1", 1) == "a-leaf1"
    assert peer(fabric, "a-spine1", 2) == "a-gw1"
    assert peer(fabric, "a-gw1", 1) == "a-spine1"
    assert peer(fabric, "a-gw1", 2) == "b-gw1"
    assert fabric.ports("a-gw1")[2].name == "l.w1"
