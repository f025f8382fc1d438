"""FabricController: the controller's state machine, in the style of faucet's Valve.

Each event method takes what the switch said and returns the OpenFlow messages to send
back, per datapath id; it never touches a socket, a thread or the clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from os_ken.lib.packet import arp, ethernet, packet

from ..fabric import Fabric
from ..openflow import messages as of
from ..te.paths import LatencyGraph
from .ports import port_problems
from .rules import compile_fabric

log = logging.getLogger("dcilab.core")


@dataclass
class Outbox:
    """Messages to send, per datapath id, in order."""

    messages: dict[int, list] = field(default_factory=dict)

    def add(self, dpid: int, msgs: list) -> "Outbox":
        if msgs:
            self.messages.setdefault(dpid, []).extend(msgs)
        return self


@dataclass
class SwitchState:
    name: str
    connected: bool = False
    program_sent: bool = False   # its rules went out, with a barrier behind them
    programmed: bool = False     # ... and the barrier came back
    problems: list[str] = field(default_factory=list)


class FabricController:
    """Knows the whole fabric from its file; programs each switch as it connects."""

    def __init__(self, fabric: Fabric):
        self.fabric = fabric
        self.graph = LatencyGraph(fabric)
        self._programs = compile_fabric(fabric, self.graph)
        self.switches = {sw.dpid: SwitchState(sw.name) for sw in fabric.switches.values()}
        self._hosts_by_ip = {h.ip: h for h in fabric.hosts.values()}

    # -- switch lifecycle ------------------------------------------------------------

    def switch_connected(self, dpid: int) -> Outbox:
        """A switch finished the OpenFlow handshake: ask for its ports before programming."""
        state = self.switches.get(dpid)
        if state is None:
            known = ", ".join(f"{s.name}={s.dpid:#x}" for s in self.fabric.switches.values())
            log.error("switch with dpid %#x connected, but fabric %r has no such switch; "
                      "leaving it unprogrammed (known: %s)", dpid, self.fabric.name, known)
            return Outbox()
        state.connected, state.program_sent, state.programmed = True, False, False
        log.info("switch %s (dpid %#x) connected", state.name, dpid)
        return Outbox().add(dpid, [of.port_desc_request()])

    def ports_described(self, dpid: int, ports: dict[int, str]) -> Outbox:
        """The switch listed its ports: check them against the file, then program it."""
        state = self.switches.get(dpid)
        if state is None or not state.connected:
            return Outbox()
        state.problems = port_problems(self.fabric, state.name, ports)
        for problem in state.problems:
            log.error("switch %s does not match fabric %r: %s", state.name, self.fabric.name,
                      problem)
        state.program_sent = True
        return Outbox().add(dpid, self._programs[state.name] + [of.barrier()])

    def barrier_replied(self, dpid: int) -> Outbox:
        """The switch has applied everything sent before the barrier."""
        state = self.switches.get(dpid)
        if state is None or not state.program_sent or state.programmed:
            return Outbox()
        state.programmed = True
        done = sum(s.programmed for s in self.switches.values())
        log.info("switch %s programmed (%d of %d)", state.name, done, len(self.switches))
        if self.ready:
            log.info("fabric %s ready: all %d switches programmed", self.fabric.name, done)
        return Outbox()

    def switch_disconnected(self, dpid: int) -> None:
        state = self.switches.get(dpid)
        if state is not None and state.connected:
            state.connected = state.program_sent = state.programmed = False
            log.warning("switch %s (dpid %#x) disconnected", state.name, dpid)

    def port_changed(self, dpid: int, port: int, up: bool) -> None:
        state = self.switches.get(dpid)
        if state is None:
            return
        link = self.fabric.ports(state.name).get(port)
        log.info("switch %s port %d (%s) is %s", state.name, port,
                 link.name if link else "not in the fabric file", "up" if up else "down")

    @property
    def ready(self) -> bool:
        return all(s.programmed for s in self.switches.values())

    # -- packets -----------------------------------------------------------------------

    def packet_in(self, dpid: int, in_port: int, data: bytes) -> Outbox:
        """Answer ARP requests for fabric hosts from the file; nothing else comes here."""
        state = self.switches.get(dpid)
        if state is None:
            return Outbox()
        pkt = packet.Packet(data)
        request = pkt.get_protocol(arp.arp)
        if request is None or request.opcode != arp.ARP_REQUEST:
            return Outbox()
        target = self._hosts_by_ip.get(request.dst_ip)
        if target is None:
            log.debug("ARP for %s from %s port %d: not a fabric host", request.dst_ip,
                      state.name, in_port)
            return Outbox()
        return Outbox().add(dpid, [of.packet_out(in_port, _arp_reply(request, target.mac))])


def _arp_reply(request: arp.arp, mac: str) -> bytes:
    reply = packet.Packet()
    reply.add_protocol(ethernet.ethernet(ethertype=ethernet.ether.ETH_TYPE_ARP,
                                         dst=request.src_mac, src=mac))
    reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=mac, src_ip=request.dst_ip,
                               dst_mac=request.src_mac, dst_ip=request.src_ip))
    reply.serialize()
    return bytes(reply.data)
