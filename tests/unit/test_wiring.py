"""Link discovery against the fabric file: a probe that comes in on another port than the
file's far end shows a crossed cable, whose ports go out of service until a probe says the
cable is right again (an outside tester swapped two cables on a spine: nothing said so,
and the traffic routed over them was lost)."""

from __future__ import annotations

import logging

from os_ken.lib.packet import ethernet, lldp, packet
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser as parser

from dcilab.core import FabricController
from dcilab.core.rules import PRIORITY_ARP_HOST
from dcilab.core.wiring import crossed, probe, probed_ports, read_probe
from dcilab.fabric.load import load_fabric
from dcilab.resources import topology_path

from test_core import bring_up


def two_dc():
    return load_fabric(topology_path("two-dc"))


def test_a_probe_names_its_switch_and_port_and_foreign_lldp_is_not_ours():
    key = b"k" * 32
    assert read_probe(probe(0x10201, 3, key), key) == (0x10201, 3)
    other = packet.Packet()
    other.add_protocol(ethernet.ethernet(dst=lldp.LLDP_MAC_NEAREST_BRIDGE,
                                         src="00:11:22:33:44:55", ethertype=0x88CC))
    other.add_protocol(lldp.lldp(tlvs=[
        lldp.ChassisID(subtype=lldp.ChassisID.SUB_MAC_ADDRESS, chassis_id=b"\x00" * 6),
        lldp.PortID(subtype=lldp.PortID.SUB_INTERFACE_NAME, port_id=b"eth0"),
        lldp.TTL(ttl=120), lldp.End()]))
    other.serialize()
    assert read_probe(bytes(other.data), key) is None
    assert read_probe(b"\x00" * 20, key) is None and read_probe(b"", key) is None


def test_crossed_says_which_cable_goes_where():
    fabric = two_dc()
    # dc1-spine1 port 1 is dc1-leaf1~spine1: the leaf's port 3
    assert crossed(fabric, "dc1-spine1", 1, "dc1-leaf1", 3) is None
    assert crossed(fabric, "dc1-spine1", 1, "dc1-leaf2", 3) == (
        "cables crossed: dc1-spine1 port 1 reaches dc1-leaf2 port 3 (the file joins that port "
        "to dc1-leaf2~spine1); the fabric file joins it to dc1-leaf1 port 3 (dc1-leaf1~spine1)")
    assert probed_ports(fabric, "dc1-leaf1") == [3, 4]          # not the hosts' 1 and 2


def test_a_crossed_cable_takes_both_ports_out_of_service_until_it_is_right(caplog):
    caplog.set_level(logging.INFO, logger="dcilab.core")
    fabric = two_dc()
    ctl = FabricController(fabric)
    for name in fabric.switches:
        bring_up(ctl, fabric, name)
    for name in fabric.switches:
        out = ctl.barrier_replied(fabric.switches[name].dpid)
        if name == "dc1-spine1":            # programmed: probes out of its switch ports
            probes = [m for m in out.messages[fabric.switches[name].dpid]
                      if isinstance(m, parser.OFPPacketOut)]
            assert sorted(read_probe(m.data, ctl.probe_key)[1] for m in probes) == [1, 2, 3, 4]
    assert ctl.engine.link_up("dc1-leaf1~spine1") and ctl.engine.link_up("dc1-leaf2~spine1")
    spine, leaf2 = fabric.switches["dc1-spine1"].dpid, fabric.switches["dc1-leaf2"].dpid
    # spine port 1's cable ends at leaf2 port 3 (and port 2's at leaf1 port 3)
    ctl.packet_in(leaf2, 3, probe(spine, 1, ctl.probe_key), now=10.0)
    assert not ctl.engine.link_up("dc1-leaf1~spine1")      # spine port 1's link
    assert not ctl.engine.link_up("dc1-leaf2~spine1")      # leaf2 port 3's link
    for name in fabric.switches:                            # statistics came back
        ctl.load.sample(name, {}, 10.0)
    shown = {(l.link, l.src): l.up for l in ctl.load.snapshot()}
    assert not shown[("dc1-leaf1~spine1", "dc1-spine1")]   # `links`, dcilab_link_up too
    assert shown[("dc1-leaf1~spine2", "dc1-spine2")]
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.startswith("cables crossed: dc1-spine1 port 1 reaches dc1-leaf2 port 3")
    ctl.packet_in(leaf2, 3, probe(spine, 1, ctl.probe_key), now=11.0)     # said once
    # ... also when the same cable's probe comes the other way (said in its own words
    # once more, a few seconds later, before)
    ctl.packet_in(spine, 1, probe(leaf2, 3, ctl.probe_key), now=11.5)
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    ctl.packet_in(leaf2, 3, probe(spine, 1, ctl.probe_key), now=11.8)
    # not only in the log: both switches name it (`dcilab switches`, a metric, an alert)
    assert ctl.wiring_problems() == {"dc1-spine1": [error.split(": both ports")[0]],
                                     "dc1-leaf2": [error.split(": both ports")[0]]}
    # a carrier change on a crossed port does not put it back in service
    ctl.port_changed(spine, 1, True, now=12.0)
    assert not ctl.engine.link_up("dc1-leaf1~spine1")
    # put right: the probes of both ends come in where the file says
    ctl.packet_in(fabric.switches["dc1-leaf1"].dpid, 3, probe(spine, 1, ctl.probe_key), now=20.0)
    ctl.packet_in(spine, 1, probe(fabric.switches["dc1-leaf1"].dpid, 3, ctl.probe_key), now=20.0)
    ctl.packet_in(spine, 2, probe(leaf2, 3, ctl.probe_key), now=20.0)
    assert not ctl._crossed and ctl.wiring_problems() == {}
    for t in (20.0, 40.0, 80.0, 200.0):                    # past any hold-down
        ctl.tick(t)
    assert ctl.engine.link_up("dc1-leaf1~spine1") and ctl.engine.link_up("dc1-leaf2~spine1")
    shown = {(l.link, l.src): l.up for l in ctl.load.snapshot()}
    assert shown[("dc1-leaf1~spine1", "dc1-spine1")]


def test_a_cable_on_a_port_the_file_lacks_is_told_where_to_go(caplog):
    """A hand-builder moved spine port 1's cable to port 5: the port checks said port 1
    missing and port 5 unexpected, and nothing joined the two. The probe does."""
    caplog.set_level(logging.INFO, logger="dcilab.core")
    fabric = two_dc()
    ctl = FabricController(fabric)
    for name in fabric.switches:
        bring_up(ctl, fabric, name)
    leaf1, spine = fabric.switches["dc1-leaf1"].dpid, fabric.switches["dc1-spine1"].dpid
    for now in (10.0, 40.0):                                # probes every interval: said once
        assert not ctl.packet_in(spine, 5, probe(leaf1, 3, ctl.probe_key), now=now).messages
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["cables crossed: dc1-leaf1 port 3 reaches dc1-spine1 port 5; the fabric "
                      "file joins it to dc1-spine1 port 1 (dc1-leaf1~spine1): move that cable"]


def test_a_probe_a_host_forged_or_another_controller_signed_is_ignored(caplog):
    """An outside reviewer's host sent four LLDP frames naming dc1-gw1's wavelength ports
    from dc1-h1: all four wavelengths went out of service for good."""
    caplog.set_level(logging.INFO, logger="dcilab.core")
    fabric = two_dc()
    ctl = FabricController(fabric)
    for name in fabric.switches:
        bring_up(ctl, fabric, name)
        ctl.barrier_replied(fabric.switches[name].dpid)
    gw1, leaf1 = fabric.switches["dc1-gw1"].dpid, fabric.switches["dc1-leaf1"].dpid
    assert read_probe(probe(gw1, 3, b"another key"), ctl.probe_key) is None
    unsigned = probe(gw1, 3, ctl.probe_key).replace(b":", b";", 2)    # signature cut off
    for port in (3, 4, 5, 6):
        ctl.packet_in(leaf1, 1, probe(gw1, port, b"guessed"), now=5.0)  # from dc1-h1's port
        ctl.packet_in(leaf1, 1, unsigned, now=5.0)
    assert not ctl._crossed
    assert all(ctl.engine.link_up(f"dc1-dc2-a.w{i}") for i in range(1, 5))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # the controller's own probe, in a host port, is still a cable where none should be
    ctl.packet_in(leaf1, 1, probe(gw1, 3, ctl.probe_key), now=6.0)
    assert ctl._crossed


def test_probes_go_out_again_every_interval_so_a_quiet_recabling_is_found():
    # A cable moved with no carrier change the controller saw (or a probe lost) was never
    # looked at again: every programmed switch probes once per REPROBE_S, as LLDP does.
    from dcilab.core.controller import REPROBE_S
    fabric = two_dc()
    ctl = FabricController(fabric)
    for name in fabric.switches:
        bring_up(ctl, fabric, name)
        ctl.barrier_replied(fabric.switches[name].dpid)

    def probes(outbox):
        return sorted((dpid, read_probe(m.data, ctl.probe_key)[1])
                      for dpid, messages in outbox.messages.items() for m in messages
                      if isinstance(m, parser.OFPPacketOut))
    assert probes(ctl.tick(100.0)) == []                     # the first round was at start
    assert probes(ctl.tick(100.0 + REPROBE_S - 0.1)) == []
    every = sorted((sw.dpid, port) for sw in fabric.switches.values()
                   for port in probed_ports(fabric, sw.name))
    assert probes(ctl.tick(100.0 + REPROBE_S)) == every
    assert probes(ctl.tick(100.0 + REPROBE_S + 0.1)) == []
    # what such a round finds: spine port 1's cable now ends at leaf2 port 3
    spine, leaf2 = fabric.switches["dc1-spine1"].dpid, fabric.switches["dc1-leaf2"].dpid
    ctl.packet_in(leaf2, 3, probe(spine, 1, ctl.probe_key), now=131.0)
    assert not ctl.engine.link_up("dc1-leaf1~spine1")


def test_a_host_that_is_not_the_files_on_its_port_is_said_and_shown(caplog):
    """An outside tester swapped two hosts' cables on a leaf: every link up, 100 % loss,
    nothing in the log. The leaf copies ARP from a host port by anyone but the file's host
    to the controller (table 0), which names both hosts."""
    from test_core import arp_request
    caplog.set_level(logging.INFO, logger="dcilab.core")
    fabric = two_dc()
    ctl = FabricController(fabric)
    for name in fabric.switches:
        bring_up(ctl, fabric, name)
    h1, h2 = fabric.hosts["dc1-h1"], fabric.hosts["dc1-h2"]
    assert (h1.leaf, h2.leaf) == ("dc1-leaf1", "dc1-leaf1")
    leaf = fabric.switches[h1.leaf].dpid
    # the file's host probing its address (0.0.0.0): nothing to say
    assert not ctl.packet_in(leaf, h1.port, arp_request(h1.mac, "0.0.0.0", h1.ip), 1.0,
                             table_id=0).messages
    assert ctl.wiring_problems() == {}
    # dc1-h2 heard on dc1-h1's port: a copy, not answered again (the leaf did); the
    # first makes the leaf copy dc1-h1's own ARP on that port too, to hear it come back
    listening = ctl.packet_in(leaf, h1.port, arp_request(h2.mac, h2.ip, "10.2.1.1"), 2.0,
                              table_id=0).messages
    assert list(listening) == [leaf] and _copies_to_controller(listening[leaf]) == [True]
    assert not ctl.packet_in(leaf, h1.port, arp_request(h2.mac, h2.ip, "10.2.1.1"), 60.0,
                             table_id=0).messages
    [why] = ctl.wiring_problems()["dc1-leaf1"]
    assert why == (f"dc1-leaf1 port {h1.port} should have dc1-h1 (MAC {h1.mac}, {h1.ip}) but "
                   f"hears MAC {h2.mac} from {h2.ip}, which the fabric file gives dc1-h2 (at "
                   f"dc1-leaf1 port {h2.port}): host cables swapped?")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [why + "; it gets no traffic until it matches the fabric file"]
    # a MAC of no host of the file: said as such
    ctl.packet_in(leaf, h2.port, arp_request("02:00:00:00:00:99", h2.ip, h1.ip), 61.0,
                  table_id=0)
    assert len(ctl.wiring_problems()["dc1-leaf1"]) == 2
    assert ctl.wiring_problems()["dc1-leaf1"][1].endswith(
        "give the host the file's MAC and address, or move its cable")
    # the cable moves (carrier lost): over at once; the other, once no longer heard; and
    # each time the file's host's ARP is no longer copied
    out = ctl.port_changed(leaf, h1.port, False, 62.0).messages
    assert len(ctl.wiring_problems()["dc1-leaf1"]) == 1
    assert _copies_to_controller(out[leaf]) == [False]
    assert not ctl.tick(61.0 + 89.0).messages.get(leaf)
    assert len(ctl.wiring_problems()["dc1-leaf1"]) == 1
    assert _copies_to_controller(ctl.tick(61.0 + 91.0).messages[leaf]) == [False]
    assert ctl.wiring_problems() == {}
    # an ARP the leaf could not answer (from table 3) is still answered by the controller
    out = ctl.packet_in(leaf, h1.port, arp_request(h1.mac, h1.ip, h2.ip), 300.0, table_id=3)
    assert out.messages


def test_a_host_put_right_is_known_from_its_first_arp_not_after_a_silence(caplog):
    """A re-tester's low: a host given back its MAC stayed a problem for 90 s. While a
    stranger is known on a port, the leaf copies the file's host's ARP there too, so the
    controller hears it come back; and a switch that reconnects meanwhile keeps copying."""
    from test_core import arp_request
    caplog.set_level(logging.INFO, logger="dcilab.core")
    fabric = two_dc()
    ctl = FabricController(fabric)
    for name in fabric.switches:
        bring_up(ctl, fabric, name)
    h2 = fabric.hosts["dc1-h2"]
    leaf = fabric.switches[h2.leaf].dpid
    ctl.packet_in(leaf, h2.port, arp_request("02:00:00:00:00:99", h2.ip, "10.2.1.1"), 1.0,
                  table_id=0)
    # the leaf reconnects: its program keeps the copy of dc1-h2's ARP (after its own rule)
    ctl.switch_disconnected(leaf, 2.0)
    program = bring_up(ctl, fabric, "dc1-leaf1")[1].messages[leaf]
    own = [m for m in _flow_mods(program) if m.priority == PRIORITY_ARP_HOST
           and dict(m.match.items()).get("in_port") == h2.port]
    assert [_copies_to_controller([m]) for m in own] == [[False], [True]]
    assert list(ctl.wiring_problems()) == ["dc1-leaf1"]
    # dc1-h2 with its own MAC again: put right at its first ARP
    out = ctl.packet_in(leaf, h2.port, arp_request(h2.mac, h2.ip, "10.2.1.1"), 5.0,
                        table_id=0).messages
    assert ctl.wiring_problems() == {}
    assert _copies_to_controller(out[leaf]) == [False]
    assert "dc1-leaf1 port 2: the fabric file's host is heard there again" in caplog.text
    # and heard again later: nothing to do
    assert not ctl.packet_in(leaf, h2.port, arp_request(h2.mac, h2.ip, "10.2.1.1"), 6.0,
                             table_id=0).messages


def _flow_mods(msgs: list) -> list:
    """The flow mods among `msgs`, bundled or not."""
    found = []
    for msg in msgs:
        if isinstance(msg, parser.OFPFlowMod):
            found.append(msg)
        elif isinstance(msg, parser.ONFBundleAddMsg):
            found += _flow_mods([msg.message])
    return found


def _copies_to_controller(msgs: list) -> list[bool]:
    """For each flow mod among `msgs`: whether it copies the packet to the controller."""
    return [any(getattr(action, "port", None) == ofproto_v1_3.OFPP_CONTROLLER
                for inst in fm.instructions for action in getattr(inst, "actions", ()))
            for fm in _flow_mods(msgs)]
