"""compile_fabric: where packets go on the simulated flow tables of a whole fabric.

Each test traces packets through a FakeFabric built from the compiled messages, so it
asks where a packet would go, never what the flow text says. The latency-shortest line
systems for each pair of sites are worked out by hand from the fibre km in the files.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from fabric_helpers import arp_packet, dci_links_of_path, fake_fabric, tcp_packet, topology
from fakeoftable import FakeOFTable, Outcome
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from dcilab.core.rules import (
    PIN_GROUP_BASE,
    SPREAD_HOLD_S,
    Programs,
    compile_fabric,
    host_arp_rule,
    spread_tiers,
)
from dcilab.fabric import parse_fabric
from dcilab.te.paths import PathEngine

# Line systems crossed, in order, from the first site to the second (reverse for back).
TWO_DC_ROUTES = {("dc1", "dc2"): ["dc1-dc2-a"]}
RING_ROUTES = {
    # north-east-a 45 km < north-east-b 70 km
    ("north", "east"): ["north-east-a"],
    # via east 45+110 = 155 km < via west 900+260 = 1160 km
    ("north", "south"): ["north-east-a", "east-south"],
    # via east, south 45+110+260 = 415 km < direct 900 km
    ("north", "west-campus"): ["north-east-a", "east-south", "south-west"],
    # direct 110 km < 45+900+260 km
    ("east", "south"): ["east-south"],
    # via south 110+260 = 370 km < via north 45+900 = 945 km
    ("east", "west-campus"): ["east-south", "south-west"],
    # direct 260 km < 110+45+900 = 1055 km
    ("south", "west-campus"): ["south-west"],
}
# Wavelengths per line system, from the files.
WAVELENGTHS = {"dc1-dc2-a": 4, "north-east-a": 4, "north-east-b": 2, "east-south": 2,
               "south-west": 4, "west-north": 4}

THREE_SITES = """
name: line3
sites:
  - {name: west, spines: 2, leaves: 2, hosts_per_leaf: 1, gateways: 1}
  - {name: mid, spines: 2, leaves: 1, hosts_per_leaf: 2, gateways: 2}
  - {name: east, spines: 2, leaves: 1, hosts_per_leaf: 2, gateways: 1}
dci_links:
  - {name: west-mid, a: west, b: mid, fiber_km: 40, module: 400ZR, wavelengths: 2}
  - {name: mid-east, a: mid, b: east, fiber_km: 60, module: 400ZR, wavelengths: 3}
"""
THREE_SITE_ROUTES = {("west", "mid"): ["west-mid"], ("mid", "east"): ["mid-east"],
                     ("west", "east"): ["west-mid", "mid-east"]}
THREE_SITE_WAVELENGTHS = {"west-mid": 2, "mid-east": 3}


def route(routes, src_site, dst_site):
    if src_site == dst_site:
        return []
    if (src_site, dst_site) in routes:
        return routes[(src_site, dst_site)]
    return list(reversed(routes[(dst_site, src_site)]))


CASES = {
    "two-dc": (lambda: topology("two-dc"), TWO_DC_ROUTES, WAVELENGTHS),
    "four-dc-ring": (lambda: topology("four-dc-ring"), RING_ROUTES, WAVELENGTHS),
    "line3": (lambda: parse_fabric(THREE_SITES), THREE_SITE_ROUTES, THREE_SITE_WAVELENGTHS),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    load, routes, wavelengths = CASES[request.param]
    fabric = load()
    programs = compile_fabric(fabric)
    return fabric, programs, fake_fabric(fabric, programs), routes, wavelengths


def test_every_switch_gets_a_program(case):
    fabric, programs, *_ = case
    assert set(programs) == set(fabric.switches)


def test_every_host_reaches_every_host_by_the_shortest_line_systems(case):
    fabric, _programs, net, routes, wavelengths = case
    hosts = list(fabric.hosts.values())
    assert len(hosts) >= 2
    for src in hosts:
        src_leaf = fabric.switches[src.leaf]
        for dst in hosts:
            if dst is src:
                continue
            dst_leaf = fabric.switches[dst.leaf]
            packet = tcp_packet(src, dst)
            paths = net.trace(src_leaf.dpid, src.port, packet)
            assert paths, f"{src.name}->{dst.name}: no path"
            expected = route(routes, src.site, dst.site)
            # Wavelengths used at each DCI stage over all the alternatives.
            stages = defaultdict(set)
            for path in paths:
                where = f"{src.name}->{dst.name} via {path.hops}"
                assert path.outcome is Outcome.EGRESS, f"{where}: {path.outcome}"
                assert path.end == (dst_leaf.dpid, dst.port), where
                assert path.packet["ipv4_dst"] == dst.ip
                crossed = dci_links_of_path(fabric, path.hops)
                assert [link.line_system for link in crossed] == expected, where
                for k, link in enumerate(crossed):
                    stages[k].add(link.name)
            for k, system in enumerate(expected):
                assert stages[k] == {f"{system}.w{n}" for n in range(1, wavelengths[system] + 1)}, (
                    f"{src.name}->{dst.name}: stage {k} on {system}")


def test_dci_alternatives_are_select_group_choices(case):
    fabric, _programs, net, routes, wavelengths = case
    # The first host of the first site to the first host of the last site.
    sites = [s.name for s in fabric.sites]
    src = fabric.hosts_of(sites[0])[0]
    dst = fabric.hosts_of(sites[-1])[0]
    paths = net.trace(fabric.switches[src.leaf].dpid, src.port, tcp_packet(src, dst))
    expected = route(routes, src.site, dst.site)
    # Every path is one alternative (choices recorded), and they are all distinct.
    assert all(p.choices for p in paths)
    assert len({p.choices for p in paths}) == len(paths)
    # The source gateway's select group offers every wavelength of the first line system.
    first = expected[0]
    gw_dpids = {fabric.switches[link.a.node].dpid for link in fabric.links
                if link.line_system == first and link.site_a == src.site} | {
        fabric.switches[link.b.node].dpid for link in fabric.links
        if link.line_system == first and link.site_b == src.site}
    gw_choices = {(d, g, b) for p in paths for (d, g, b) in p.choices if d in gw_dpids}
    assert len(gw_choices) == wavelengths[first]


def test_both_spines_are_used_leaving_the_source_leaf(case):
    fabric, _programs, net, _routes, _w = case
    site = fabric.sites[0]
    src = fabric.hosts_of(site.name)[0]
    dst = fabric.hosts_of(fabric.sites[-1].name)[-1]
    paths = net.trace(fabric.switches[src.leaf].dpid, src.port, tcp_packet(src, dst))
    # A leaf's spine ports are hosts_per_leaf + 1 .. hosts_per_leaf + spines.
    first_out = {p.hops[0].out_port for p in paths}
    assert first_out == set(range(site.hosts_per_leaf + 1, site.hosts_per_leaf + site.spines + 1))


def test_arp_for_a_fabric_host_is_answered_by_the_leaf_itself(case):
    """Hosts resolve their peers with no controller connected (a restart): the leaf turns
    the request into the reply, back out of the port it came in."""
    fabric, _programs, net, *_ = case
    hosts = list(fabric.hosts.values())
    for src in hosts:
        for dst in (hosts[0] if src is not hosts[0] else hosts[1], hosts[-1]):
            request = arp_packet(src.port, src.ip, dst.ip) | {
                "eth_src": src.mac, "eth_dst": "ff:ff:ff:ff:ff:ff", "arp_sha": src.mac,
                "arp_tha": "00:00:00:00:00:00"}
            [path] = net.trace(fabric.switches[src.leaf].dpid, src.port, request)
            assert path.outcome is Outcome.EGRESS, (src.name, dst.name, path)
            assert path.end == (fabric.switches[src.leaf].dpid, src.port)
            reply = path.packet
            assert (reply["arp_op"], reply["eth_src"], reply["eth_dst"]) == (2, dst.mac, src.mac)
            assert (reply["arp_sha"], reply["arp_spa"]) == (dst.mac, dst.ip)
            assert (reply["arp_tha"], reply["arp_tpa"]) == (src.mac, src.ip)


def test_arp_from_a_host_port_for_another_address_goes_to_the_controller(case):
    fabric, _programs, net, *_ = case
    for src in fabric.hosts.values():
        paths = net.trace(fabric.switches[src.leaf].dpid, src.port,
                          arp_packet(src.port, src.ip, "192.0.2.1") | {"arp_sha": src.mac})
        assert [p.outcome for p in paths] == [Outcome.CONTROLLER], src.name
        assert paths[0].end == (fabric.switches[src.leaf].dpid, ofp.OFPP_CONTROLLER)


def test_arp_from_a_host_port_by_another_host_is_answered_and_copied_to_the_controller(case):
    """Swapped host cables (or a host with another MAC or address) got no traffic and left
    nothing in the log: the leaf still answers, and the controller hears who asked."""
    fabric, _programs, net, *_ = case
    hosts = list(fabric.hosts.values())
    for src, other in zip(hosts, hosts[1:] + hosts[:1]):
        dpid = fabric.switches[src.leaf].dpid
        for sha, spa in ((other.mac, other.ip), ("02:00:00:00:00:99", src.ip),
                         (src.mac, "10.250.0.1")):
            request = arp_packet(src.port, spa, other.ip) | {
                "eth_src": sha, "eth_dst": "ff:ff:ff:ff:ff:ff", "arp_sha": sha,
                "arp_tha": "00:00:00:00:00:00"}
            paths = net.trace(dpid, src.port, request)
            assert sorted(p.outcome.value for p in paths) == sorted(
                [Outcome.CONTROLLER.value, Outcome.EGRESS.value]), (src.name, sha, spa)
        own = arp_packet(src.port, src.ip, other.ip) | {"eth_src": src.mac, "arp_sha": src.mac}
        assert [p.outcome for p in net.trace(dpid, src.port, own)] == [Outcome.EGRESS]


def test_while_listening_the_files_own_host_is_answered_and_copied_then_only_answered(case):
    """While another host has been heard on a port, the file's host's ARP there is copied
    too (the controller then knows the port is put right); afterwards, answered only."""
    fabric, programs, *_ = case
    net = fake_fabric(fabric, programs)                 # its own: the tables change here
    hosts = list(fabric.hosts.values())
    for src, other in zip(hosts, hosts[1:] + hosts[:1]):
        dpid = fabric.switches[src.leaf].dpid
        own = arp_packet(src.port, src.ip, other.ip) | {"eth_src": src.mac, "arp_sha": src.mac}
        for listen, outcomes in ((True, [Outcome.CONTROLLER, Outcome.EGRESS]),
                                 (False, [Outcome.EGRESS])):
            net.tables[dpid].apply([host_arp_rule(src, listen)])
            assert sorted(p.outcome.value for p in net.trace(dpid, src.port, own)) == sorted(
                o.value for o in outcomes), (src.name, listen)
    assert all(net.tables[sw.dpid].flow_count() == fake_fabric(fabric, programs)
               .tables[sw.dpid].flow_count() for sw in fabric.switches.values())


def test_arp_from_a_spine_port_is_not_sent_to_the_controller(case):
    fabric, programs, net, *_ = case
    for sw in fabric.switches.values():
        for port, link in fabric.ports(sw.name).items():
            if link.kind == "host":
                continue
            pkt = arp_packet(port, "10.1.1.1", "10.1.1.2")
            for path in net.trace(sw.dpid, port, pkt):
                assert path.outcome is not Outcome.CONTROLLER, (sw.name, port)
                assert path.outcome is Outcome.DROP, (sw.name, port, path)


def test_unknown_destination_is_dropped(case):
    fabric, _programs, net, *_ = case
    src = next(iter(fabric.hosts.values()))
    pkt = tcp_packet(src, src) | {"ipv4_dst": "10.200.1.1"}
    paths = net.trace(fabric.switches[src.leaf].dpid, src.port, pkt)
    assert [p.outcome for p in paths] == [Outcome.DROP]
    # And non-IP, non-ARP traffic is dropped too.
    paths = net.trace(fabric.switches[src.leaf].dpid, src.port,
                      {"in_port": src.port, "eth_type": 0x86DD})
    assert [p.outcome for p in paths] == [Outcome.DROP]


def test_reapplying_the_program_leaves_the_tables_unchanged(case):
    fabric, programs, *_ = case
    for name, msgs in programs.items():
        table = FakeOFTable()
        table.apply(msgs)
        once = table.table_state()
        assert once.flows, name
        table.apply(msgs)
        assert table.table_state() == once, name


def test_reprogramming_clears_stale_state(case):
    fabric, programs, *_ = case
    name = next(iter(programs))
    fresh = FakeOFTable()
    fresh.apply(programs[name])
    stale = FakeOFTable()
    stale.apply([
        parser.OFPGroupMod(None, command=ofp.OFPGC_ADD, type_=ofp.OFPGT_ALL, group_id=77,
                           buckets=[parser.OFPBucket(actions=[parser.OFPActionOutput(1)])]),
        parser.OFPFlowMod(None, table_id=3, priority=5, match=parser.OFPMatch(in_port=9),
                          instructions=[parser.OFPInstructionActions(
                              ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(2)])]),
    ])
    stale.apply(programs[name])
    assert stale.table_state() == fresh.table_state()


def test_middle_site_is_transit():
    fabric = parse_fabric(THREE_SITES)
    net = fake_fabric(fabric, compile_fabric(fabric))
    mid_dpids = {sw.dpid for sw in fabric.switches.values() if sw.site == "mid"}
    mid_leaves = {sw.dpid for sw in fabric.switches.values() if sw.site == "mid" and sw.role == "leaf"}
    for src in fabric.hosts_of("west"):
        for dst in fabric.hosts_of("east"):
            paths = net.trace(fabric.switches[src.leaf].dpid, src.port, tcp_packet(src, dst))
            # 2 west spines x 2 (west-mid) x 2 mid spines x 3 (mid-east) x 2 east spines
            assert len(paths) == 48
            for path in paths:
                assert path.outcome is Outcome.EGRESS
                through = set(path.dpids) & mid_dpids
                # west-mid lands on mid-gw1, mid-east leaves from mid-gw2: a spine in between.
                assert {fabric.switch_by_dpid(d).role for d in through} == {"gateway", "spine"}
                assert len(through) == 3
                assert not through & mid_leaves


# -- the hashed spread beside reservations (weights; the controller's side is in
# test_core_reservations) -------------------------------------------------------------------


@pytest.mark.parametrize("booked, tiers", [
    ({}, [((3, 4, 5, 6), (1, 1, 1, 1))]),              # nothing booked: as without reservations
    ({4: 1}, [((3, 5, 6), (1, 1, 1)), ((4,), (15,))]),  # a sixteenth or all: kept off alike
    ({3: 16, 5: 2}, [((4, 6), (1, 1)), ((3, 5), (1, 14))]),
    ({3: 4, 4: 8, 5: 12, 6: 15}, [((3, 4, 5, 6), (12, 8, 4, 1))]),  # all booked: what is left
    ({3: 16, 4: 16, 5: 16, 6: 16}, [((3, 4, 5, 6), (1, 1, 1, 1))]),  # never a weight of 0
    ({9: 5}, [((3, 4, 5, 6), (1, 1, 1, 1))]),          # another port's booking: none of these
])
def test_spread_tiers(booked, tiers):
    assert spread_tiers(booked, (3, 4, 5, 6)) == tiers


def _hashed_tiers(programs: Programs, gateway: str, ip: str) -> list[tuple[tuple, tuple]]:
    """The route to `ip` at the gateway as its hashed tiers, (ports, weights) each, in the
    order its fast-failover group tries them (detours left out)."""
    routing = programs.current(gateway)
    [(kind, gid)] = routing.routes[ip]
    assert kind == "group"
    gtype, buckets = routing.groups[gid]
    if gtype == ofp.OFPGT_SELECT:
        buckets = ((None, gid, 0, (("group", gid),)),)
    tiers = []
    for _watch_port, watch_group, _w, acts in buckets:
        if acts[0][0] == "vlan":
            continue                                  # a detour
        if watch_group is None:
            tiers.append(((acts[0][1],), (None,)))           # one port: no select group
            continue
        _, select = routing.groups[watch_group]
        tiers.append((tuple(a[0][1] for *_, a in select), tuple(b[2] for b in select)))
    return tiers


def test_bookings_reweigh_only_the_sending_gateway_and_only_by_a_sixteenth():
    fabric = topology("two-dc")
    engine = PathEngine(fabric)
    programs = Programs(fabric, engine)
    far, near = fabric.hosts["dc2-h1"].ip, fabric.hosts["dc1-h1"].ip
    before = {name: programs.current(name) for name in fabric.switches}
    assert _hashed_tiers(programs, "dc1-gw1", far) == [((3, 4, 5, 6), (1, 1, 1, 1))]
    w1 = "dc1-dc2-a.w1"                                # port 3 at both gateways
    assert programs.book({(w1, "dc1-gw1"): 10e9}, now=0.0) is True
    after = {name: programs.current(name) for name in fabric.switches}
    assert [n for n in fabric.switches if after[n] is not before[n]] == ["dc1-gw1"]
    assert _hashed_tiers(programs, "dc1-gw1", far) == [((4, 5, 6), (1, 1, 1)), ((3,), (None,))]
    assert _hashed_tiers(programs, "dc2-gw1", near) == [((3, 4, 5, 6), (1, 1, 1, 1))]
    # Within the same sixteenth (25 Gb/s of 400): nothing to send.
    assert programs.book({(w1, "dc1-gw1"): 20e9}, now=0.0) is False
    assert programs.current("dc1-gw1") is after["dc1-gw1"]
    # Every wavelength booked: by what is left; a slower mode leaves less of its own.
    booked = {(f"dc1-dc2-a.w{n}", "dc1-gw1"): 100e9 for n in range(1, 5)}
    assert programs.book(booked, now=0.0) is True
    assert _hashed_tiers(programs, "dc1-gw1", far) == [((3, 4, 5, 6), (12, 12, 12, 12))]
    engine.set_rate(w1, 200.0)
    assert programs.book(booked, now=0.0) is True
    assert _hashed_tiers(programs, "dc1-gw1", far) == [((3, 4, 5, 6), (8, 12, 12, 12))]
    # All released: each keeps its weight for SPREAD_HOLD_S, then all are unbooked.
    assert programs.book({}, now=1.0) is False
    assert _hashed_tiers(programs, "dc1-gw1", far) == [((3, 4, 5, 6), (8, 12, 12, 12))]
    assert programs.book({}, now=1.0 + SPREAD_HOLD_S - 0.1) is False
    assert programs.book({}, now=1.0 + SPREAD_HOLD_S) is True
    assert _hashed_tiers(programs, "dc1-gw1", far) == [((3, 4, 5, 6), (1, 1, 1, 1))]


@pytest.mark.parametrize("others", [{}, {2: 100e9, 3: 100e9, 4: 100e9}])
def test_a_reservation_that_comes_and_goes_re_hashes_best_effort_once(others):
    """A change of tier, or of weight, re-hashes the line system's best-effort flows: a
    150 Gb/s reservation made and released every second on w1, the others unbooked or
    all booked (then w1's weight, not its tier, would change: a reviewer's)."""
    fabric = topology("two-dc")
    programs = Programs(fabric, PathEngine(fabric))
    far = fabric.hosts["dc2-h1"].ip
    rest = {(f"dc1-dc2-a.w{n}", "dc1-gw1"): bps for n, bps in others.items()}
    w1 = {("dc1-dc2-a.w1", "dc1-gw1"): 150e9} | rest
    changes = [programs.book(w1 if int(t) % 2 == 0 else rest, now=t)
               for t in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)]
    assert changes == [True, False, False, False, False, False]
    held = _hashed_tiers(programs, "dc1-gw1", far)
    assert held == ([((4, 5, 6), (1, 1, 1)), ((3,), (None,))] if not others
                    else [((3, 4, 5, 6), (10, 12, 12, 12))])
    assert programs.book(rest, now=5.0 + SPREAD_HOLD_S - 0.1) is False
    assert programs.book(rest, now=5.0 + SPREAD_HOLD_S) is True
    assert _hashed_tiers(programs, "dc1-gw1", far) == (
        [((3, 4, 5, 6), (1, 1, 1, 1))] if not others
        else [((3,), (None,)), ((4, 5, 6), (12, 12, 12))])


def test_held_down_wavelengths_come_last_in_failover():
    """A wavelength back from a failure is in hold-down: routes use it only where nothing
    else goes, and so must failover, however little it has booked (a reviewer's: w2 held
    and unbooked was a detour's and a pin's first choice once w1 was booked)."""
    fabric = topology("four-dc-ring")
    engine = PathEngine(fabric)
    programs = Programs(fabric, engine)
    engine.set_held("north-east-a.w2", True)
    assert programs.book({("north-east-a.w1", "north-gw1"): 50e9}, now=0.0) is True
    assert programs.current("north-gw1").detours[3] == (("out", 5),)       # w3, not w2
    pin_w3 = programs.current("north-gw1").groups[PIN_GROUP_BASE + 5][1]
    assert [b[0] for b in pin_w3[:4]] == [5, 6, 3, 4]                      # w2 last


def test_without_protection_bookings_keep_hashed_flows_on_the_unbooked_only():
    """No fast-failover without protection: the route is the first tier's group alone;
    the controller re-routes when those wavelengths die."""
    fabric = topology("two-dc")
    programs = Programs(fabric, PathEngine(fabric), protect=False)
    far = fabric.hosts["dc2-h1"].ip
    assert programs.book({("dc1-dc2-a.w1", "dc1-gw1"): 10e9}, now=0.0) is True
    routing = programs.current("dc1-gw1")
    [(kind, gid)] = routing.routes[far]
    gtype, buckets = routing.groups[gid]
    assert (kind, gtype) == ("group", ofp.OFPGT_SELECT)
    assert [(b[0], b[3]) for b in buckets] == [(None, (("out", p),)) for p in (4, 5, 6)]


def test_what_fails_over_in_the_switch_takes_the_least_booked_wavelength_first():
    """Detours and pins fail over onto one wavelength of a line system, chosen by port:
    w1, where admission puts the first reservation (an emulation tester saw a detour fill
    a reserved w1 and lose reserved packets). With w1 booked, they take another."""
    fabric = topology("four-dc-ring")
    programs = Programs(fabric, PathEngine(fabric))
    # VLAN 3 detours north-east-b from north-gw2 through north-gw1, then north-east-a
    # (ports 3-6 of north-gw1 are its w1-w4), on w1 while nothing is booked.
    assert programs.current("north-gw1").detours[3] == (("out", 3),)
    pin_w3 = programs.current("north-gw1").groups[PIN_GROUP_BASE + 5][1]
    assert [b[0] for b in pin_w3[:4]] == [5, 3, 4, 6]
    assert programs.book({("north-east-a.w1", "north-gw1"): 50e9,
                          ("north-east-a.w2", "north-gw1"): 200e9}, now=0.0) is True
    assert programs.current("north-gw1").detours[3] == (("out", 5),)
    pin_w3 = programs.current("north-gw1").groups[PIN_GROUP_BASE + 5][1]
    assert [b[0] for b in pin_w3[:4]] == [5, 6, 3, 4]     # unbooked, then least booked
    # The other way (east-gw1's ends of the same wavelengths) books nothing: unchanged.
    assert [b[0] for b in programs.current("east-gw1").groups[PIN_GROUP_BASE + 5][1][:4]] \
        == [5, 3, 4, 6]
