"""FabricController: the controller's state machine, in the style of faucet's Valve.

Each event method takes what the switch said and returns the OpenFlow messages to send
back, per datapath id; it never touches a socket, a thread or the clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from os_ken.lib.packet import arp, ethernet, packet

from ..fabric import Fabric
from ..fabric.model import LEAF
from ..openflow import messages as of
from ..te.elephants import FlowKey
from ..te.load import LinkLoad, LoadTracker, directions
from ..te.paths import LatencyGraph
from ..te.reservations import (DEFAULT_RESERVABLE_FRACTION, Reservation, ReservationBook,
                               ReservationRequest, State)
from . import reservation_rules
from .ports import port_problems
from .rules import TABLE_FLOWS, compile_switch, forwarding
from .steering import Steering

log = logging.getLogger("dcilab.core")


@dataclass
class Outbox:
    """Messages to send, per datapath id, in order; and reservations whose state changed
    (for the caller to persist)."""

    messages: dict[int, list] = field(default_factory=dict)
    changed: list[Reservation] = field(default_factory=list)
    placements: int = 0          # elephants placed (or moved) by this event

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
    barriers_sent: int = 0       # barriers since it connected; replies come back in order
    barriers_acked: int = 0
    program_barrier: int = 0


class FabricController:
    """Knows the whole fabric from its file; programs each switch as it connects."""

    def __init__(self, fabric: Fabric,
                 reservable_fraction: float = DEFAULT_RESERVABLE_FRACTION,
                 policy: str = "loadaware", elephant_fraction: float = 0.1,
                 elephant_polls: int = 2, max_stretch: float = 1.5):
        self.fabric = fabric
        self.graph = LatencyGraph(fabric)
        self.steering = Steering(fabric, self.graph, policy, elephant_fraction, elephant_polls,
                                 max_stretch)
        # `shortest` keeps one next hop everywhere: one path, one wavelength per site pair.
        self._spread = policy != "shortest"
        # Computed on first use: a large fabric's API answers before any switch connects.
        self._routes: dict[str, dict[str, tuple[int, ...]]] | None = None
        self._compiled: dict[str, list] = {}
        self.switches = {sw.dpid: SwitchState(sw.name) for sw in fabric.switches.values()}
        self._dpid = {sw.name: sw.dpid for sw in fabric.switches.values()}
        self.book = ReservationBook(fabric, reservable_fraction)
        self.load = LoadTracker(fabric)
        # reservation id -> switch -> barrier seq that acknowledges its rules there
        # (None: waiting for the switch to connect and be programmed)
        self._waiting: dict[str, dict[str, int | None]] = {}

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
        state.barriers_sent = state.barriers_acked = state.program_barrier = 0
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
        msgs = list(self._program(state.name))
        pairs = {}
        for res in self.book.live():            # one set of rules per host pair
            pairs.setdefault((res.request.src_host, res.request.dst_host), res)
        for res in pairs.values():
            msgs += reservation_rules.install(self.fabric, res,
                                              self.book.pair_bps(res)).get(state.name, [])
        msgs += self.steering.program(state.name)
        state.program_sent = True
        state.program_barrier = self._barrier_seq(state)
        for needs in self._waiting.values():
            if state.name in needs:
                needs[state.name] = state.program_barrier
        return Outbox().add(dpid, msgs + [of.barrier()])

    def _program(self, switch: str) -> list:
        """The base rules of `switch` (computed once, kept for reconnects)."""
        if self._routes is None:
            self._routes = forwarding(self.fabric, self.graph, self._spread)
        if switch not in self._compiled:
            self._compiled[switch] = compile_switch(self.fabric, switch, self._routes[switch])
        return self._compiled[switch]

    @staticmethod
    def _barrier_seq(state: SwitchState) -> int:
        state.barriers_sent += 1
        return state.barriers_sent

    def barrier_replied(self, dpid: int) -> Outbox:
        """The switch has applied everything sent before this barrier."""
        state = self.switches.get(dpid)
        if state is None or not state.program_sent:
            return Outbox()
        state.barriers_acked += 1
        outbox = Outbox()
        if not state.programmed and state.barriers_acked >= state.program_barrier:
            state.programmed = True
            done = sum(s.programmed for s in self.switches.values())
            log.info("switch %s programmed (%d of %d)", state.name, done, len(self.switches))
            if self.ready:
                log.info("fabric %s ready: all %d switches programmed", self.fabric.name, done)
        for rid, needs in list(self._waiting.items()):
            if all(seq is not None and self._acked(sw, seq) for sw, seq in needs.items()):
                del self._waiting[rid]
                if self.book.get(rid).state == State.PENDING:
                    res = self.book.set_state(rid, State.ACTIVE)
                    log.info("reservation %s active: its rules are on every switch of its path",
                             rid)
                    outbox.changed.append(res)
        return outbox

    def _acked(self, switch: str, seq: int) -> bool:
        state = self.switches[self._dpid[switch]]
        return state.program_sent and state.barriers_acked >= seq

    def switch_disconnected(self, dpid: int) -> None:
        state = self.switches.get(dpid)
        if state is not None and state.connected:
            state.connected = state.program_sent = state.programmed = False
            log.warning("switch %s (dpid %#x) disconnected", state.name, dpid)
            self.load.switch_down(state.name)
            for needs in self._waiting.values():
                if state.name in needs:
                    needs[state.name] = None

    def port_changed(self, dpid: int, port: int, up: bool) -> None:
        state = self.switches.get(dpid)
        if state is None:
            return
        link = self.fabric.ports(state.name).get(port)
        self.load.port_state(state.name, port, up)
        log.info("switch %s port %d (%s) is %s", state.name, port,
                 link.name if link else "not in the fabric file", "up" if up else "down")

    @property
    def ready(self) -> bool:
        return all(s.programmed for s in self.switches.values())

    # -- reservations ------------------------------------------------------------------

    def reserve(self, request: ReservationRequest, reservation_id: str, now: float) -> Outbox:
        """Admit `request` (AdmissionError if it cannot be) and pin it onto the switches of
        its path that are programmed; the rest get it in their program when they connect."""
        before = len(self.book.reservations)
        res = self.book.admit(request, reservation_id, now)
        outbox = Outbox()
        if len(self.book.reservations) == before:   # an idempotent retry: nothing new
            return outbox
        outbox.changed.append(res)
        self._install(res, outbox)
        return outbox

    def restore(self, res: Reservation) -> None:
        """Book a reservation read back from the store (its rules go out on connect)."""
        self.book.add(res)
        if res.state == State.PENDING:
            self._waiting[res.reservation_id] = {h.switch: None for h in res.hops}

    def end(self, reservation_id: str, state: State = State.RELEASED) -> Outbox:
        """Release (or expire) a live reservation and remove its rules; NOT_FOUND for
        any other id (the book forgets ended ones; their record is the service's)."""
        res = self.book.end(reservation_id, state)
        outbox = Outbox()
        self._waiting.pop(reservation_id, None)
        outbox.changed.append(res)
        remaining = self.book.pair_bps(res)
        rules = (reservation_rules.resize(self.fabric, res, remaining) if remaining
                 else reservation_rules.remove(self.fabric, res, self._sent_to(res)))
        for switch, msgs in rules.items():
            if self.switches[self._dpid[switch]].program_sent:
                outbox.add(self._dpid[switch], msgs)
        log.info("reservation %s %s", reservation_id, state.value.lower())
        return outbox

    def undo(self, res: Reservation, previous: Reservation | None) -> Outbox:
        """Take back a change the caller could not persist: `res` as this core made it,
        `previous` as it was last saved (None: never saved). Returns the messages that
        bring the switches back in line (the caller sent none of the change's own)."""
        rid = res.reservation_id
        booked = self.book.reservations.get(rid)
        if previous is None:                         # a new one: unbook it
            if booked is None:
                return Outbox()
            alone = len(self.book.pair_members(res.request.src_host, res.request.dst_host)) == 1
            outbox = self.end(rid, State.RELEASED)
            # Its rules never went out: nothing to remove, unless its pair's meter was
            # resized for it since (by a later change that was sent).
            return Outbox() if alone else Outbox(messages=outbox.messages)
        if booked is None and previous.state.live:   # an end: book it again
            self.book.add(previous)
        elif booked is not None:                     # a state change: the state as saved
            self.book.set_state(rid, previous.state)
        else:
            return Outbox()
        if previous.state == State.PENDING:
            # Its rules were sent (or go out on connect): active again at the next barrier
            # each programmed switch acknowledges.
            self._waiting[rid] = {
                h.switch: (self.switches[self._dpid[h.switch]].barriers_sent
                           if self.switches[self._dpid[h.switch]].program_sent else None)
                for h in previous.hops}
        return Outbox()

    def expire(self, now: float) -> Outbox:
        outbox = Outbox()
        for rid in self.book.due(now):
            done = self.end(rid, State.EXPIRED)
            outbox.changed += done.changed
            for dpid, msgs in done.messages.items():
                outbox.add(dpid, msgs)
        return outbox

    def _sent_to(self, res: Reservation) -> set[str]:
        """The switches of its path that have their program (the rest get it later)."""
        return {h.switch for h in res.hops if self.switches[self._dpid[h.switch]].program_sent}

    def _install(self, res: Reservation, outbox: Outbox) -> None:
        pair_bps = self.book.pair_bps(res)
        if pair_bps > res.bandwidth_bps:             # the pair's path is already in place
            first = self.book.pair_members(res.request.src_host, res.request.dst_host)[0]
            # ... or still going in: wait for what the first one waits for too.
            needs: dict[str, int | None] = dict(self._waiting.get(first.reservation_id, {}))
            rules = reservation_rules.resize(self.fabric, res, pair_bps)
        else:
            needs = {h.switch: None for h in res.hops}
            rules = reservation_rules.install(self.fabric, res, pair_bps, self._sent_to(res))
        for switch, msgs in rules.items():
            state = self.switches[self._dpid[switch]]
            if state.program_sent:
                outbox.add(self._dpid[switch], msgs + [of.barrier()])
                needs[switch] = self._barrier_seq(state)
            else:
                needs[switch] = None
        self._waiting[res.reservation_id] = needs

    # -- load ----------------------------------------------------------------------------

    @property
    def policy(self) -> str:
        return self.steering.policy

    def stats_requests(self) -> Outbox:
        """A poll: port statistics from every programmed switch, flow counters from every
        leaf; and, from what the last poll measured, elephants revisited."""
        outbox = Outbox()
        moved, placements = self.steering.revisit(self._background())
        self._send_to(outbox, moved)
        outbox.placements = placements
        for dpid, state in self.switches.items():
            if state.programmed:
                outbox.add(dpid, [of.port_stats_request()])
                if self.fabric.switches[state.name].role == LEAF:
                    outbox.add(dpid, [of.flow_stats_request(TABLE_FLOWS)])
        return outbox

    def flow_stats(self, dpid: int, counters: dict[FlowKey, int], now: float) -> Outbox:
        """A leaf's learned per-flow byte counters: find elephants, place and pin them."""
        state = self.switches.get(dpid)
        outbox = Outbox()
        if state is None or not state.connected:
            return outbox
        msgs, outbox.placements = self.steering.sample(state.name, counters, now,
                                                       self._background())
        self._send_to(outbox, msgs)
        return outbox

    def _send_to(self, outbox: Outbox, msgs: dict[str, list]) -> None:
        for switch, switch_msgs in msgs.items():
            if self.switches[self._dpid[switch]].program_sent:
                outbox.add(self._dpid[switch], switch_msgs)

    def _background(self) -> dict[tuple[str, str], float]:
        """Measured rate plus reserved bandwidth on each directed wavelength, real b/s."""
        out = {}
        for link in self.fabric.wavelengths():
            for d in directions(link):
                out[(d.link, d.src)] = (self.load.rate_bps(d)
                                        + self.book.reserved.get(d, 0.0))
        return out

    def port_stats(self, dpid: int, counters: dict[int, tuple[int, int]], now: float) -> None:
        """A port statistics reply: port -> (tx_bytes, rx_bytes)."""
        state = self.switches.get(dpid)
        if state is not None and state.connected:
            self.load.sample(state.name, counters, now)

    def link_loads(self) -> list[LinkLoad]:
        return self.load.snapshot(self.book.reserved)

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
        target = self.fabric.host_by_ip(request.dst_ip)
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
