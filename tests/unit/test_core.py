"""FabricController: the switch lifecycle, port checks and ARP answers, without a switch."""

from __future__ import annotations

import logging

import pytest
from fabric_helpers import ETH_IP, arp_packet, topology
from fakeoftable import FakeOFTable
from os_ken.lib.packet import arp, ethernet, ipv4, packet, tcp
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from dcilab.core.controller import FabricController

LOGGER = "dcilab.core"


@pytest.fixture
def fabric():
    return topology("two-dc")


@pytest.fixture
def ctl(fabric):
    return FabricController(fabric)


def expected_ports(bridge: str, ports: range) -> dict[int, str]:
    return {p: f"{bridge}p{p}" for p in ports}


# By hand from two-dc.yaml (2 spines, 2 leaves, 2 hosts per leaf, 2 gateways per site;
# one line system of 4 wavelengths on gw1 of each site):
#   leaf:  2 hosts + 2 spines = ports 1..4
#   spine: 2 leaves + 2 gateways = ports 1..4
#   gw1:   2 spines + 4 wavelengths = ports 1..6; gw2: 2 spines = ports 1..2
HAND_PORTS = {
    "dc1-leaf1": ("dl1lf1", range(1, 5)),
    "dc1-spine2": ("dl1sp2", range(1, 5)),
    "dc1-gw1": ("dl1gw1", range(1, 7)),
    "dc1-gw2": ("dl1gw2", range(1, 3)),
    "dc2-gw1": ("dl2gw1", range(1, 7)),
}


def good_ports(fabric, name: str) -> dict[int, str]:
    sw = fabric.switches[name]
    if name in HAND_PORTS:
        bridge, ports = HAND_PORTS[name]
        assert sw.bridge == bridge
        return expected_ports(bridge, ports) | {ofp.OFPP_LOCAL: bridge}
    return {p: sw.interface(p) for p in fabric.ports(name)} | {ofp.OFPP_LOCAL: sw.bridge}


def bring_up(ctl, fabric, name):
    dpid = fabric.switches[name].dpid
    ctl.switch_connected(dpid)
    out = ctl.ports_described(dpid, good_ports(fabric, name))
    return dpid, out


# --- connecting ---------------------------------------------------------------------------


def test_unknown_dpid_gets_nothing_and_is_logged(ctl, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    dpid = 0xDEAD0001
    out = ctl.switch_connected(dpid)
    assert out.messages == {}
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage()
    assert "0xdead0001" in text.lower() or str(dpid) in text
    ctl.switch_connected(dpid, "192.0.2.7:40312")             # the app knows where from
    assert "connected from 192.0.2.7:40312, but fabric" in caplog.records[-1].getMessage()
    # Nothing follows for it either.
    assert ctl.ports_described(dpid, {1: "x"}).messages == {}
    assert ctl.barrier_replied(dpid).messages == {}
    assert ctl.packet_in(dpid, 1, b"").messages == {}
    assert not ctl.ready


def test_known_switch_is_asked_for_its_ports_first(ctl, fabric):
    dpid = fabric.switches["dc1-leaf1"].dpid
    assert dpid == (1 << 16) | (2 << 8) | 1  # site 1, leaf, index 1
    out = ctl.switch_connected(dpid)
    assert list(out.messages) == [dpid]
    [msg] = out.messages[dpid]
    assert isinstance(msg, parser.OFPPortDescStatsRequest)


def test_ports_described_programs_the_switch_ending_in_a_barrier(ctl, fabric, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    dpid, out = bring_up(ctl, fabric, "dc1-leaf1")
    assert list(out.messages) == [dpid]
    msgs = out.messages[dpid]
    assert isinstance(msgs[-1], parser.OFPBarrierRequest)
    assert not any(isinstance(m, parser.OFPBarrierRequest) for m in msgs[:-1])
    assert ctl.switches[dpid].problems == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The program works: a host's ARP is answered back out of its port, IPv4 to a local
    # host goes out its port, to a remote host out a spine port (3 or 4).
    table = FakeOFTable()
    table.apply(msgs)
    h1, h2 = fabric.hosts["dc1-h1"], fabric.hosts["dc1-h2"]
    remote = fabric.hosts["dc2-h3"]
    asked = arp_packet(1, h1.ip, h2.ip) | {"eth_src": h1.mac, "arp_sha": h1.mac}
    assert table.possible_ports(asked) == {1}
    assert table.possible_ports(arp_packet(1, h1.ip, "192.0.2.1")) == {ofp.OFPP_CONTROLLER}
    ip = {"in_port": 1, "eth_type": ETH_IP, "ipv4_src": h1.ip}
    assert table.possible_ports(ip | {"ipv4_dst": "10.1.1.2"}) == {2}
    assert table.possible_ports(ip | {"ipv4_dst": remote.ip}) == {3, 4}


def test_ports_described_without_connecting_is_ignored(ctl, fabric):
    dpid = fabric.switches["dc1-leaf1"].dpid
    assert ctl.ports_described(dpid, good_ports(fabric, "dc1-leaf1")).messages == {}


# --- port checks ----------------------------------------------------------------------------


def described(ctl, fabric, name, ports, caplog):
    caplog.clear()
    dpid = fabric.switches[name].dpid
    ctl.switch_connected(dpid)
    out = ctl.ports_described(dpid, ports)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    return dpid, out, ctl.switches[dpid].problems, errors


def test_missing_port_is_reported(ctl, fabric, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    ports = good_ports(fabric, "dc1-gw1")
    del ports[5]  # dc1-dc2-a.w3
    dpid, out, problems, errors = described(ctl, fabric, "dc1-gw1", ports, caplog)
    assert len(problems) == 1
    assert "missing" in problems[0] and "5" in problems[0] and "dc1-dc2-a.w3" in problems[0]
    assert len(errors) == 1 and "dc1-gw1" in errors[0] and problems[0] in errors[0]
    # The switch is still programmed: what is there can carry traffic.
    assert isinstance(out.messages[dpid][-1], parser.OFPBarrierRequest)
    # `dcilab links` and dcilab_link_up say what the routing knows: the missing port's
    # wavelength down, the others up (an outside tester saw "up" for such a link).
    bring_up(ctl, fabric, "dc2-gw1")
    for name in ("dc1-gw1", "dc2-gw1"):                 # their first statistics came back
        ctl.load.sample(name, {}, 0.0)
    up = {(l.link, l.src): l.up for l in ctl.load.snapshot()}
    assert up[("dc1-dc2-a.w3", "dc1-gw1")] is False
    assert up[("dc1-dc2-a.w1", "dc1-gw1")] is True


def test_unexpected_port_is_reported(ctl, fabric, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    ports = good_ports(fabric, "dc1-gw2") | {3: "dl1gw2p3"}
    _dpid, _out, problems, errors = described(ctl, fabric, "dc1-gw2", ports, caplog)
    assert len(problems) == 1
    assert "unexpected" in problems[0] and "dl1gw2p3" in problems[0]
    assert len(errors) == 1 and problems[0] in errors[0]


def test_misnamed_port_is_reported(ctl, fabric, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    ports = good_ports(fabric, "dc1-spine2") | {2: "eth7"}
    _dpid, _out, problems, errors = described(ctl, fabric, "dc1-spine2", ports, caplog)
    assert len(problems) == 1
    assert "eth7" in problems[0] and "dl1sp2p2" in problems[0]
    assert len(errors) == 1 and "dc1-spine2" in errors[0]


def test_a_switch_built_by_hand_may_name_its_ports_its_own_way(ctl, fabric, caplog):
    """The `dl…` names are the emulation's (and `dcilab clean` removes them): a switch of
    the user's own, with names of its own, is matched by port number only."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    own = {port: f"tq1sp2-{port}" for port in good_ports(fabric, "dc1-spine2")
           if port < ofp.OFPP_MAX} | {ofp.OFPP_LOCAL: "tq1sp2"}
    _dpid, _out, problems, errors = described(ctl, fabric, "dc1-spine2", own, caplog)
    assert problems == [] and errors == []
    del own[2]                                          # a missing port still is one
    _dpid, _out, problems, errors = described(ctl, fabric, "dc1-spine2", own, caplog)
    assert len(problems) == 1 and problems[0].startswith("missing port(s) 2 ")


def test_a_port_added_later_is_said_back_and_each_port_state_said_once(ctl, fabric, caplog):
    """An outside tester's switch connected without a wavelength port, then got it: the
    log said it missing and never that it was there; and OVS saying a port down twice
    (carrier, then liveness) logged it twice."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    ports = good_ports(fabric, "dc1-gw1")
    name = ports.pop(5)
    dpid, _out, problems, _errors = described(ctl, fabric, "dc1-gw1", ports, caplog)
    assert problems and "missing port(s) 5" in problems[0]
    caplog.clear()
    ctl.port_changed(dpid, 5, True, 1.0, name=name)
    said = [r.getMessage() for r in caplog.records]
    assert "switch dc1-gw1 port 5 (dc1-dc2-a.w3) is up" in said
    assert "switch dc1-gw1 now matches fabric 'two-dc': every port is there" in said
    assert ctl.switches[dpid].problems == []
    caplog.clear()
    for _ in range(2):
        ctl.port_changed(dpid, 5, False, 2.0, name=name)
    said = [r.getMessage() for r in caplog.records]
    assert said.count("switch dc1-gw1 port 5 (dc1-dc2-a.w3) is down") == 1
    caplog.clear()
    ctl.port_changed(dpid, 5, False, 3.0, name=name, deleted=True)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "missing port(s) 5 (dc1-dc2-a.w3)" in errors[0]
    assert "switch dc1-gw1 port 5 (dc1-dc2-a.w3) is deleted" in [
        r.getMessage() for r in caplog.records]


def test_a_switch_that_refuses_its_bundle_is_programmed_again_one_message_at_a_time(
        ctl, fabric):
    """Programmed afresh, as it is now, unbundled and behind a barrier of its own: the
    barrier behind the refused bundle does not make it programmed."""
    dpid, out = bring_up(ctl, fabric, "dc1-leaf1")
    first = out.messages[dpid]
    assert any(isinstance(m, parser.ONFBundleAddMsg) for m in first)
    again = ctl.program_refused(dpid).messages[dpid]
    assert not any(isinstance(m, (parser.ONFBundleAddMsg, parser.ONFBundleCtrlMsg))
                   for m in again)
    assert isinstance(again[-1], parser.OFPBarrierRequest)
    flows = [m for m in again if isinstance(m, parser.OFPFlowMod)]
    assert flows[0].command == ofp.OFPFC_DELETE and len(flows) > 5
    ctl.barrier_replied(dpid)                   # the refused bundle's barrier
    assert not ctl.switches[dpid].programmed
    ctl.barrier_replied(dpid)                   # the new program's
    assert ctl.switches[dpid].programmed


def test_every_switch_polices_what_it_sends_the_controller(ctl, fabric):
    """An outside reviewer: a host spraying ARP for addresses outside the fabric made a
    packet-in each, and each took the controller's lock from admissions. OpenFlow's
    controller meter bounds them per switch; a leaf's meter listing leaves it alone."""
    from dcilab.core.rules import PACKET_IN_BURST, PACKET_IN_PPS
    for name in ("dc1-leaf1", "dc1-spine1", "dc1-gw1"):
        dpid, out = bring_up(ctl, fabric, name)
        meters = [m for m in out.messages[dpid] if isinstance(m, parser.OFPMeterMod)
                  and m.meter_id == ofp.OFPM_CONTROLLER]
        assert [m.command for m in meters] == [ofp.OFPMC_ADD, ofp.OFPMC_MODIFY]
        assert all(m.flags == ofp.OFPMF_PKTPS | ofp.OFPMF_BURST for m in meters)
        assert [(b.rate, b.burst_size) for b in meters[1].bands] == [
            (PACKET_IN_PPS, PACKET_IN_BURST)]
    ctl.barrier_replied(dpid)
    leaf = fabric.switches["dc1-leaf1"].dpid
    assert ctl.meters_listed(leaf, {ofp.OFPM_CONTROLLER}).messages == {}


def test_all_three_mismatches_at_once(ctl, fabric, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    ports = good_ports(fabric, "dc2-gw1")
    del ports[1]
    ports[2] = "wrong"
    ports[9] = "dl2gw1p9"
    _dpid, _out, problems, errors = described(ctl, fabric, "dc2-gw1", ports, caplog)
    assert len(problems) == 3
    assert len(errors) == 3


def test_reserved_ports_are_not_reported(ctl, fabric, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    ports = good_ports(fabric, "dc1-leaf1") | {ofp.OFPP_CONTROLLER: "ctl"}
    dpid, _out, problems, errors = described(ctl, fabric, "dc1-leaf1", ports, caplog)
    assert problems == [] and errors == []
    # ... nor the bridge's own port going up or down (a hand-builder's log read "port
    # 4294967294 (not in the fabric file) is up").
    caplog.clear()
    assert not ctl.port_changed(dpid, ofp.OFPP_LOCAL, True, 1.0, name="dl1lf1").messages
    assert caplog.records == []


# --- readiness ------------------------------------------------------------------------------


def test_ready_only_after_every_barrier_reply(ctl, fabric):
    names = list(fabric.switches)
    assert len(names) == 12
    dpids = [bring_up(ctl, fabric, name)[0] for name in names]
    assert not ctl.ready
    for dpid in dpids[:-1]:
        ctl.barrier_replied(dpid)
        assert ctl.switches[dpid].programmed
        assert not ctl.ready
    ctl.barrier_replied(dpids[-1])
    assert ctl.ready


def test_ready_says_which_switches_lack_the_files_ports(ctl, fabric, caplog):
    """A tester saw "ready: all 12 switches programmed" on a fabric with a switch missing a
    port: "ready" said nothing of it, though each switch's ERROR had scrolled by."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    dpids = []
    for name in fabric.switches:
        dpid = fabric.switches[name].dpid
        ctl.switch_connected(dpid)
        ports = good_ports(fabric, name)
        if name == "dc1-gw1":
            del ports[5]
        ctl.ports_described(dpid, ports)
        dpids.append(dpid)
    for dpid in dpids:
        ctl.barrier_replied(dpid)
    assert ctl.ready
    [ready] = [r for r in caplog.records if "ready: all" in r.getMessage()]
    assert ready.levelno == logging.WARNING
    assert ready.getMessage() == (
        "fabric two-dc ready: all 12 switches programmed, but not all have the file's ports "
        "(1 with missing or unexpected ports: dc1-gw1): `dcilab switches` lists what differs")


def test_barrier_from_a_disconnected_switch_does_not_count(ctl, fabric):
    dpids = [bring_up(ctl, fabric, name)[0] for name in fabric.switches]
    ctl.switch_disconnected(dpids[0])
    for dpid in dpids:
        ctl.barrier_replied(dpid)
    assert not ctl.switches[dpids[0]].programmed
    assert not ctl.ready


def test_disconnect_resets_and_reconnect_reprograms(ctl, fabric, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    dpids = [bring_up(ctl, fabric, name)[0] for name in fabric.switches]
    for dpid in dpids:
        ctl.barrier_replied(dpid)
    assert ctl.ready
    victim = fabric.switches["dc2-spine1"].dpid
    ctl.switch_disconnected(victim)
    state = ctl.switches[victim]
    assert not state.connected and not state.programmed
    assert not ctl.ready
    assert any(r.levelno == logging.WARNING and "dc2-spine1" in r.getMessage()
               for r in caplog.records)
    # Back again: port request, program, barrier, ready.
    [req] = ctl.switch_connected(victim).messages[victim]
    assert isinstance(req, parser.OFPPortDescStatsRequest)
    out = ctl.ports_described(victim, good_ports(fabric, "dc2-spine1"))
    assert isinstance(out.messages[victim][-1], parser.OFPBarrierRequest)
    assert not ctl.ready
    ctl.barrier_replied(victim)
    assert ctl.ready


# --- ARP ---------------------------------------------------------------------------------


def arp_request(src_mac: str, src_ip: str, dst_ip: str, opcode: int = arp.ARP_REQUEST) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=src_mac,
                                       ethertype=0x0806))
    pkt.add_protocol(arp.arp(opcode=opcode, src_mac=src_mac, src_ip=src_ip,
                             dst_mac="00:00:00:00:00:00", dst_ip=dst_ip))
    pkt.serialize()
    return bytes(pkt.data)


def test_arp_request_for_a_fabric_host_is_answered(ctl, fabric):
    # dc1-h1 (10.1.1.1 on dc1-leaf1 port 1) asks for dc2-h3: site 2, leaf 2, host 3.
    asker_mac, asker_ip = "02:00:0a:01:01:01", "10.1.1.1"
    target_mac, target_ip = "02:00:0a:02:02:03", "10.2.2.3"
    assert fabric.hosts["dc2-h3"].ip == target_ip
    leaf = fabric.switches["dc1-leaf1"].dpid
    out = ctl.packet_in(leaf, 1, arp_request(asker_mac, asker_ip, target_ip))
    assert list(out.messages) == [leaf]
    [msg] = out.messages[leaf]
    assert isinstance(msg, parser.OFPPacketOut)
    assert [(type(a), a.port) for a in msg.actions] == [(parser.OFPActionOutput, 1)]
    reply = packet.Packet(msg.data)
    eth = reply.get_protocol(ethernet.ethernet)
    assert eth.ethertype == 0x0806
    assert eth.src == target_mac
    assert eth.dst == asker_mac
    answer = reply.get_protocol(arp.arp)
    assert answer.opcode == arp.ARP_REPLY
    assert answer.src_mac == target_mac and answer.src_ip == target_ip
    assert answer.dst_mac == asker_mac and answer.dst_ip == asker_ip


def test_arp_reply_goes_out_the_port_it_came_in(ctl, fabric):
    leaf = fabric.switches["dc2-leaf1"].dpid
    out = ctl.packet_in(leaf, 2, arp_request("02:00:0a:02:01:02", "10.2.1.2", "10.1.2.4"))
    [msg] = out.messages[leaf]
    assert [a.port for a in msg.actions] == [2]
    assert packet.Packet(msg.data).get_protocol(arp.arp).src_mac == "02:00:0a:01:02:04"


def test_arp_for_an_unknown_ip_gets_nothing(ctl, fabric):
    leaf = fabric.switches["dc1-leaf1"].dpid
    out = ctl.packet_in(leaf, 1, arp_request("02:00:0a:01:01:01", "10.1.1.1", "10.9.9.9"))
    assert out.messages == {}


def test_arp_reply_packet_in_gets_nothing(ctl, fabric):
    leaf = fabric.switches["dc1-leaf1"].dpid
    data = arp_request("02:00:0a:01:01:01", "10.1.1.1", "10.2.2.3", opcode=arp.ARP_REPLY)
    assert ctl.packet_in(leaf, 1, data).messages == {}


def test_non_arp_packet_in_gets_nothing(ctl, fabric):
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst="02:00:0a:02:02:03", src="02:00:0a:01:01:01",
                                       ethertype=0x0800))
    pkt.add_protocol(ipv4.ipv4(src="10.1.1.1", dst="10.2.2.3", proto=6))
    pkt.add_protocol(tcp.tcp(src_port=40000, dst_port=5201))
    pkt.serialize()
    leaf = fabric.switches["dc1-leaf1"].dpid
    assert ctl.packet_in(leaf, 1, bytes(pkt.data)).messages == {}


def test_a_move_inside_the_sites_is_not_logged_as_a_move_to_its_own_wavelength():
    from types import SimpleNamespace as NS

    from dcilab.core.controller import _where_to
    hop = lambda link, wave=None: NS(link=link, wavelength=wave)     # noqa: E731
    old = NS(hops=[hop("dc1-leaf1~spine1"), hop("w1", "dc1-dc2-a.w1")])
    same = NS(hops=[hop("dc1-leaf1~spine2"), hop("w1", "dc1-dc2-a.w1")])
    other = NS(hops=[hop("dc1-leaf1~spine1"), hop("w2", "dc1-dc2-a.w2")])
    assert _where_to(old, same) == "inside the sites (its wavelengths dc1-dc2-a.w1 stay)"
    assert _where_to(old, other) == "to dc1-dc2-a.w2"
