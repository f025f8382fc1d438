"""Protection in the data plane: with the programs installed before a failure and no
controller reaction, where do packets go once ports are dead? Then restoration by the
controller, hold-down and DEGRADED reservations. Traced on the simulated flow tables,
which skip buckets whose watched port is dead, as OVS does."""

from __future__ import annotations

import pytest
from controller_lab import ControllerLab
from fabric_helpers import dci_links_of_path, fake_fabric, tcp_packet, topology
from fakeoftable import Outcome
from os_ken.ofproto import ofproto_v1_3 as ofp

from dcilab.app.service import ControllerService
from dcilab.core.controller import STARTUP_GRACE_S, FabricController
from dcilab.core.damping import HOLD_DOWN_S
from dcilab.core.rules import compile_fabric
from dcilab.fabric import parse_fabric
from dcilab.te.paths import PathEngine
from dcilab.te.protection import SharedRisk, detours
from dcilab.te.reservations import Protection, ReservationRequest, State

TRIANGLE = """
name: tri
sites:
  - {name: a, spines: 2, leaves: 1, hosts_per_leaf: 2, gateways: 2}
  - {name: b, spines: 2, leaves: 1, hosts_per_leaf: 2, gateways: 2}
  - {name: c, spines: 2, leaves: 1, hosts_per_leaf: 2, gateways: 2}
dci_links:
  - {name: a-b, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 3}
  - {name: b-c, a: b, b: c, fiber_km: 60, module: 400ZR, wavelengths: 2}
  - {name: a-c, a: a, b: c, fiber_km: 50, module: 400ZR, wavelengths: 2}
"""
# a-b and a-c leave site a in one duct; a-d-b is the only path around a-b sharing none.
SHARED_DUCT = """
name: duct
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 1}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 1}
  - {name: c, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 1}
  - {name: d, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 1}
dci_links:
  - {name: a-b, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 2, srlg: [duct1]}
  - {name: a-c, a: a, b: c, fiber_km: 10, module: 400ZR, wavelengths: 1, srlg: [duct1]}
  - {name: c-b, a: c, b: b, fiber_km: 10, module: 400ZR, wavelengths: 1}
  - {name: a-d, a: a, b: d, fiber_km: 60, module: 400ZR, wavelengths: 1}
  - {name: d-b, a: d, b: b, fiber_km: 60, module: 400ZR, wavelengths: 1}
"""


def cut(fabric, net, *links):
    """Both ends of each link lose carrier (what the switches' groups see)."""
    for link in links:
        for end in (link.a, link.b):
            net.down_ports.add((fabric.switches[end.node].dpid, end.port))


def wavelengths_of(fabric, line_system):
    return [l for l in fabric.wavelengths() if l.line_system == line_system]


def outcomes(fabric, net):
    """Every way each cross-site pair of hosts (one per leaf) can go: {(src, dst): [Path]}."""
    out = {}
    hosts = list({h.leaf: h for h in reversed(list(fabric.hosts.values()))}.values())
    for src in hosts:
        for dst in hosts:
            if src.site != dst.site:
                out[(src.name, dst.name)] = net.trace(fabric.switches[src.leaf].dpid, src.port,
                                                      tcp_packet(src, dst))
    return out


def assert_all_delivered(fabric, net, avoiding=()):
    dead = {l.name for l in avoiding}
    for (src, dst), paths in outcomes(fabric, net).items():
        assert paths, (src, dst)
        host = fabric.hosts[dst]
        for path in paths:
            assert path.outcome is Outcome.EGRESS, (src, dst, path.outcome, path.end)
            assert path.end == (fabric.switches[host.leaf].dpid, host.port)
            assert "vlan_vid" not in path.packet, (src, dst)      # untagged at the end
            assert not dead & {l.name for l in dci_links_of_path(fabric, path.hops)}


@pytest.mark.parametrize("name", ["tri", "four-dc-ring"])
def test_every_select_bucket_watches_its_port(name):
    fabric = parse_fabric(TRIANGLE) if name == "tri" else topology(name)
    for switch, msgs in compile_fabric(fabric).items():
        for msg in msgs:
            if getattr(msg, "type", None) == ofp.OFPGT_SELECT and hasattr(msg, "buckets"):
                for bucket in msg.buckets:
                    (action,) = bucket.actions
                    assert bucket.watch_port == action.port, switch


@pytest.mark.parametrize("name", ["tri", "four-dc-ring"])
def test_one_dead_wavelength_leaves_the_hash_with_no_controller(name):
    fabric = parse_fabric(TRIANGLE) if name == "tri" else topology(name)
    programs = compile_fabric(fabric)
    for line_system in fabric.line_systems:
        link = wavelengths_of(fabric, line_system)[0]
        net = fake_fabric(fabric, programs)
        cut(fabric, net, link)
        assert_all_delivered(fabric, net, avoiding=[link])


@pytest.mark.parametrize("name", ["tri", "four-dc-ring"])
def test_a_whole_line_system_cut_takes_its_detour_with_no_controller(name):
    fabric = parse_fabric(TRIANGLE) if name == "tri" else topology(name)
    programs = compile_fabric(fabric)
    for line_system in fabric.line_systems:
        net = fake_fabric(fabric, programs)
        dead = wavelengths_of(fabric, line_system)
        cut(fabric, net, *dead)
        assert_all_delivered(fabric, net, avoiding=dead)


def test_a_pinned_flows_group_tries_its_fibres_other_wavelengths_before_the_detour():
    """A code reviewer: one wavelength lost (its transceiver dark) sent pinned elephants and
    reservations onto a detour through another site while a sibling on the same fibre was
    up. On a cut the siblings are dead too, and the detour is next."""
    from dcilab.core.rules import PIN_GROUP_BASE
    fabric = parse_fabric(TRIANGLE)
    gateway = "a-gw1"
    ports = {l.a.port if l.a.node == gateway else l.b.port: l for l in fabric.wavelengths()
             if gateway in (l.a.node, l.b.node)}
    groups = {m.group_id: m for m in compile_fabric(fabric)[gateway]
              if getattr(m, "type", None) == ofp.OFPGT_FF}
    for port, link in ports.items():
        buckets = groups[PIN_GROUP_BASE + port].buckets
        watched = [b.watch_port for b in buckets]
        siblings = sorted(p for p, l in ports.items()
                          if l.line_system == link.line_system and p != port)
        assert watched[:1 + len(siblings)] == [port, *siblings]
        detour = buckets[1 + len(siblings):]
        assert detour, "a-gw1's line systems have a detour through the third site"
        for bucket in detour:          # tagged for the detour, out of another line system
            assert any(a.cls_action_type == ofp.OFPAT_PUSH_VLAN for a in bucket.actions)
            assert ports.get(bucket.watch_port) is None or \
                ports[bucket.watch_port].line_system != link.line_system


def test_without_another_line_system_a_cut_is_a_blackhole_until_restored():
    fabric = topology("two-dc")
    net = fake_fabric(fabric, compile_fabric(fabric))
    cut(fabric, net, *wavelengths_of(fabric, "dc1-dc2-a"))
    paths = outcomes(fabric, net)[("dc1-h1", "dc2-h1")]
    assert {p.outcome for p in paths} == {Outcome.DROP}     # the gateway has nowhere to send


def test_detours_avoid_shared_risk_where_they_can():
    fabric = parse_fabric(SHARED_DUCT)
    found = {(d.line_system, d.gateway): d for d in detours(fabric, PathEngine(fabric))}
    around_ab = found[("a-b", "a-gw1")]
    crossed = {h.link.line_system for h in around_ab.hops if h.link.line_system}
    assert crossed == {"a-d", "d-b"} and around_ab.disjoint     # not a-c: same duct
    # a-c shares duct1 with a-b, and site a has no other way out but a-d: still one
    # detour (a-d), which shares nothing with a-c itself.
    assert found[("a-c", "a-gw1")].disjoint
    net = fake_fabric(fabric, compile_fabric(fabric))
    dead = wavelengths_of(fabric, "a-b") + wavelengths_of(fabric, "a-c")    # the duct is cut
    cut(fabric, net, *dead)
    assert_all_delivered(fabric, net, avoiding=dead)


# Two gateways a side, parallel line systems on the same gateways, ducts shared across
# them, and a third site to go round.
PARALLEL = """
name: parallel
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 2}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 2}
  - {name: c, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 2}
dci_links:
  - {name: ab1, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 2, srlg: [duct1]}
  - {name: ab2, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 1}
  - {name: ab3, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 1, srlg: [duct1]}
  - {name: ab4, a: a, b: b, fiber_km: 45, module: 400ZR, wavelengths: 1, srlg: [duct2]}
  - {name: ab5, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 1, srlg: [duct2]}
  - {name: ac, a: a, b: c, fiber_km: 30, module: 400ZR, wavelengths: 1}
  - {name: cb, a: c, b: b, fiber_km: 30, module: 400ZR, wavelengths: 1, srlg: [duct1]}
"""


def test_detours_beside_parallel_line_systems_are_those_of_a_full_search():
    """A line system beside a parallel one finds its detour on the cached shortest paths:
    the very hops a search of the graph without the line system (and its risk group)
    finds, with every link up and with a wavelength or a line system down."""
    fabric = parse_fabric(PARALLEL)

    def both(*down):
        quick, full = PathEngine(fabric), PathEngine(fabric)
        full._shortest_without = lambda *args: None          # always the full search
        for engine in (quick, full):
            for name in down:
                engine.set_link(name, False)
        return detours(fabric, quick), detours(fabric, full)
    for down in ((), ("ab2.w1",), [w.name for w in wavelengths_of(fabric, "ab5")]):
        quick, full = both(*down)
        assert quick == full and len(quick) == 14
    found = {(d.line_system, d.gateway): d for d in detours(fabric, PathEngine(fabric))}
    assert {h.link.line_system for h in found[("ab1", "a-gw1")].hops} <= {"ab2", "ab4", "ab5"}


def test_shared_risk_is_every_line_system_sharing_a_group():
    fabric = parse_fabric(PARALLEL)
    groups = {d.name: set(d.srlg) for d in fabric.spec.dci_links}
    pairwise = {a: {b for b in groups if b == a or groups[a] & groups[b]} for a in groups}
    risk = SharedRisk(fabric)
    assert {ls: risk[ls] for ls in groups} == pairwise
    assert risk["ab1"] == {"ab1", "ab3", "cb"}
    # what a path clear of ab1's risks must not use: their wavelengths, and only those
    avoid = risk.avoiding(["ab1"])
    dci = [link for link in fabric.links if link.kind == "dci"]
    assert {link.name for link in dci if link.name in avoid} == {
        link.name for link in dci if link.line_system in pairwise["ab1"]}
    assert not any(link.name in avoid for link in fabric.links if link.kind != "dci")


def test_check_names_srlg_errors():
    with pytest.raises(Exception) as info:
        parse_fabric(SHARED_DUCT.replace("srlg: [duct1]}", "srlg: [bad name]}", 1))
    assert "srlg" in str(info.value)


# --- restoration by the controller ----------------------------------------------------------


@pytest.fixture
def ring_lab():
    return ControllerLab(topology("four-dc-ring")).bring_up_all()


def report_cut(lab, *links, now=0.0):
    """Both ends of each link report carrier loss; returns every fault event seen."""
    faults = []
    for link in links:
        for end in (link.a, link.b):
            lab.net.down_ports.add((lab.dpid(end.node), end.port))
            faults += lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False,
                                                    now)).faults
    return faults


def cut_and_tick(lab, *links, now=0.0):
    """A cut, then the next tick: what the controller has restored by then."""
    report_cut(lab, *links, now=now)
    return lab.send(lab.ctl.tick(now + 0.1))


def report_up(lab, *links, now=0.0):
    for link in links:
        for end in (link.a, link.b):
            lab.net.down_ports.discard((lab.dpid(end.node), end.port))
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, True, now))


def test_after_a_cut_the_controller_routes_on_what_survives_untagged(ring_lab):
    lab = ring_lab
    dead = wavelengths_of(lab.fabric, "north-east-a")
    faults = report_cut(lab, *dead)
    assert faults == [("link_down", l.wavelength) for l in dead]
    lab.send(lab.ctl.tick(0.1))
    assert_all_delivered(lab.fabric, lab.net, avoiding=dead)
    # Restored: nothing takes a detour any more (no packet is tagged on its way).
    for paths in outcomes(lab.fabric, lab.net).values():
        for path in paths:
            assert all(hop.out_port for hop in path.hops)
    north, east = lab.fabric.hosts["north-h1"], lab.fabric.hosts["east-h1"]
    (via,) = {tuple(l.line_system for l in dci_links_of_path(lab.fabric, p.hops))
              for p in lab.net.trace(lab.dpid(north.leaf), north.port, tcp_packet(north, east))}
    assert via == ("north-east-b",)


def test_a_link_never_up_since_start_is_not_a_failure_and_has_no_hold_down():
    """BFD sessions still coming up when a gateway lists its ports (or a fibre cut before
    the controller started): those wavelengths are not up, but no failure this controller
    saw; the first time they come up they are used at once (and, past the start-up, their
    coming up is a link's return to use: what their being down left DEGRADED is restored).
    One seen up and lost is a failure."""
    fabric = topology("four-dc-ring")
    lab = ControllerLab(fabric)
    late, other = wavelengths_of(fabric, "north-east-a")[:2]
    faults = []
    for name in fabric.switches:
        dpid = lab.dpid(name)
        lab.ctl.switch_connected(dpid)
        dark = frozenset(end.port for link in (late, other) for end in (link.a, link.b)
                         if end.node == name)
        faults += lab.send(lab.ctl.ports_described(dpid, lab.ports(name), dark, 0.0)).faults
    lab.ack_all()
    assert lab.ctl.ready and faults == []
    assert not lab.ctl.engine.link_up(late.name)
    lit = []                                              # past the start-up grace
    for end in (late.a, late.b):
        lab.net.down_ports.discard((lab.dpid(end.node), end.port))
        lit += lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, True, 30.0)).faults
    assert lit == [("link_up", late.wavelength)]          # no failure, but back in use
    assert lab.ctl.engine.link_up(late.name) and late.name not in lab.ctl.held_down()
    assert report_cut(lab, late, now=40.0) == [("link_down", late.wavelength)]


def test_a_link_back_is_used_only_after_its_hold_down_doubling_with_flaps(ring_lab):
    lab = ring_lab
    link = wavelengths_of(lab.fabric, "north-east-a")[0]
    report_cut(lab, link, now=10.0)
    report_up(lab, link, now=10.5)
    # Held down: a last resort for routes, not offered to placement or admission; up, but
    # not in service, in ListLinks (`dcilab train` took it for capacity, a re-tester's)
    assert lab.ctl.engine.held(link.name) and not lab.ctl.engine.in_service(link)
    for end in (link.a, link.b):                # heard from: the tracker shows them up
        lab.ctl.port_stats(lab.dpid(end.node), {}, 10.6)
    loads = [l for l in lab.ctl.link_loads() if l.link == link.name]
    assert loads and all(l.up and not l.in_service for l in loads)
    assert lab.ctl.held_down()[link.name] == pytest.approx(10.5 + HOLD_DOWN_S)
    assert lab.send(lab.ctl.tick(10.5 + HOLD_DOWN_S / 2)).faults == []
    back = lab.send(lab.ctl.tick(10.5 + HOLD_DOWN_S))
    assert all(l.up and l.in_service for l in lab.ctl.link_loads() if l.link == link.name)
    assert back.faults == [("link_up", link.wavelength)]
    assert lab.ctl.engine.in_service(link)
    report_cut(lab, link, now=12.0)                  # it flaps: held twice as long
    report_up(lab, link, now=12.1)
    assert lab.ctl.held_down()[link.name] == pytest.approx(12.1 + 2 * HOLD_DOWN_S)


def test_a_reservation_moves_with_its_meter_or_is_degraded_with_the_reason(ring_lab):
    lab = ring_lab
    res = lab.send(lab.ctl.reserve(ReservationRequest("north-h1", "east-h1", 200.0), "r1",
                                   0.0)).changed[0]
    assert {h.link.rsplit(".", 1)[0] for h in res.hops if h.wavelength} == {"north-east-a"}
    out = cut_and_tick(lab, *wavelengths_of(lab.fabric, "north-east-a"))
    moved = lab.ctl.book.get("r1")
    assert {h.link.rsplit(".", 1)[0] for h in moved.hops if h.wavelength} == {"north-east-b"}
    assert moved.meter_id == res.meter_id and moved.state is not State.DEGRADED
    assert any(r.reservation_id == "r1" for r in out.changed)
    north, east = lab.fabric.hosts["north-h1"], lab.fabric.hosts["east-h1"]
    (path,) = lab.net.trace(lab.dpid(north.leaf), north.port, tcp_packet(north, east))
    assert [l.line_system for l in dci_links_of_path(lab.fabric, path.hops)] == ["north-east-b"]
    assert lab.table(north.leaf).meter_for({**tcp_packet(north, east)}) == res.meter_id
    # The second line system too: the long way round (west, 300G modes) has room...
    cut_and_tick(lab, *wavelengths_of(lab.fabric, "north-east-b"))
    around = lab.ctl.book.get("r1")
    assert around.state is not State.DEGRADED
    # ... and with every way to east gone, it is DEGRADED, holds nothing, says why.
    cut_and_tick(lab, *wavelengths_of(lab.fabric, "east-south"))
    degraded = lab.ctl.book.get("r1")
    assert degraded.state is State.DEGRADED and "down" in degraded.reason
    assert lab.ctl.book.reserved_total() == 0
    # Capacity returns (after the hold-down): ACTIVE again, pinned and metered.
    report_up(lab, *wavelengths_of(lab.fabric, "north-east-a"), now=1.0)
    lab.send(lab.ctl.tick(1.0 + HOLD_DOWN_S))
    back = lab.ctl.book.get("r1")
    assert back.state is State.PENDING and back.reason == ""
    lab.ack_all()
    assert lab.ctl.book.get("r1").state is State.ACTIVE
    assert lab.table(north.leaf).meter_for({**tcp_packet(north, east)}) == res.meter_id


class Restorations:
    """The service's observer: the restoration samples, nothing else."""

    def __init__(self):
        self.seconds: list[float] = []

    def restoration(self, seconds: float) -> None:
        self.seconds.append(seconds)

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_one_restoration_sample_per_failure_or_recovery_handled(ring_lab):
    """A cut is one restoration: its routes at once, its reservation at the next tick and
    the settling 3 s later add no sample of their own (each added one before). A line
    system's wavelengths reported together are one too; so is a link back in use."""
    lab = ring_lab
    seen = Restorations()
    service = ControllerService(lab.ctl, observer=seen)
    service.attach(lambda outbox: len(lab.send(outbox).messages))
    service.reserve(ReservationRequest("north-h1", "east-h1", 200.0))
    lab.ack_all()

    def apply(event):
        service.apply(event)
        return len(seen.seconds)

    (first, *others) = wavelengths_of(lab.fabric, "north-east-a")
    for end in (first.a, first.b):
        lab.net.down_ports.add((lab.dpid(end.node), end.port))
        assert apply(lambda core, e=end: core.port_changed(lab.dpid(e.node), e.port, False,
                                                           0.0)) == 0   # placements wait
    assert apply(lambda core: core.tick(0.1)) == 1
    assert apply(lambda core: core.tick(0.2)) == 1
    assert apply(lambda core: core.tick(3.5)) == 1             # settled: no failure of its own
    for link in others:
        for end in (link.a, link.b):
            lab.net.down_ports.add((lab.dpid(end.node), end.port))
            apply(lambda core, e=end: core.port_changed(lab.dpid(e.node), e.port, False, 4.0))
    moved = lab.ctl.book.live()[0]
    assert {h.link.rsplit(".", 1)[0] for h in moved.hops if h.wavelength} == {"north-east-a"}
    assert apply(lambda core: core.tick(4.1)) == 2             # the rest of the line system
    moved = lab.ctl.book.live()[0]
    assert {h.link.rsplit(".", 1)[0] for h in moved.hops if h.wavelength} == {"north-east-b"}
    for end in (first.a, first.b):
        lab.net.down_ports.discard((lab.dpid(end.node), end.port))
        assert apply(lambda core, e=end: core.port_changed(lab.dpid(e.node), e.port, True,
                                                           5.0)) == 2   # held down
    assert apply(lambda core: core.tick(5.0 + HOLD_DOWN_S)) == 3       # in use again
    assert all(0 <= s < 5 for s in seen.seconds)


THREE_WAYS = """
name: ways
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 3, fabric_gbps: 1600}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 3, fabric_gbps: 1600}
dci_links:
  - {name: x, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 1}
  - {name: y, a: a, b: b, fiber_km: 50, module: 400ZR, wavelengths: 1}
  - {name: z, a: a, b: b, fiber_km: 60, module: 400ZR, wavelengths: 1}
"""


def wavelength(lab, rid):
    (w,) = [h.wavelength for h in lab.ctl.book.get(rid).hops if h.wavelength]
    return w


def test_failures_within_a_tick_are_restored_together_highest_priority_first():
    lab = ControllerLab(parse_fabric(THREE_WAYS)).bring_up_all()
    low = ReservationRequest("a-h1", "b-h1", 300.0)
    high = ReservationRequest("a-h2", "b-h2", 300.0, priority=5)
    lab.send(lab.ctl.reserve(low, "low", 0.0))               # x (360 reservable)
    lab.send(lab.ctl.reserve(high, "high", 1.0))             # y: x has 60 left
    assert wavelength(lab, "high") == "y.w1"
    # A duct cut takes x and y within milliseconds: z has room for one of them.
    report_cut(lab, *wavelengths_of(lab.fabric, "x"), *wavelengths_of(lab.fabric, "y"))
    assert {wavelength(lab, r) for r in ("low", "high")} == {"x.w1", "y.w1"}
    out = lab.send(lab.ctl.tick(0.05))
    assert wavelength(lab, "high") == "z.w1"
    assert lab.ctl.book.get("high").state is State.PENDING       # was: no barrier acked yet
    assert lab.ctl.book.get("low").state is State.DEGRADED
    assert {r.reservation_id for r in out.changed} == {"low", "high"}


def test_when_the_shorter_line_system_is_back_reservations_return_to_it(ring_lab):
    lab = ring_lab
    lab.send(lab.ctl.reserve(ReservationRequest("north-h1", "east-h1", 200.0), "r1", 0.0))
    dead = wavelengths_of(lab.fabric, "north-east-a")
    cut_and_tick(lab, *dead)
    assert wavelength(lab, "r1").startswith("north-east-b")
    report_up(lab, *dead, now=5.0)
    assert wavelength(lab, "r1").startswith("north-east-b")      # held down still
    lab.send(lab.ctl.tick(5.0 + HOLD_DOWN_S))
    assert wavelength(lab, "r1").startswith("north-east-a")
    north, east = lab.fabric.hosts["north-h1"], lab.fabric.hosts["east-h1"]
    (path,) = lab.net.trace(lab.dpid(north.leaf), north.port, tcp_packet(north, east))
    assert [l.line_system for l in dci_links_of_path(lab.fabric, path.hops)] == ["north-east-a"]


def test_a_restarted_controller_moves_reservations_onto_links_repaired_while_it_was_down():
    """The record says y (x was cut when it was saved); the restarted controller finds x
    up: once every switch is programmed it moves the reservation back, as it would have
    at x's return had it been running."""
    fabric = parse_fabric(THREE_WAYS)
    before = ControllerLab(fabric).bring_up_all()
    before.send(before.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0), "r1", 0.0))
    before.ack_all()
    cut_and_tick(before, *wavelengths_of(fabric, "x"))
    saved = before.ctl.book.get("r1")
    assert wavelength(before, "r1") == "y.w1"
    lab = ControllerLab(fabric)
    lab.ctl.restore(saved.with_state(State.ACTIVE))
    lab.bring_up_all()
    lab.ack_all()
    assert wavelength(lab, "r1") == "y.w1"          # as recorded, until the next tick
    lab.send(lab.ctl.tick(1.0))
    assert wavelength(lab, "r1") == "x.w1"
    lab.ack_all()
    assert lab.ctl.book.get("r1").state is State.ACTIVE
    a, b = fabric.hosts["a-h1"], fabric.hosts["b-h1"]
    (path,) = lab.net.trace(lab.dpid(a.leaf), a.port, tcp_packet(a, b))
    assert [link.name for link in dci_links_of_path(fabric, path.hops)] == ["x.w1"]


def test_a_restart_without_some_switch_still_moves_reservations_back_after_its_deadline():
    """One switch never comes back (dead): the others are programmed at the gathering
    deadline, and once they all have acknowledged, reservations move onto the repaired
    shorter link all the same (the fabric is never "ready")."""
    fabric = parse_fabric(THREE_WAYS)
    before = ControllerLab(fabric).bring_up_all()
    before.send(before.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0), "r1", 0.0))
    before.ack_all()
    cut_and_tick(before, *wavelengths_of(fabric, "x"))
    lab = ControllerLab(fabric, FabricController(fabric, gather_s=3.0))
    lab.ctl.restore(before.ctl.book.get("r1").with_state(State.ACTIVE))
    dead = "b-gw3"                                   # z's far end: not on r1's ways
    for name in fabric.switches:
        if name != dead:
            lab.ctl.switch_connected(lab.dpid(name))
            lab.send(lab.ctl.ports_described(lab.dpid(name), lab.ports(name), frozenset(),
                                             10.0))
    assert wavelength(lab, "r1") == "y.w1"
    lab.send(lab.ctl.tick(13.0))                     # the deadline: programmed without it
    lab.ack_all()
    assert not lab.ctl.ready
    lab.send(lab.ctl.tick(13.1))
    assert wavelength(lab, "r1") == "x.w1"


def test_first_light_is_used_at_once_but_a_return_is_held_down():
    fabric = parse_fabric(TRIANGLE)
    lab = ControllerLab(fabric)
    link = wavelengths_of(fabric, "a-b")[0]
    gw = link.a.node
    # BFD is still coming up when a-gw1 connects: its DCI ports are not live yet.
    lab.ctl.switch_connected(lab.dpid(gw))
    dci = frozenset(p for p, l in fabric.ports(gw).items() if l.kind == "dci")
    lab.send(lab.ctl.ports_described(lab.dpid(gw), lab.ports(gw), dci, 0.0))
    assert not lab.ctl.engine.link_up(link.name)
    lab.send(lab.ctl.port_changed(lab.dpid(gw), link.a.port, True, 2.0))
    assert lab.ctl.engine.link_up(link.name) and lab.ctl.held_down() == {}
    # Still within its first seconds: a drop and return is the switch starting (no hold).
    lab.send(lab.ctl.port_changed(lab.dpid(gw), link.a.port, False, 5.0))
    lab.send(lab.ctl.port_changed(lab.dpid(gw), link.a.port, True, 6.0))
    assert lab.ctl.engine.link_up(link.name) and lab.ctl.held_down() == {}
    # Later, a link that was carrying traffic and comes back is held down.
    lab.send(lab.ctl.port_changed(lab.dpid(gw), link.a.port, False, 50.0))
    lab.send(lab.ctl.port_changed(lab.dpid(gw), link.a.port, True, 51.0))
    assert lab.ctl.engine.held(link.name) and link.name in lab.ctl.held_down()


def test_without_protection_a_cut_wavelength_blackholes_until_the_controller_acts():
    """The baseline of `bench --faults`: buckets watch nothing, there are no detours."""
    fabric = parse_fabric(TRIANGLE)
    from dcilab.core.rules import Programs
    programs = Programs(fabric, PathEngine(fabric), protect=False)
    net = fake_fabric(fabric, {name: programs.full(name) for name in fabric.switches})
    cut(fabric, net, *wavelengths_of(fabric, "a-b"))
    outs = {p.outcome for paths in outcomes(fabric, net).values() for p in paths}
    assert Outcome.LINK_DOWN in outs or Outcome.DROP in outs



def test_a_held_down_link_still_carries_traffic_when_nothing_else_goes():
    """Hold-down damps flapping; it must never blackhole: held-down links are a last resort."""
    lab = ControllerLab(topology("two-dc")).bring_up_all()
    every = wavelengths_of(lab.fabric, "dc1-dc2-a")
    report_cut(lab, *every, now=10.0)
    report_up(lab, every[0], now=11.0)               # back, held down, and the only way
    assert lab.ctl.engine.held(every[0].name)
    src, dst = lab.fabric.hosts["dc1-h1"], lab.fabric.hosts["dc2-h3"]
    paths = lab.net.trace(lab.dpid(src.leaf), src.port, tcp_packet(src, dst))
    assert paths and all(p.outcome is Outcome.EGRESS for p in paths)
    assert {l.name for p in paths for l in dci_links_of_path(lab.fabric, p.hops)} == {
        every[0].name}


def test_a_reservation_whose_only_way_is_held_down_is_degraded_not_an_error():
    lab = ControllerLab(parse_fabric(TRIANGLE)).bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 40.0), "r", 0.0))
    ab, bc = wavelengths_of(lab.fabric, "a-b"), wavelengths_of(lab.fabric, "b-c")
    cut_and_tick(lab, *ab, now=100.0)                     # onto a-c, b-c
    report_up(lab, *ab, now=101.0)                        # a-b back, held down
    out = cut_and_tick(lab, *bc, now=101.5)               # and b-c cut: nothing in service
    assert [r.state for r in out.changed] == [State.DEGRADED]
    assert "line system b-c is down (all 2 wavelengths)" in lab.ctl.book.get("r").reason


def test_a_detour_search_stopped_at_its_source_finds_the_hops_of_a_whole_search():
    """`detour` searches towards its source (A*) and stops once the source's distance is
    final; the hops must be those of a plain search run to the end, on a meshed fabric of
    parallel line systems, with wavelengths and whole line systems down and one held."""
    import itertools
    import random
    rng = random.Random(7)
    sites = [f"s{i}" for i in range(8)]
    lines = [f"  - {{name: {a}{b}, a: {a}, b: {b}, fiber_km: {rng.choice((30, 40, 70, 90))}, "
             f"module: 400ZR, wavelengths: {rng.randint(1, 2)}}}"
             for a, b in itertools.combinations(sites, 2) if rng.random() < 0.5]
    fabric = parse_fabric("name: mesh\nsites:\n" + "".join(
        f"  - {{name: {s}, spines: 2, leaves: 1, hosts_per_leaf: 1, gateways: 2}}\n"
        for s in sites) + "dci_links:\n" + "\n".join(lines) + "\n")
    dci = [link.name for link in fabric.links if link.kind == "dci"]
    for down in ((), rng.sample(dci, 3), rng.sample(dci, 8)):
        stopped, whole = PathEngine(fabric), PathEngine(fabric)
        search = whole._search
        whole._search = lambda dst, avoid, src=None, bound=None: search(dst, avoid)
        for engine in (stopped, whole):
            for name in down:
                engine.set_link(name, False)
            engine.set_held(dci[0], True)
        found = detours(fabric, stopped)
        assert found == detours(fabric, whole) and len(found) > 20


def ring_of_ducts(n: int, km, wavelengths: int, srlg):
    """A ring of n sites, three line systems l<i>x<j> between neighbours, each `km(i)`
    long with risk groups `srlg(i, j)`."""
    sites = [f"s{i}" for i in range(n)]
    return parse_fabric("name: ducts\nsites:\n" + "".join(
        f"  - {{name: {s}, spines: 1, leaves: 1, hosts_per_leaf: 1, gateways: 1}}\n"
        for s in sites) + "dci_links:\n" + "".join(
        f"  - {{name: l{i}x{j}, a: {a}, b: {sites[(i + 1) % n]}, fiber_km: {km(i)}, "
        f"module: 400ZR, wavelengths: {wavelengths}, srlg: [{srlg(i, j)}]}}\n"
        for i, a in enumerate(sites) for j in range(3)))


def counted_detours(fabric):
    """`detours` of the intact fabric, and the start of each search it ran."""
    engine = PathEngine(fabric)
    searches = []
    search = engine.detour
    engine.detour = lambda src, dst, avoid: searches.append(src) or search(src, dst, avoid)
    return detours(fabric, engine), searches


def test_line_systems_in_one_duct_share_one_detour_search():
    """A ring of ducts, three line systems in each: every line system of a duct has the
    same risk, so one search per duct end finds the detour of all three (a search per
    line system made a ring of ducts quadratic in line systems); their detours are those
    of a search per line system, all the way round the ring."""
    fabric = ring_of_ducts(6, lambda i: 40 + 10 * i, 2, lambda i, j: f"duct{i}")
    found, searches = counted_detours(fabric)
    assert len(found) == 36 and all(d.disjoint for d in found)
    assert len(searches) == 12                              # 6 ducts, 2 ends each
    for d in found:
        alone = PathEngine(fabric).detour(
            d.gateway, d.tail, [w.name for ls in SharedRisk(fabric)[d.line_system]
                                for w in wavelengths_of(fabric, ls)])
        assert list(d.hops) == alone
        assert len({h.link.line_system for h in d.hops if h.link.line_system}) == 5


def test_line_systems_past_the_vlan_ids_are_said_to_have_no_detour_installed(monkeypatch):
    """Two VLAN ids a line system, in file order: past the last one, `detours` installs
    nothing and `check` says why rather than 'no detour'."""
    from dcilab.cli import check
    from dcilab.te import protection
    fabric = parse_fabric(PARALLEL)
    names = [spec.name for spec in fabric.spec.dci_links]
    monkeypatch.setattr(protection, "MAX_VID", 6)               # three line systems' worth
    assert protection.unlabelled(fabric) == names[3:]
    assert {d.line_system for d in detours(fabric, PathEngine(fabric))} == set(names[:3])
    said = {link["name"]: link["protection"] for link in check.summary(fabric)["dci_links"]}
    assert all("no detour pre-installed: the VLAN ids" in said[n] for n in names[3:])
    assert all("via" in said[n] for n in names[:3])
    assert [w for w in check.summary(fabric)["warnings"] if "no pre-installed detour" in w] \
        == [f"{len(names) - 3} line system(s) after the first 3 ({names[3]} on) get no "
            f"pre-installed detour: the VLAN ids that label detours run out; the controller "
            f"re-routes them when cut"]


def test_a_risk_group_of_one_line_system_does_not_split_a_ducts_search():
    """Each line system of a duct also has a group of its own (a conduit id): its risks
    are still the duct's, so the duct's line systems still share one search."""
    fabric = ring_of_ducts(4, lambda i: 50, 1, lambda i, j: f"duct{i}, conduit{i}x{j}")
    found, searches = counted_detours(fabric)
    assert len(found) == 24 and all(d.disjoint for d in found) and len(searches) == 8
    risk = SharedRisk(fabric)
    for d in found:
        alone = PathEngine(fabric).detour(d.gateway, d.tail, risk.avoiding([d.line_system]))
        assert list(d.hops) == alone


def test_a_group_every_line_system_crosses_is_learnt_once_not_searched_per_line_system():
    """Twenty line systems through one building entry, each also in a conduit with one
    other: no disjoint detour exists, and their risks differ (ten conduits), so a search
    per risk, each of the whole fabric, would fail ten times per direction. Once a search
    fails, the entry alone is found to cut the way, and the others are known to fail:
    one failed search and one for the entry per direction, then each line system's
    detour beside it (through the other line systems, as a search of its own gives)."""
    fabric = parse_fabric("name: entry\nsites:\n" + "".join(
        f"  - {{name: {s}, spines: 1, leaves: 1, hosts_per_leaf: 1}}\n" for s in "ab")
        + "dci_links:\n" + "".join(
        f"  - {{name: l{k}, a: a, b: b, fiber_km: {40 + k}, module: 400ZR, wavelengths: 1, "
        f"srlg: [entry, conduit{k // 2}]}}\n" for k in range(20)))
    found, searches = counted_detours(fabric)
    assert len(found) == 40 and not any(d.disjoint for d in found)
    assert len(searches) == 2 + 2 + 40
    for d in found:
        assert list(d.hops) == PathEngine(fabric).detour(
            d.gateway, d.tail, [w.name for w in wavelengths_of(fabric, d.line_system)])


def test_detour_and_standby_vlan_ids_never_meet():
    """An outside reviewer: line system 1024's detours took VLAN ids 2047 and 2048, and
    meter 1's standby 2048 too; both rules match the id alone at one priority in table 0,
    so one replaced the other."""
    from types import SimpleNamespace

    from dcilab.core.reservation_rules import standby_vid
    from dcilab.te import protection
    detour_vids = set(range(1, protection.MAX_VID + 1))
    assert max(detour_vids) <= protection.MAX_VID < protection.STANDBY_VID_BASE
    standby = {standby_vid(SimpleNamespace(meter_id=m)) for m in range(1, 5000)}
    assert min(standby) == protection.STANDBY_VID_BASE and max(standby) == 4094
    assert len(standby) == protection.STANDBY_VIDS and not standby & detour_vids


def _start_with_dark(lab, dark_links, now=0.0):
    """Every switch connects and lists its ports, those of `dark_links` down (cut while
    the controller was away)."""
    for link in dark_links:
        for end in (link.a, link.b):
            lab.net.down_ports.add((lab.dpid(end.node), end.port))
    for name in lab.fabric.switches:
        dpid = lab.dpid(name)
        lab.ctl.switch_connected(dpid)
        dark = frozenset(end.port for link in dark_links for end in (link.a, link.b)
                         if end.node == name)
        lab.send(lab.ctl.ports_described(dpid, lab.ports(name), dark, now))
    lab.ack_all()


@pytest.mark.parametrize("back_at", [30.0, 3.0])
def test_a_link_down_since_before_a_restart_restores_what_it_left_degraded_when_it_returns(
        back_at):
    """A chaos tester's: restarted while x was cut, the controller took x's return for a
    first light, restored nothing, and a new request took the DEGRADED reservation's room.
    Also when it comes back within the switches' first seconds (a re-tester's), though
    that is not counted as a link_up."""
    fabric = parse_fabric(THREE_WAYS)
    before = ControllerLab(fabric).bring_up_all()
    for rid, host in (("r1", 1), ("r2", 2)):
        before.send(before.ctl.reserve(ReservationRequest(f"a-h{host}", f"b-h{host}", 300.0),
                                       rid, 0.0))
    before.send(before.ctl.reserve(ReservationRequest("a-h1", "b-h2", 300.0), "r3", 0.0))
    before.ack_all()
    r1_was = wavelength(before, "r1")
    cut_and_tick(before, *[l for l in fabric.wavelengths() if l.name == r1_was])
    assert before.ctl.book.get("r1").state is State.DEGRADED
    lab = ControllerLab(fabric)
    for rid in ("r1", "r2", "r3"):
        lab.ctl.restore(before.ctl.book.get(rid))
    dark = [l for l in fabric.wavelengths() if l.name == r1_was]
    _start_with_dark(lab, dark)
    lab.send(lab.ctl.tick(1.0))
    assert lab.ctl.book.get("r1").state is State.DEGRADED       # its wavelength is down
    lit = []
    for end in (dark[0].a, dark[0].b):                          # back, past the start-up
        lab.net.down_ports.discard((lab.dpid(end.node), end.port))
        lit += lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, True,
                                             back_at)).faults
    assert lit == ([("link_up", dark[0].wavelength)] if back_at > STARTUP_GRACE_S else [])
    lab.send(lab.ctl.tick(back_at + 0.1))
    lab.ack_all()
    assert lab.ctl.book.get("r1").state is State.ACTIVE
    assert wavelength(lab, "r1") == r1_was


def test_a_restarted_controller_seeks_standbys_only_once_the_switches_said_what_is_up():
    """A chaos tester's: before any switch had connected, a restarted controller gave an
    unprotected PROTECTED reservation a standby over links cut while it was down (its
    model had every link up), then moved it once the ports were read."""
    fabric = parse_fabric(THREE_WAYS)
    before = ControllerLab(fabric).bring_up_all()
    before.send(before.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0,
                                                      protection=Protection.PROTECTED),
                                   "p1", 0.0))
    before.ack_all()
    saved = before.ctl.book.get("p1")
    used = {h.link for h in saved.hops + saved.standby}
    others = [l for l in fabric.wavelengths() if l.name not in used]
    standby = [l for l in fabric.wavelengths() if l.name in {h.link for h in saved.standby}]
    cut_and_tick(before, *standby, *others)
    bare = before.ctl.book.get("p1")
    assert bare.standby == ()                                   # nowhere left for one
    lab = ControllerLab(fabric, FabricController(fabric, gather_s=3.0))
    lab.ctl.restore(bare)
    lab.send(lab.ctl.tick(1.0))                                 # no switch yet
    assert lab.ctl.book.get("p1").standby == ()
    _start_with_dark(lab, standby + others, now=2.0)
    lab.send(lab.ctl.tick(6.0))
    lab.ack_all()
    lab.send(lab.ctl.tick(7.0))
    after = lab.ctl.book.get("p1")
    assert after.standby == () and after.hops == bare.hops      # nothing cut taken, no move


def test_damping_doubles_the_hold_with_each_flap_in_the_window_and_forgets_old_ones():
    from dcilab.core.damping import FLAP_WINDOW_S, HOLD_DOWN_MAX_S, LinkDamping
    d = LinkDamping()
    assert d.lit("w") and not d.lit("w")                  # its first light, then not
    holds = []
    for n in range(7):
        d.lost("w", 10.0 * n)
        holds.append(d.hold("w", 10.0 * n + 1))
    assert holds == [1.0, 2.0, 4.0, 8.0, 16.0, HOLD_DOWN_MAX_S, HOLD_DOWN_MAX_S]
    assert d.released(61.0 + HOLD_DOWN_MAX_S - 0.1) == []
    assert d.released(61.0 + HOLD_DOWN_MAX_S) == ["w"] and d.held() == {}
    d.lost("w", 61.0 + FLAP_WINDOW_S + 100)               # the old flaps have passed
    assert d.hold("w", 61.0 + FLAP_WINDOW_S + 101) == 1.0
    assert d.cancel("w") and not d.cancel("w")


def test_a_link_repaired_in_a_restarts_first_seconds_takes_back_what_went_round():
    """A re-tester's: nothing DEGRADED, r1 moved off x when x was cut; x repaired 4 s after
    a restart, r1 stayed the long way round (only a DEGRADED book triggered the pass)."""
    fabric = parse_fabric(THREE_WAYS)
    before = ControllerLab(fabric).bring_up_all()
    before.send(before.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0), "r1", 0.0))
    before.ack_all()
    assert wavelength(before, "r1") == "x.w1"
    x = wavelengths_of(fabric, "x")
    cut_and_tick(before, *x)
    assert wavelength(before, "r1") != "x.w1"
    lab = ControllerLab(fabric)
    lab.ctl.restore(before.ctl.book.get("r1"))
    _start_with_dark(lab, x)
    lab.send(lab.ctl.tick(1.0))
    for end in (x[0].a, x[0].b):
        lab.net.down_ports.discard((lab.dpid(end.node), end.port))
        lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, True, 4.0))
    lab.send(lab.ctl.tick(4.1))
    assert wavelength(lab, "r1") == "x.w1"
