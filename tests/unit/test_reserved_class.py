"""Reserved traffic crosses every link between its leaves in the reserved class (its source
MAC is `RESERVED_CLASS_MAC` there, which each link's queues serve first): the ingress
leaf's pin sets it and the egress leaf's gives the sending host's back, so no host sees
it. Followed link by link through the simulated flow tables of three-site (see
test_repathing)."""

from __future__ import annotations

import pytest
from controller_lab import ControllerLab
from fabric_helpers import tcp_packet
from fakeoftable import Outcome
from test_protection import wavelengths_of
from test_repathing import THREE_SITES

from dcilab.fabric import parse_fabric
from dcilab.fabric.model import DCI, RESERVED_CLASS_MAC
from dcilab.te.reservations import Protection, ReservationRequest, Selector

SRC, DST = "fra-h1", "ams-h1"


@pytest.fixture
def lab():
    lab = ControllerLab(parse_fabric(THREE_SITES), reservable_fraction=0.9)
    lab.bring_up_all()
    return lab


def source_macs(lab, pkt) -> list[tuple[str, bool, str]]:
    """(the link's name, whether it is a wavelength, the packet's source MAC on it) for
    every link a packet of the pair crosses, the host link it is delivered by last; one way
    only (the pair is pinned)."""
    s, d = lab.fabric.hosts[SRC], lab.fabric.hosts[DST]
    names = {sw.dpid: name for name, sw in lab.fabric.switches.items()}
    seen = []
    for n in range(1, 16):
        paths = lab.net.trace(lab.dpid(s.leaf), s.port, pkt, max_hops=n)
        assert len(paths) == 1, paths
        [path] = paths
        if path.outcome is Outcome.EGRESS:
            assert path.end == (lab.dpid(d.leaf), d.port)
            return seen + [(DST, False, path.packet["eth_src"])]
        assert path.outcome is Outcome.HOP_LIMIT, path.outcome
        dpid, in_port = path.end
        link = lab.fabric.ports(names[dpid])[in_port]
        seen.append((link.name, link.kind == DCI, path.packet["eth_src"]))
    raise AssertionError("no delivery within 15 hops")


def packet(lab, **fields):
    s, d = lab.fabric.hosts[SRC], lab.fabric.hosts[DST]
    return {**tcp_packet(s, d), "eth_src": s.mac, **fields}


def assert_marked_between_the_leaves(lab, macs, wavelengths: int):
    """Every link between switches in the class (`wavelengths` of them wavelengths), the
    host's own MAC on delivery."""
    assert [mac for _, _, mac in macs[:-1]] == [RESERVED_CLASS_MAC] * (len(macs) - 1), macs
    assert macs[-1][2] == lab.fabric.hosts[SRC].mac, macs
    assert len([name for name, dci, _ in macs if dci]) == wavelengths, macs


def test_reserved_traffic_is_in_the_reserved_class_between_its_leaves(lab):
    lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 100.0), "r", 0.0))
    lab.ack_all()
    assert_marked_between_the_leaves(lab, source_macs(lab, packet(lab)), 1)


def test_best_effort_keeps_its_source_mac_everywhere(lab):
    """Without a reservation, and beside one that selects other traffic of the pair."""
    assert {mac for _, mac in source_macs_any(lab, packet(lab))} == \
        {lab.fabric.hosts[SRC].mac}
    lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 100.0, selector=Selector(
        ip_proto=17)), "udp", 0.0))
    lab.ack_all()
    assert {mac for _, mac in source_macs_any(lab, packet(lab))} == \
        {lab.fabric.hosts[SRC].mac}
    udp = {k: v for k, v in packet(lab, ip_proto=17, udp_src=1, udp_dst=2).items()
           if not k.startswith("tcp_")}
    assert_marked_between_the_leaves(lab, source_macs(lab, udp), 1)


def source_macs_any(lab, pkt) -> list[tuple[int, str]]:
    """(hop count, source MAC) on every link of every way a hashed packet may take."""
    s = lab.fabric.hosts[SRC]
    out = []
    for n in range(1, 16):
        paths = lab.net.trace(lab.dpid(s.leaf), s.port, pkt, max_hops=n)
        out += [(n, p.packet["eth_src"]) for p in paths]
        if all(p.outcome is Outcome.EGRESS for p in paths):
            return out
    raise AssertionError("no delivery within 15 hops")


def test_a_protected_standby_is_in_the_reserved_class_too(lab):
    """Cut the primary's line system under the switches: the standby through paris crosses
    two wavelengths, in the class as every link of it, and the host gets its own MAC back."""
    lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 50.0,
                                                protection=Protection.PROTECTED), "p", 0.0))
    lab.ack_all()
    assert_marked_between_the_leaves(lab, source_macs(lab, packet(lab)), 1)
    assert_in_the_class_through_paris_once_fra_ams_is_cut(lab)


def assert_in_the_class_through_paris_once_fra_ams_is_cut(lab):
    """Cut frankfurt-amsterdam's every wavelength under the switches (the controller not
    told): the pair's packets cross paris's two wavelengths, in the class throughout."""
    for link in wavelengths_of(lab.fabric, "fra-ams"):
        for end in (link.a, link.b):
            lab.net.down_ports.add((lab.dpid(end.node), end.port))
    macs = source_macs(lab, packet(lab))
    assert [name for name, dci, _ in macs if dci] == ["fra-par.w1", "par-ams.w1"]
    assert_marked_between_the_leaves(lab, macs, 2)


def test_a_host_posing_as_the_reserved_class_is_dropped_at_its_leaf(lab):
    """Every link serves the class's MAC first, past every meter: a host sending as it
    (with a reservation of its pair or without) gets nothing through."""
    lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 100.0), "r", 0.0))
    lab.ack_all()
    s = lab.fabric.hosts[SRC]
    for src, dst in ((SRC, DST), (SRC, "ams-h2")):
        pkt = {**tcp_packet(s, lab.fabric.hosts[dst]), "eth_src": RESERVED_CLASS_MAC}
        assert [p.outcome for p in lab.net.trace(lab.dpid(s.leaf), s.port, pkt)] == \
            [Outcome.DROP]


def test_a_reserved_packet_sent_round_a_cut_by_a_detour_stays_in_the_class(lab):
    """Its wavelength and the line system's others cut under the switches (the controller
    not told): the pin's fast-failover group takes the line system's detour through paris,
    which untags it at ams-gw1 and classifies it again, so the pair's pins take it on (in
    the class) and the egress leaf gives its host's MAC back."""
    lab.send(lab.ctl.reserve(ReservationRequest(SRC, DST, 100.0), "r", 0.0))
    lab.ack_all()
    assert_in_the_class_through_paris_once_fra_ams_is_cut(lab)
