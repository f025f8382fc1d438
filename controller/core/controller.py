"""FabricController: the controller's state machine, in the style of faucet's Valve.

Each event method takes what the switch said and returns the OpenFlow messages to send
back, per datapath id; it never touches a socket, a thread or the clock.

Failures are events like any other: a port going down (`port_changed`), a switch going
away (`switch_disconnected`). Each marks the path engine, and `_restore` then brings the
network to what the live graph says, make before break: routes, groups and detours are
recomputed and only their differences sent; reservations whose path broke move to a live
path with room, or become DEGRADED; pinned elephants are placed again. The switches have
already steered around the failure by then (fast-failover groups, watched buckets); the
controller re-optimizes. A link that comes back is held down first, longer each time it
flaps (`damping`), so nothing oscillates.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from os_ken.lib.packet import arp, ethernet, packet

from ..fabric import Fabric
from ..fabric.model import HOST, LEAF, Host, Link
from ..openflow import messages as of
from ..te.elephants import PIN_HOLD_S, FlowKey, FlowRecord
from ..te.load import LinkLoad, LoadTracker, directions
from ..te.paths import PathEngine
from ..te.placement import DEFAULT_MAX_STRETCH, Reserved
from ..te.reservations import (DEFAULT_RESERVABLE_FRACTION, AdmissionError, Reservation,
                               OVER_BOUND, ReservationBook, ReservationRequest, State, key_of,
                               lacks_standby)
from . import elephant_rules, reservation_rules, wiring
from .damping import LinkDamping
from .ports import port_problems
from .rules import TABLE_CLASSIFY, TABLE_FLOWS, Programs, Routing, diff, host_arp_rule
from .steering import (HASHED, RESERVATION, RESERVATION_IF_MARKED, SHORTEST, ElephantView,
                       Steering)

log = logging.getLogger("dcilab.core")
# A DEGRADED reservation's reason, the one record of why that survives a restart: what
# displaced it and the refusal, or, once that is over, that still no path has room.
NO_OTHER_ROOM = " and no other path has room: "
NONE_UP = ", so "                       # ... when no path is up at all, room or not
STILL_NO_ROOM = "no path has room since"


def displaced(why: str, refusal: str) -> str:
    return f"{why}{NONE_UP if refusal.startswith('no path') else NO_OTHER_ROOM}{refusal}"


def still_no_room(reason: str, refusal: str) -> str:
    """The reason once what `reason` names is over (said once: already so, kept)."""
    if reason.startswith(STILL_NO_ROOM):
        return reason
    cause = reason.split(NO_OTHER_ROOM)[0].split(NONE_UP)[0]
    # "then ... over now": a re-tester read "(w1 is out of use ...)" as still so
    return f"{STILL_NO_ROOM} it was displaced (then: {cause}; over now): {refusal}"


# A drained wavelength back in use: links return, as at link_up, but no failure ended
# (counted as a recovery, the failure events showed 4 link_up against 0 link_down after
# a step down and up: an SRE tester's).
RESUMED = "resumed"
RETURNS = frozenset({"link_up", RESUMED})


@dataclass
class Outbox:
    """Messages to send, per datapath id, in order; and reservations whose state changed
    (for the caller to persist)."""

    messages: dict[int, list] = field(default_factory=dict)
    changed: list[Reservation] = field(default_factory=list)
    placements: int = 0          # elephants placed (or moved) by this event
    # (event kind, name): link_down, link_up, switch_down, and RESUMED (a wavelength back
    # in use after a drain for a mode change: a return, not a failure's end)
    faults: list[tuple[str, str]] = field(default_factory=list)
    restored: bool = False       # the network was brought to the live graph
    # What it sends beyond reservations' rules that the core counts as sent at once (see
    # `FabricController.lost`): per switch, the routing it held before and the program
    # that was on; switches it carries a whole program to; switches it pins elephants on.
    routing_before: dict[int, tuple[int, Routing]] = field(default_factory=dict)
    programs: set[int] = field(default_factory=set)
    pins: set[int] = field(default_factory=set)

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
    ports: dict[int, str] = field(default_factory=dict)    # as it last listed them: no -> name
    said_up: dict[int, bool] = field(default_factory=dict)  # the state each port was logged in
    barriers_sent: int = 0       # barriers since it connected; replies come back in order
    barriers_acked: int = 0
    program_barrier: int = 0
    described: bool = False      # listed its ports since it connected
    atomic: bool = True          # programs go as one bundle (until it refuses one)
    program_no: int = 0          # which program it was sent (numbered across switches)


# While a switch's first seconds pass (BFD sessions starting, ports settling), a port that
# drops and returns is the switch coming up, not a flapping fibre: no hold-down then.
STARTUP_GRACE_S = 10.0
# Link probes go out again this often from every programmed switch, as LLDP's default
# transmit interval (IEEE 802.1AB msgTxInterval, 30 s): a cable moved without a carrier
# change the controller saw, or a probe lost, is found within one interval.
REPROBE_S = 30.0
# A host on the wrong port (or with another MAC or address) is said while its ARP keeps
# coming, and forgotten this long after the last (the file's host's own ARP is not copied
# to the controller, so a repair is known only by the silence), or at once when its port
# loses carrier (the cable moved). A host that talks re-checks a neighbour within about a
# minute (Linux: reachable 15-45 s, then 5 s of delay before it probes).
STRANGER_S = 90.0
# PROTECTED pairs left without a standby look for one again this often too, besides when a
# link returns or room is released (a re-tester saw room come back unnoticed: what moved
# back after a repair, in an order the look at that moment did not see).
REPROTECT_S = 10.0
# One failure's port statuses (a line system's wavelengths, a gateway's ports) arrive
# within this of its first (0.2 s apart seen on the emulation): meanwhile standbys it may
# fail are not shed, afterwards what still holds more than its links carry is.
FAILURE_SETTLE_S = 3.0
# Restoring moves other aggregates aside for a pair no path has room for (a re-packing
# may take HiGHS 0.2 s, under the service's lock): at most this many pairs a restoration;
# the rest are tried at the next tick, and a pair whose try found nothing only once room
# or the links have changed.
ROOM_MAKING_PER_RESTORE = 2


class FabricController:
    """Knows the whole fabric from its file; programs each switch as it connects."""

    def __init__(self, fabric: Fabric,
                 reservable_fraction: float = DEFAULT_RESERVABLE_FRACTION,
                 policy: str = "loadaware", elephant_fraction: float = 0.1,
                 elephant_polls: int = 2, max_stretch: float = DEFAULT_MAX_STRETCH,
                 protection: bool = True, pin_hold_s: float = PIN_HOLD_S,
                 gather_s: float = 0.0):
        self.fabric = fabric
        # At start, switches are programmed together once all have listed their ports (or
        # `gather_s` after the first did): switches still running a previous controller's
        # rules, programmed one by one as they reconnect, would disagree for a moment about
        # a link that changed state meanwhile (a loop, lost packets). 0: one by one.
        self.gather_s = gather_s
        self._gathered = gather_s <= 0
        self._gather_until: float | None = None
        self._partial_start = False   # programmed at the deadline without some switch
        self.engine = PathEngine(fabric)       # the one path engine: everything asks it
        self.steering = Steering(fabric, self.engine, policy, elephant_fraction, elephant_polls,
                                 max_stretch, pin_hold_s=pin_hold_s)
        # `shortest` keeps one next hop everywhere: one path, one wavelength per site pair.
        # Computed on first use: a large fabric's API answers before any switch connects.
        self.programs = Programs(fabric, self.engine, spread=policy != "shortest",
                                 protect=protection)
        self._sent: dict[str, Routing] = {}    # the routing each switch was last sent
        self.switches = {sw.dpid: SwitchState(sw.name) for sw in fabric.switches.values()}
        self._dpid = {sw.name: sw.dpid for sw in fabric.switches.values()}
        self.book = ReservationBook(fabric, reservable_fraction, self.engine)
        # (switch, port) reported down (carrier or liveness); link -> when it may be used
        # again; link -> downs. A port is down if reported so or on a crossed cable.
        self._carrier_down: set[tuple[str, int]] = set()
        self._crossed: dict[tuple[str, int], str] = {}     # (switch, port) -> why
        self._misplaced: set[tuple[str, int, str, int]] = set()   # probes said, on ports
        # (leaf, port) -> (why, last heard): a host there that is not the file's
        self._strangers: dict[tuple[str, int], tuple[str, float]] = {}
        self.new_state_file: str | None = None   # the state file, when this start made it
        self._reprobe_at: float | None = None              # next round of link probes
        self._reprotect_at = 0.0                           # next look for lost standbys
        self.probe_key = wiring.probe_key()      # signs link probes: hosts cannot forge one
        self.damping = LinkDamping()             # hold-downs of links that came back
        self._settling: dict[str, float] = {}   # wavelength -> when it went down
        self.book.settling = frozenset()
        self._described_at: dict[str, float] = {}   # switch -> when it last listed its ports
        self._unplaced = False   # a failure's reservations and elephants wait for `tick`
        self._loose_due = False  # elephants whose reservation ended wait for `tick` too
        self._returned = False   # ... and so does moving back onto a link that returned
        self._back: set[str] = set()    # links returned since elephants were last spread
        # PROTECTED pairs a failure left without a standby may have one once a link returns
        # or a reservation ends: looked for at the next `tick` (never on a release's path).
        self._unprotected = False
        self._reprotect_due = False
        # DEGRADED reservations wait for room: a release or an expiry may give it
        self._degraded = False
        self._room_tries_left = ROOM_MAKING_PER_RESTORE
        # (the book's layout, pairs whose making room found nothing in that layout)
        self._no_room_made: tuple[tuple[int, int], set] = ((-1, -1), set())
        self.load = LoadTracker(fabric)
        # reservation id -> switch -> barrier seq that acknowledges its rules there
        # (None: waiting for the switch to connect and be programmed)
        self._waiting: dict[str, dict[str, int | None]] = {}
        self._bundles = 0                # ids of the atomic programs sent on connect
        self._programs_sent = 0
        # Sent in changes that could not be saved (`lost`), to be sent again (`resend`).
        self._resend_programs: set[int] = set()
        self._resend_pins: set[int] = set()

    # -- switch lifecycle ------------------------------------------------------------

    def switch_connected(self, dpid: int, peer: str = "") -> Outbox:
        """A switch finished the OpenFlow handshake (from `peer`, its address): ask for its
        ports before programming."""
        state = self.switches.get(dpid)
        if state is None:
            known = ", ".join(f"{s.name}={s.dpid:#x}" for s in self.fabric.switches.values())
            log.error("switch with dpid %#x connected%s, but fabric %r has no such switch; "
                      "leaving it unprogrammed (known: %s)", dpid,
                      f" from {peer}" if peer else "", self.fabric.name, known)
            return Outbox()
        state.connected, state.program_sent, state.programmed = True, False, False
        state.described = False
        state.barriers_sent = state.barriers_acked = state.program_barrier = 0
        log.info("switch %s (dpid %#x) connected", state.name, dpid)
        return Outbox().add(dpid, [of.port_desc_request()])

    def ports_described(self, dpid: int, ports: dict[int, str],
                        down: frozenset[int] = frozenset(), now: float = 0.0) -> Outbox:
        """The switch listed its ports (`down`: those without carrier or liveness): check
        them against the file, then program it on the live graph; the rest of the fabric
        starts using it (or stops using its dead ports) make before break."""
        state = self.switches.get(dpid)
        if state is None or not state.connected:
            return Outbox()
        outbox = Outbox()
        self._described_at[state.name] = now
        state.ports = dict(ports)
        for port, link in self.fabric.ports(state.name).items():
            usable = port in ports and port not in down   # a port it lacks is as good as down
            state.said_up[port] = usable
            if link.kind == HOST:       # `dcilab links` shows it; routing has no part in it
                self.load.port_state(state.name, port, usable)
            else:
                self._port_state(state.name, port, usable, now, outbox)
        self.engine.set_switch(state.name, True)
        state.problems = port_problems(self.fabric, state.name, ports)
        for problem in state.problems:
            log.error("switch %s does not match fabric %r: %s", state.name, self.fabric.name,
                      problem)
        if self.gather_s > 0 and not self._gathered:
            state.described = True
            if self._gather_until is None:
                self._gather_until = now + self.gather_s
            if not all(s.described for s in self.switches.values()):
                return outbox           # programmed with the others (or at the deadline)
            return self._program_gathered(outbox)
        return self._program(dpid, state, outbox)

    def _program_gathered(self, outbox: Outbox) -> Outbox:
        """Program every switch that has listed its ports, together (see `gather_s`)."""
        self._gathered = True
        for dpid, state in self.switches.items():
            if state.connected and state.described and not state.program_sent:
                self._program(dpid, state, outbox)
        return outbox

    def _program(self, dpid: int, state: SwitchState, outbox: Outbox,
                 placements: bool = True) -> Outbox:
        """The whole program of a switch that listed its ports, then a barrier; the rest of
        the fabric follows the live graph, and so do reservations (with `placements`)."""
        msgs = self.programs.full(state.name)
        msgs += [host_arp_rule(self._host_at(leaf, port), listen=True)
                 for leaf, port in self._strangers if leaf == state.name]
        self._sent[state.name] = self.programs.current(state.name)
        pairs = {}
        for res in self.book.live():            # one set of rules per host pair
            if res.holds_bandwidth:             # a DEGRADED pair has none until restored
                pairs.setdefault(key_of(res.request), res)
        for res in pairs.values():
            msgs += reservation_rules.install(self.fabric, res,
                                              self.book.pair_bps(res)).get(state.name, [])
        msgs += self.steering.program(state.name)
        state.program_sent = True
        self._programs_sent += 1
        state.program_no = self._programs_sent
        outbox.programs.add(dpid)
        # From empty tables, yet atomically: the rules a restarted controller finds in
        # place keep forwarding until the whole new program replaces them.
        if state.atomic:
            self._bundles += 1
            msgs = of.atomically(msgs, self._bundles)
        outbox.add(dpid, msgs)
        if self.fabric.switches[state.name].role == LEAF:
            # Connecting keeps meters: it lists them, for those left by pairs that ended
            # while no program could remove them (see `meters_listed`).
            outbox.add(dpid, [of.meter_config_request()])
        self._restore(outbox, placements)   # the rest of the fabric follows, reservations too
        state.program_barrier = self._barrier_seq(state)
        for needs in self._waiting.values():
            if state.name in needs:
                needs[state.name] = state.program_barrier
        return outbox.add(dpid, [of.barrier()])

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
            # It sends LLDP to the controller now: its neighbours' probes are checked, and
            # its own go out to them (lost at a neighbour not yet programmed, whose own
            # probes come back here once it is).
            outbox.add(dpid, self._probes(dpid, state.name))
            done = sum(s.programmed for s in self.switches.values())
            log.info("switch %s programmed (%d of %d)", state.name, done, len(self.switches))
            if self.ready:
                unlike = sorted(s.name for s in self.switches.values() if s.problems)
                if unlike:      # said at each switch already; "ready" must not hide them
                    log.warning("fabric %s ready: all %d switches programmed, but not all "
                                "have the file's ports (%d with missing or unexpected ports: "
                                "%s): `dcilab switches` lists what differs", self.fabric.name,
                                done, len(unlike),
                                ", ".join(unlike[:5]) + (", ..." if len(unlike) > 5 else ""))
                else:
                    log.info("fabric %s ready: all %d switches programmed", self.fabric.name,
                             done)
            if self.ready or (self._partial_start and all(
                    s.programmed for s in self.switches.values() if s.connected)):
                # Links may be up that reservations avoid (repaired while this controller
                # was down, or while a switch was away), and standbys may be missing: at
                # the next tick, move onto shorter paths and look for standbys again. Also
                # when a start went ahead without some switch (it may be dead for good).
                self._partial_start = False
                self._returned = self._unplaced = True
                self._unprotected = self._unprotected or bool(self.book.unprotected())
        active = []
        for rid, needs in list(self._waiting.items()):
            if all(seq is not None and self._acked(sw, seq) for sw, seq in needs.items()):
                del self._waiting[rid]
                if self.book.get(rid).state == State.PENDING:
                    active.append(self.book.set_state(rid, State.ACTIVE))
        if active:      # one line for all (a restart brings hundreds at once)
            ids = ", ".join(r.reservation_id for r in active[:3]) + (
                f" and {len(active) - 3} more" if len(active) > 3 else "")
            log.info("reservations %s active: their rules are on every switch of their path",
                     ids)
            outbox.changed += active
        return outbox

    def program_refused(self, dpid: int) -> Outbox:
        """The switch refused its program's bundle (no bundle extension, or a message in it
        it would not take): nothing of it was applied. It is programmed again, as it is
        now, one message at a time (from empty tables: its traffic may see a gap), behind
        a barrier of its own; the barrier behind the refused bundle no longer counts."""
        state = self.switches.get(dpid)
        if state is None or not state.connected or not state.program_sent:
            return Outbox()
        log.warning("switch %s refused its program as one bundle; programming it again one "
                    "message at a time", state.name)
        state.atomic = state.programmed = False
        return self._program(dpid, state, Outbox())

    def _acked(self, switch: str, seq: int) -> bool:
        state = self.switches[self._dpid[switch]]
        return state.program_sent and state.barriers_acked >= seq

    def switch_disconnected(self, dpid: int, now: float = 0.0) -> Outbox:
        """The switch is gone, or only its controller connection is: route around it where
        there is a way around (the rest of the fabric stays under control). Not where it
        is the only way (a leaf, the one gateway of a line system): one that lost only its
        connection forwards on by its rules, and routing around it would cut leaves off;
        if it died, its neighbours' ports say so."""
        state = self.switches.get(dpid)
        outbox = Outbox()
        if state is not None and state.connected:
            state.connected = state.program_sent = state.programmed = False
            state.described = False
            sole = self.engine.switch_up(state.name) and (
                self.engine.leaf_reach(without=state.name) != self.engine.leaf_reach())
            log.warning("switch %s (dpid %#x) disconnected: %s", state.name, dpid,
                        "routes stay through it, the only way for some leaves" if sole
                        else "routing around it")
            self.load.switch_down(state.name)
            for needs in self._waiting.values():
                if state.name in needs:
                    needs[state.name] = None
            self._sent.pop(state.name, None)
            if not sole and self.engine.set_switch(state.name, False):
                outbox.faults.append(("switch_down", state.name))
            self._restore(outbox, placements=False)
        return outbox

    def port_changed(self, dpid: int, port: int, up: bool, now: float = 0.0,
                     name: str | None = None, deleted: bool = False) -> Outbox:
        """A PORT_STATUS: carrier or liveness (BFD) of one port changed, or the port was
        added (`name`) or `deleted`."""
        state = self.switches.get(dpid)
        outbox = Outbox()
        if state is None or port > of.ofp.OFPP_MAX:    # the bridge's own (LOCAL) port
            return outbox
        link = self.fabric.ports(state.name).get(port)
        # OVS may say one state twice (carrier, then liveness): the line is said once.
        if state.said_up.get(port) != up or deleted:
            log.info("switch %s port %d (%s) is %s", state.name, port,
                     link.name if link else "not in the fabric file",
                     "deleted" if deleted else "up" if up else "down")
        state.said_up[port] = up
        if state.ports and (deleted or (name is not None and port not in state.ports)):
            self._ports_changed(state, port, name, deleted)
        if link is None or link.kind == HOST:
            self.load.port_state(state.name, port, up)
            if not up and (state.name, port) in self._strangers:
                # its cable may be moving: what it heard is over
                self._forget_stranger(state.name, port, outbox)
            return outbox
        if up and state.programmed:       # a cable plugged in: is it the file's?
            outbox.add(dpid, [of.packet_out(port, wiring.probe(dpid, port, self.probe_key))])
        self._port_state(state.name, port, up, now, outbox)
        return self._restore(outbox, placements=False)

    def _ports_changed(self, state: SwitchState, port: int, name: str | None,
                       deleted: bool) -> None:
        """A port added to or deleted from a connected switch: its differences from the
        file are said again, and so is its matching the file once it does."""
        if deleted:
            state.ports.pop(port, None)
        else:
            state.ports[port] = name
        problems = port_problems(self.fabric, state.name, state.ports)
        for problem in problems:
            if problem not in state.problems:
                log.error("switch %s does not match fabric %r: %s", state.name,
                          self.fabric.name, problem)
        if state.problems and not problems:
            log.info("switch %s now matches fabric %r: every port is there", state.name,
                     self.fabric.name)
        state.problems = problems

    def _port_state(self, switch: str, port: int, up: bool, now: float, outbox: Outbox) -> None:
        """Record one end's state. A link is down as soon as either end is; it is up again
        once both ends are and its hold-down has passed (see `tick`). A port on a crossed
        cable is down, whatever the switch says of it."""
        link = self.fabric.ports(switch)[port]
        (self._carrier_down.discard if up else self._carrier_down.add)((switch, port))
        up = up and (switch, port) not in self._crossed
        self.load.port_state(switch, port, up)          # `dcilab links`, dcilab_link_up
        ends_up = all((e.node, e.port) not in self._carrier_down
                      and (e.node, e.port) not in self._crossed for e in (link.a, link.b))
        if not ends_up:
            if not self.engine.set_link(link.name, False):
                pass                    # already down: one end's status of a link both lost
            elif not self.damping.seen_up(link.name):
                # Never up since this controller started (a BFD session still coming up,
                # a fibre cut before it started): not a failure it saw happen.
                log.info("link %s is not up", link.wavelength or link.name)
            elif link.name in self.engine.drained:
                # Dark on purpose: drained for a mode change, its transceivers retuning
                # (nothing on it to restore; not a failure, nor a flap to damp). `train`
                # named it "is down" among the faults of a run.
                log.info("link %s is dark while it changes mode", link.wavelength or link.name)
            else:
                self.damping.lost(link.name, now)
                if link.wavelength:
                    self._settle(link.name, now)
                outbox.faults.append(("link_down", link.wavelength or link.name))
                log.warning("link %s is down", link.wavelength or link.name)
            self.damping.cancel(link.name)
            self.engine.set_held(link.name, False)
        elif (not self.damping.seen_up(link.name) or self._starting(link, now)
              or link.name in self.engine.drained):
            # First light, or its switches are just starting, or it went dark on purpose
            # (drained for a mode change; rate adaptation puts it back): nothing to hold down.
            first_light = self.damping.lit(link.name)
            if self.engine.set_link(link.name, True) and link.name not in self.engine.drained:
                if not first_light or not self._starting(link, now):
                    outbox.faults.append(("link_up", link.wavelength or link.name))
                elif self._gathered and (self.book.reservations or self.steering.pinned):
                    # A link down since before this controller started, lit in its first
                    # seconds (a repair during a restart): no failure of ours ended, but
                    # what it left DEGRADED goes on it now (a chaos tester's stayed so,
                    # their room going to new requests), what it sent the long way round
                    # comes back (a re-tester's), and elephants spread onto it. (Lit
                    # before the switches are gathered, the start's own pass sees it.)
                    self._returned = self._unplaced = True
                    self._back.add(link.name)
        elif not self.engine.link_up(link.name):
            # Back from a failure: held down, a last resort for routes until it has stayed
            # up a while (and not offered to placement or admission).
            hold = self.damping.hold(link.name, now)
            self.engine.set_held(link.name, True)
            self.engine.set_link(link.name, True)
            log.info("link %s is back; held down for %.0f s: until then routes take it only "
                     "where nothing else is left, and elephants and reservations not at all",
                     link.wavelength or link.name, hold)

    def _settle(self, wavelength: str | None, now: float) -> None:
        """`wavelength` went down at `now`; failures older than FAILURE_SETTLE_S are
        over (every port status of theirs is in): the book is told which are not."""
        if wavelength:
            self._settling[wavelength] = now
        self._settling = {n: t for n, t in self._settling.items()
                          if now - t < FAILURE_SETTLE_S}
        self.book.settling = frozenset(self._settling)

    def _starting(self, link, now: float) -> bool:
        return any(now - self._described_at.get(end.node, -STARTUP_GRACE_S) < STARTUP_GRACE_S
                   for end in (link.a, link.b))

    def tick(self, now: float) -> Outbox:
        """Time passes (the app calls this every 100 ms): links whose hold-down is over are
        used again, and reservations and elephants displaced since the last tick are
        placed again, all together, highest priority first. Routes followed each failure
        at once (and the switches' groups before that), so batching costs no traffic."""
        outbox = Outbox()
        if (not self._gathered and self._gather_until is not None
                and now >= self._gather_until):
            missing = [s.name for s in self.switches.values() if not s.described]
            log.warning("programming %d switches without %s: not connected %.0f s after the "
                        "first", len(self.switches) - len(missing), ", ".join(missing[:5])
                        + (" ..." if len(missing) > 5 else ""), self.gather_s)
            self._program_gathered(outbox)
            self._partial_start = True
        for (leaf, port), (_, heard) in list(self._strangers.items()):
            if now - heard >= STRANGER_S:
                self._forget_stranger(leaf, port, outbox)
                log.info("%s port %d: no ARP but the fabric file's host's for %.0f s: taken "
                         "as put right", leaf, port, STRANGER_S)
        if self._reprobe_at is None or now >= self._reprobe_at:
            if self._reprobe_at is not None:
                self._reprobe(outbox)
            self._reprobe_at = now + REPROBE_S
        for name in self.damping.released(now):
            if self.engine.set_held(name, False):
                link = self.fabric.link(name)
                outbox.faults.append(("link_up", link.wavelength or link.name))
                log.info("link %s in use again", link.wavelength or link.name)
        if any(now - t >= FAILURE_SETTLE_S for t in self._settling.values()):
            self._settle(None, now)
            self._unplaced = True       # its standbys' room is checked again, in full
        if self._unprotected and now >= self._reprotect_at:
            self._reprotect_due = True
            self._reprotect_at = now + REPROTECT_S
        if outbox.faults or self._unplaced:
            self._restore(outbox)
        elif self._reprotect_due:
            self._reprotect(outbox)
        if self._loose_due:
            self._loose_due = False
            if not outbox.restored:                   # else placed there already
                self._place_loose(outbox)
        # Bookings since the last tick re-weigh the gateways' hashed spread (rules.py
        # `spread_tiers`): at most a tick after a reservation, off the request's path.
        if self.programs.book(self._reserved_wavelengths(), now):
            self._send_routing(outbox)
        return outbox

    def _reprobe(self, outbox: Outbox) -> None:
        """A probe out of every switch-facing port of every programmed switch."""
        for dpid, state in self.switches.items():
            if state.programmed:
                outbox.add(dpid, self._probes(dpid, state.name))

    def _probes(self, dpid: int, name: str) -> list:
        """A link probe out of each of the switch's ports that face another switch."""
        return [of.packet_out(port, wiring.probe(dpid, port, self.probe_key))
                for port in wiring.probed_ports(self.fabric, name)]

    @property
    def placements_pending(self) -> bool:
        """A failure's reservations and elephants still wait for the next `tick`."""
        return self._unplaced

    def place_displaced(self) -> Outbox:
        """Now, what the next `tick` would place (see `placements_pending`)."""
        return self._restore(Outbox()) if self._unplaced else Outbox()

    def wiring_problems(self) -> dict[str, list[str]]:
        """switch -> what of it does not match the file: ports it lacks or has beyond the
        file (connected switches), hosts heard on a leaf port the file gives another, and
        cables at its ports leading elsewhere than the file says (both ends' switches name
        such a cable)."""
        out: dict[str, list[str]] = {}
        for state in self.switches.values():
            if state.connected and state.problems:
                out[state.name] = list(state.problems)
        for (switch, _), (why, _) in sorted(self._strangers.items()):
            out.setdefault(switch, []).append(why)
        for (switch, _), why in sorted(self._crossed.items()):
            problems = out.setdefault(switch, [])
            if why not in problems:
                problems.append(why)
        return out

    def held_down(self) -> dict[str, float]:
        """Links that are back but not yet used again, with when they will be."""
        return self.damping.held()

    def _restore(self, outbox: Outbox, placements: bool = True, loose: bool = True) -> Outbox:
        """Bring every programmed switch, and (with `placements`) every reservation and
        pinned elephant, to the live graph, make before break; with `loose`, place the
        elephants no reservation carries now, else at the next tick. Cheap when nothing
        changed (programs are cached per engine version; only differences are sent)."""
        self._send_routing(outbox)
        returned = any(kind in RETURNS for kind, _ in outbox.faults)
        self._back |= {link.name for kind, name in outbox.faults if kind in RETURNS
                       for link in [self._link_named(name)] if link is not None}
        if not placements:
            self._unplaced = self._unplaced or bool(outbox.faults)
            self._returned = self._returned or returned
            return outbox
        returned, self._returned, self._unplaced = returned or self._returned, False, False
        back, self._back = self._back, set()
        self._room_tries_left = ROOM_MAKING_PER_RESTORE
        if not returned:
            for pair in self.book.pairs_to_restore():
                self._restore_pair(pair, outbox)
        else:
            # With a link back, the pairs to restore (DEGRADED, or broken by a failure in
            # the same tick) and PROTECTED pairs in place without a standby take it first,
            # by class, priority and age: placed first, a NONE pair took a returned
            # wavelength, and a PROTECTED pair stayed the long way round with no standby
            # (a re-tester's); a NONE pair broken in that tick took it from a DEGRADED
            # RESTORABLE one (a reviewer's). Then pairs in place take a shorter path where
            # room is left: a PROTECTED pair broken in the tick was DEGRADED while two of
            # higher priority, whole, moved 8 km shorter (a re-tester's).
            due = set(self.book.pairs_to_restore())
            first = due | {key_of(r.request) for r in self.book.unprotected()}
            for pair in self.book.in_restore_order(first):
                self._restore_pair(pair, outbox, only_if_shorter=pair not in due)
            for pair in self.book.in_restore_order(set(self.book.pairs()) - first):
                self._restore_pair(pair, outbox, only_if_shorter=True)
            # Those moves free the long ways round: what found no room before may now.
            for pair in self.book.pairs_to_restore():
                self._restore_pair(pair, outbox)
            self._reprotect_due = self._unprotected
        self._lose_standbys(self.book.shed_overfull_standbys(), outbox,
                            "its links no longer have the room it held (a wavelength of it "
                            "runs a slower mode)")
        self._degraded = any(r.state == State.DEGRADED for r in self.book.live())
        if self._reprotect_due:
            self._reprotect(outbox)
        background = self._background()       # steering's moves leave it as it is
        reserved = self._reservations()
        self._send_to(outbox, self.steering.unpin_carried(self._carried()))
        if loose:
            self._place_loose(outbox, background, reserved)
        else:
            self._loose_due = True
        moved, placements = self.steering.restore(background, reserved)
        self._send_to(outbox, moved)
        outbox.placements += placements
        moved, placements = self.steering.spread(background, back, reserved)   # onto what returned
        self._send_to(outbox, moved)
        outbox.placements += placements
        if self.steering.pinned:                        # what restored reservations overfill
            moved, placements = self.steering.make_way(background, reserved)
            self._send_to(outbox, moved)
            outbox.placements += placements
        outbox.restored = True
        return outbox

    def _send_routing(self, outbox: Outbox) -> None:
        """What changed in each programmed switch's routing since it was sent."""
        for dpid, state in self.switches.items():
            if not state.program_sent or state.name not in self._sent:
                continue
            new = self.programs.current(state.name)
            if new is not self._sent[state.name]:
                msgs = diff(self._sent[state.name], new)
                if msgs:              # a gateway built again by a booking may be the same
                    outbox.add(dpid, msgs)
                    outbox.routing_before.setdefault(dpid, (state.program_no,
                                                            self._sent[state.name]))
                self._sent[state.name] = new

    def _restore_pair(self, pair: tuple[str, str], outbox: Outbox,
                      only_if_shorter: bool = False) -> None:
        before = self.book.pair_members(*pair)
        first = before[0]
        if only_if_shorter and first.state == State.DEGRADED:
            return                  # a shorter path is for pairs in place; asked before repath
        if not only_if_shorter and self._to_standby(pair, first, outbox):
            return
        rules = error = None
        try:
            after = self.book.repath(pair, only_if_shorter)
            if not after:
                return
        except AdmissionError as exc:
            error, broken = exc, self.book.crosses_down(first)
            full = None if broken else self.book.crosses_full(first)
            over = None if broken or full else next(
                (why for why in map(self.book.over_bound, before) if why), None)
            wanted = not only_if_shorter and (first.state == State.DEGRADED or broken or full
                                              or over)
            # others moved aside, as admission moves them for a request of its sum
            after = self._room_made(pair, outbox) if wanted else None
        if after is None:
            if (first.state == State.DEGRADED and not only_if_shorter and not broken
                    and OVER_BOUND not in first.reason
                    and still_no_room(first.reason, error.message) != first.reason):
                # What displaced it is over (its link is back, maybe slower), and still no
                # path has room: its reason says that now, not "is down" long after a repair.
                after = self.book.degrade(pair, still_no_room(first.reason, error.message))
                log.info("reservations %s still DEGRADED: %s",
                         ", ".join(r.reservation_id for r in after), after[0].reason)
                outbox.changed += after
                return
            if (first.state == State.DEGRADED and not only_if_shorter and broken
                    and self._renames(self._broken(broken), first.reason)):
                # One event's port statuses come in over several ticks: the cause named
                # first (a wavelength, a spine link) becomes the line system or the switch
                # once all is down, so that every pair it displaced says the same.
                after = self.book.degrade(pair, displaced(self._broken(broken), error.message))
                outbox.changed += after
                return
            if first.state == State.DEGRADED or only_if_shorter or not (broken or full or over):
                return                  # still no room, or nothing of it broken: as it is
            why = (self._broken(broken) if broken else over if over else
                   f"{full} runs a slower mode and cannot carry what is reserved on it")
            after = self.book.degrade(pair, displaced(why, error.message))
            rules = reservation_rules.remove(self.fabric, first, self._sent_to(first))
            log.warning("reservations %s DEGRADED: %s", ", ".join(r.reservation_id for r in after),
                        after[0].reason)
        else:
            new = after[0]
            if first.state == State.DEGRADED:     # back: its pins and meter go in again
                rules = reservation_rules.install(self.fabric, new, self.book.pair_bps(new),
                                                  self._sent_to(new))
            else:
                rules = reservation_rules.move(self.fabric, first, new, self._programmed())
            if first.state == State.DEGRADED:
                log.info("reservations %s restored over %s",
                         ", ".join(r.reservation_id for r in after),
                         " > ".join(h.wavelength for h in new.hops if h.wavelength)
                         or new.hops[0].link)
            else:
                log.info("reservations %s moved %s", ", ".join(r.reservation_id for r in after),
                         _where_to(first, new))
            if lacks_standby(new):
                self._unprotected = True
                down = self.book.crosses_down(first)
                log.warning("reservations %s (PROTECTED) have no standby: none that avoids "
                            "their primary's risks has room%s; one is sought again when a "
                            "link returns or room is released",
                            ", ".join(r.reservation_id for r in after),
                            f" while {self._broken(down)}" if down else " yet")
        outbox.changed += after
        return self._send_rules(rules, after, outbox)

    def _room_made(self, pair: tuple[str, str], outbox: Outbox) -> list[Reservation] | None:
        """No path has room for a pair to restore: other aggregates move aside for it,
        make before break, where that makes room (`book.repath_making_room`). Its members
        on their new path, or None. A few pairs a restoration (the rest at the next tick),
        and a pair whose try found nothing not again until room or the links change."""
        layout, tried = self._no_room_made
        if layout != self.book.layout():
            layout, tried = self.book.layout(), set()
            self._no_room_made = layout, tried
        if pair in tried:
            return None
        if self._room_tries_left <= 0:
            self._unplaced = True
            return None
        self._room_tries_left -= 1
        made = self.book.repath_making_room(pair)
        if made is None:
            tried.add(pair)
            return None
        after, moves = made
        for move in moves:
            self._move(move.before[0], move.after, outbox)
        return after

    def _to_standby(self, pair: tuple[str, str], first: Reservation, outbox: Outbox) -> bool:
        """A PROTECTED pair whose primary broke keeps its reserved standby (where the
        switches' fast failover already sent it) as its path; a standby is then sought for
        it at once, and for the pairs whose shared standby room it took. Where a primary
        and a standby both have room now, it takes those instead, protected again at once.
        False when it has no whole standby (it is restored as any other pair)."""
        fresh = self.book.protect_again(pair)
        if fresh is not None:
            log.warning("reservations %s (PROTECTED) moved %s, with a standby over %s: %s",
                        ", ".join(r.reservation_id for r in fresh), _where_to(first, fresh[0]),
                        " > ".join(h.wavelength for h in fresh[0].standby if h.wavelength),
                        self._broken(self.book.crosses_down(first)))
            outbox.changed += fresh
            self._send_rules(reservation_rules.move(self.fabric, first, fresh[0],
                                                    self._programmed()), fresh, outbox)
            return True
        taken = self.book.take_standby(pair)
        if taken is None:
            return False
        after, shed = taken
        log.warning("reservations %s (PROTECTED) keep their standby over %s as their path: "
                    "%s", ", ".join(r.reservation_id for r in after),
                    " > ".join(h.wavelength for h in after[0].hops if h.wavelength),
                    self._broken(self.book.crosses_down(first)))
        outbox.changed += after
        self._send_rules(reservation_rules.move(self.fabric, first, after[0],
                                                self._programmed()), after, outbox)
        self._lose_standbys(shed, outbox, "the room it shared carries "
                            + ", ".join(r.reservation_id for r in after) + " now")
        self._unprotected = self._reprotect_due = True
        return True

    def _lose_standbys(self, shed: list[tuple[Reservation, list[Reservation]]],
                       outbox: Outbox, why: str) -> None:
        """Pairs whose standby the book dropped: their fast-failover groups go too."""
        for was, bare in shed:
            log.warning("reservations %s (PROTECTED) lost their standby: %s",
                        ", ".join(r.reservation_id for r in bare), why)
            outbox.changed += bare
            self._send_rules(reservation_rules.move(self.fabric, was, bare[0],
                                                    self._programmed()), bare, outbox)
        if shed:
            self._unprotected = self._reprotect_due = True

    def _renames(self, cause: str, reason: str) -> bool:
        """Whether `cause` (a line system or switch down) names the event the cause that
        `reason` gave was the first sign of (one of its wavelengths, one of its links):
        never another event, as a recovery's (a switch back, its wavelengths not yet)."""
        named = reason.split(" is down")[0]
        if reason.startswith(cause) or named == reason:
            return False
        if named.startswith("line system ") and cause.startswith("switch "):
            # a gateway's line system, reported down before the gateway's other ports
            line, gateway = named.split()[2], cause.split()[1]
            return any(l.line_system == line and gateway in (l.a.node, l.b.node)
                       for l in self.fabric.wavelengths())
        link = self._link_named(named)
        if link is None:
            return False
        if cause.startswith("line system "):
            return cause.startswith(f"line system {link.line_system} ")
        return cause.startswith("switch ") and cause.split()[1] in (link.a.node, link.b.node)

    def _broken(self, what: str) -> str:
        """'<link> is down', or for a switch: down, or only disconnected (its links up: it
        may still forward by its rules, but the controller routes around what it cannot
        see where there is a way round)."""
        name = what.removeprefix("switch ")
        if name != what and all(self.engine.link_up(link.name)
                                for link in self.fabric.ports(name).values()
                                if link.kind != HOST):
            return (f"{what} lost its controller connection (routed around until it is back, "
                    f"in case it died)")
        drained = next((why for name, why in self.engine.drained.items()
                        if what in (name, self.fabric.link(name).wavelength)), None)
        if drained:                    # lit, but out of use while its mode changes
            return f"{what} is out of use ({drained})"
        link = self._link_named(what)
        for end in (link.a.node, link.b.node) if link is not None else ():
            # A switch whose every link is down (before, or without, its disconnection
            # reaching us): named as the switch, whichever of its links a path crossed,
            # so that one event gives every pair it displaces one reason. A switch of one
            # link (a leaf under a single spine) is not: that link is all anyone knows.
            links = [l for l in self.fabric.ports(end).values() if l.kind != HOST] \
                if end in self.fabric.switches else []
            if len(links) > 1 and not any(self.engine.link_up(l.name) for l in links):
                return f"switch {end} is down"
        if link is not None:           # the whole line system cut: named as such
            siblings = [l for l in self.fabric.wavelengths()
                        if l.line_system == link.line_system]
            if len(siblings) > 1 and not any(self.engine.link_up(l.name) for l in siblings):
                return f"line system {link.line_system} is down (all {len(siblings)} wavelengths)"
        return f"{what} is down"

    def _link_named(self, name: str) -> Link | None:
        """The link a reason names: by its wavelength's name, or (no wavelength) its own."""
        link = self._wavelength(name)
        if link is None and " " not in name:
            with contextlib.suppress(KeyError):
                link = self.fabric.link(name)
        return link

    def _wavelength(self, name: str) -> Link | None:
        """The link of the wavelength named `name` (as `dcilab fault` and gNMI name it)."""
        return next((l for l in self.fabric.wavelengths() if l.wavelength == name), None)

    def _reprotect(self, outbox: Outbox) -> None:
        """PROTECTED pairs left without a standby take one where there is room again
        (on their own primary where it has one), pre-installed make before break. Not
        before the switches have told which links are up: a restarted controller took
        standbys over links cut while it was down (a chaos tester's), then moved them."""
        if not self._gathered:
            return                              # still due: at the first tick after
        self._reprotect_due = False
        left = self.book.unprotected()
        for key in dict.fromkeys(key_of(r.request) for r in left):
            first = self.book.pair_members(*key)[0]
            after = self.book.reprotect(key)
            if not after:
                continue
            rules = reservation_rules.move(self.fabric, first, after[0], self._programmed())
            log.info("reservations %s protected again: standby over %s",
                     ", ".join(r.reservation_id for r in after),
                     " > ".join(h.wavelength for h in after[0].standby if h.wavelength))
            outbox.changed += after
            self._send_rules(rules, after, outbox)
        self._unprotected = bool(self.book.unprotected()) if left else False

    def _send_rules(self, rules: dict[str, list], after: list[Reservation],
                    outbox: Outbox) -> dict[str, int | None]:
        """Send a pair's new rules, each switch's behind a barrier; its PENDING members go
        ACTIVE once every switch of the new path has acknowledged."""
        needs: dict[str, int | None] = {h.switch: None for h in after[0].hops}
        for switch, msgs in rules.items():
            state = self.switches[self._dpid[switch]]
            if state.program_sent:
                outbox.add(self._dpid[switch], msgs + [of.barrier()])
                needs[switch] = self._barrier_seq(state)
        for r in after:                 # PENDING ones go ACTIVE once the new path acks
            self._waiting.pop(r.reservation_id, None)
            if r.state == State.PENDING:
                self._waiting[r.reservation_id] = dict(needs)
        return needs

    def _programmed(self) -> set[str]:
        return {s.name for s in self.switches.values() if s.program_sent}

    @property
    def ready(self) -> bool:
        return all(s.programmed for s in self.switches.values())

    # -- rate adaptation (core/adaptation.py decides; the gNMI adapter carries it out) ---

    def wavelength_service(self, wavelength: str, drained_because: str | None,
                           rate_gbps: float | None = None, mode: str | None = None) -> Outbox:
        """Take a wavelength out of use while it stays lit, before its mode changes
        (`drained_because` says why), or put it back at its new mode's rate
        (`drained_because=None`). Routes, groups, reservations and pinned elephants move
        off make before break, as for a failure (`_restore`); back in use, capacity and
        admission follow the new rate and reservations take the shorter path again if it
        has room (else stay moved, or DEGRADED by priority)."""
        link = self._wavelength(wavelength)
        outbox = Outbox()
        if link is None:
            log.error("rate adaptation: fabric %r has no wavelength %r", self.fabric.name,
                      wavelength)
            return outbox
        changed = bool(rate_gbps) and self.engine.set_rate(link.name, rate_gbps, mode)
        if drained_because is None and self.damping.cancel(link.name):
            self.engine.set_held(link.name, False)   # its dark spell was the planned change
        if self.engine.set_drained(link.name, drained_because) and drained_because is None:
            outbox.faults.append((RESUMED, wavelength))
        log.info("wavelength %s %s", wavelength, f"drained: {drained_because}"
                 if drained_because else f"back in use at {self.engine.rate_gbps(link):g}G"
                 + (" (rate changed)" if changed else ""))
        return self._restore(outbox)

    def drain_room(self, wavelength: str) -> str | None:
        """Whether `wavelength` can be taken out of use without degrading a reservation
        or leaving one unprotected (`book.room_elsewhere`): None, or why not (a step up
        waits for that; a step down does not: its margin is failing)."""
        link = self._wavelength(wavelength)
        return None if link is None else self.book.room_elsewhere(link)

    def wavelength_mode(self, wavelength: str, mode: str, rate_gbps: float) -> Outbox:
        """Its transceivers run `mode` though dcilab did not set it (a gNMI Set of an
        operator's, or a mode found at start): capacity and admission follow its rate, and
        reservations it can no longer carry move off, make before break, as for a failure
        (else DEGRADED by priority). Nothing to do if that is the mode known."""
        link = self._wavelength(wavelength)
        if link is None or (self.engine.mode(link) == mode
                            and self.engine.rate_gbps(link) == rate_gbps):
            return Outbox()
        was = f"{self.engine.mode(link)} ({self.engine.rate_gbps(link):g} Gb/s)"
        self.engine.set_rate(link.name, rate_gbps, mode)
        log.warning("wavelength %s runs %s (%g Gb/s), not %s: set outside dcilab's rate "
                    "adaptation; its capacity follows", wavelength, mode, rate_gbps, was)
        return self._restore(Outbox())

    # -- reservations ------------------------------------------------------------------

    def reserve(self, request: ReservationRequest, reservation_id: str, now: float) -> Outbox:
        """Admit `request` (AdmissionError if it cannot be) and pin it onto the switches of
        its path that are programmed; the rest get it in their program when they connect."""
        before = len(self.book.reservations)
        res, moves = self.book.admit_moving(request, reservation_id, now)
        outbox = Outbox()
        if len(self.book.reservations) == before:   # an idempotent retry: nothing new
            return outbox
        if self.steering.pinned:     # elephants its room overfills move first (their
            moved, outbox.placements = self.steering.make_way(        # pins go out first)
                self._background(), self._reservations())
            self._send_to(outbox, moved)
        path_needs = None
        for move in moves:                          # aggregates moved to make room
            needs = self._move(move.before[0], move.after, outbox)
            if key_of(move.after[0].request) == key_of(request):
                path_needs = needs                  # its own pair's new path
        outbox.changed.append(res)
        self._install(res, outbox, path_needs)
        return outbox

    def _move(self, first: Reservation, after: list[Reservation],
              outbox: Outbox) -> dict[str, int | None]:
        """An aggregate moved as a whole: its pins go to the new path make before break
        (its meter stays at the ingress leaf); members waiting for their rules wait for
        the new path's."""
        rules = reservation_rules.move(self.fabric, first, after[0], self._programmed())
        log.info("reservations %s moved %s to make room",
                 ", ".join(r.reservation_id for r in after), _where_to(first, after[0]))
        # One record per reservation: an aggregate parked on the way (a re-packing
        # untying a swap) moves twice, and only where it ends is saved.
        ids = {r.reservation_id for r in after}
        outbox.changed[:] = [r for r in outbox.changed if r.reservation_id not in ids] + after
        return self._send_rules(rules, after, outbox)

    def restore(self, res: Reservation) -> None:
        """Book a reservation read back from the store (its rules go out on connect)."""
        self.book.add(res)
        if lacks_standby(res):          # a standby is sought once the switches are programmed
            self._unprotected = True
        if self.book.over_bound(res):   # the fibre lengths changed: within it, or DEGRADED
            self._unplaced = True
        if res.state == State.DEGRADED:
            # It waits for room, and room may have come back while no controller ran
            # (reservations that lapsed meanwhile, a repair): placed before any request.
            self._degraded = self._unplaced = True
        if res.state == State.PENDING:
            self._waiting[res.reservation_id] = {h.switch: None for h in res.hops}

    def end(self, reservation_id: str, state: State = State.RELEASED) -> Outbox:
        """Release (or expire) a live reservation and remove its rules; NOT_FOUND for
        any other id (the book forgets ended ones; their record is the service's)."""
        before = self.book.reservations.get(reservation_id)
        res = self.book.end(reservation_id, state)
        self._reprotect_due = self._reprotect_due or self._unprotected   # room released
        self._unplaced = self._unplaced or self._degraded                # ... for these too
        outbox = Outbox()
        self._waiting.pop(reservation_id, None)
        outbox.changed.append(res)
        remaining = self.book.pair_bps(res)
        if not before.holds_bandwidth:    # DEGRADED: its pair's rules and meter went then
            rules = {}
        elif remaining:
            rules = reservation_rules.resize(self.fabric, res, remaining)
        else:
            rules = reservation_rules.remove(self.fabric, res, self._sent_to(res))
        for switch, msgs in rules.items():
            if self.switches[self._dpid[switch]].program_sent:
                outbox.add(self._dpid[switch], msgs)
        # Its pair's elephants, best effort now, are placed at the next tick: not in this
        # change, which a failed save takes back (its pins would then be sent, resent
        # whole and removed again, each second an expiry is retried: a reviewer's).
        self._loose_due = self._loose_due or (before.holds_bandwidth and not remaining)
        return outbox                 # logged by the caller once the end is durable

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
        if not previous.state.live:
            return Outbox()
        members = self.book.pair_members(*key_of(previous.request))
        if booked is None and members and members[0].hops != previous.hops:
            # An end taken back after its pair moved on (saved with it): with the pair.
            previous = replace(previous, hops=members[0].hops, standby=members[0].standby,
                               latency_ms=members[0].latency_ms)
        # As saved: its path, standby and state (a move's rules were never sent, so the
        # switches still hold that path). A move a failure forced is looked for again at
        # the next tick, and saved then.
        self.book.put_back(previous)
        self._unplaced = True
        # Placed and taken back: it waits again, for the next release too (the flag had
        # been cleared by the placing, and a release then skipped it: a reviewer's).
        self._degraded = self._degraded or previous.state == State.DEGRADED
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
        return self.place_degraded(outbox)

    def place_degraded(self, outbox: Outbox) -> Outbox:
        """Room was given back: DEGRADED reservations waiting for it are placed at once,
        in the same step, so that no new request takes it first (placed at the next tick,
        a request in between could)."""
        if self._degraded and self._unplaced:
            # (a release's or an expiry's change: what it frees of elephants waits for
            # the tick, so that a failed save does not take pins back with it)
            self._restore(outbox, loose=False)
        return outbox

    def meters_listed(self, dpid: int, meter_ids: set[int]) -> Outbox:
        """A leaf listed its meters after its program: those no live pair of it holds were
        left by pairs that ended while no program could remove them (a reservation that
        expired before a restarted controller reached the leaf, or ended while the leaf
        was away): deleted (no flow uses them)."""
        state = self.switches.get(dpid)
        if state is None or not state.program_sent:
            return Outbox()
        held = {r.meter_id for r in self.book.live()
                if r.holds_bandwidth and r.hops and r.hops[0].switch == state.name}
        stale = sorted(m for m in set(meter_ids) - held if not of.is_special_meter(m))
        # A DEGRADED reservation has no rules, its meter neither (back when it is): not
        # one "no live reservation holds", which sent an operator looking for another
        # state file after a restart (an outside tester's).
        degraded = {r.meter_id for r in self.book.live() if r.state == State.DEGRADED}
        if any(m in degraded for m in stale):
            log.info("switch %s: deleting meters %s of DEGRADED reservations (no rules while "
                     "carried best effort; installed again when restored)", state.name,
                     ", ".join(str(m) for m in stale if m in degraded))
        unknown = [m for m in stale if m not in degraded]
        if unknown and self.new_state_file is not None and not self.book.reservations:
            # An operator's restart on a state file moved away, another --state, HOME or
            # fabric name: the rules are replaced from this file, which knows none of them.
            log.error("switch %s carries reservation meters %s, but state file %s is new, "
                      "made by this start: those reservations are not restored, and their "
                      "meters and rules go. If this controller ran before on another state "
                      "file (moved, or another --state, HOME or fabric name), stop it, put "
                      "that file at %s and start it again: they come back with their ids",
                      state.name, ", ".join(map(str, unknown)), self.new_state_file,
                      self.new_state_file)
        elif unknown:
            # With no reservation booked at all, more likely a controller started on another
            # (or a new) state file than the one that booked them: said louder.
            (log.info if self.book.reservations else log.warning)(
                "switch %s: deleting meters %s, which no live reservation of this "
                "controller's state file holds (they ended while no controller could remove "
                "them, or another state file booked them)", state.name,
                ", ".join(map(str, unknown)))
        return Outbox().add(dpid, [of.meter_delete(m) for m in stale])

    def _sent_to(self, res: Reservation) -> set[str]:
        """The switches of its path that have their program (the rest get it later)."""
        return {h.switch for h in res.hops + res.standby
                if self.switches[self._dpid[h.switch]].program_sent}

    def _install(self, res: Reservation, outbox: Outbox,
                 path_needs: dict[str, int | None] | None = None) -> None:
        """Pin a new reservation (`path_needs`: its pair just moved, and these barriers
        acknowledge the new path)."""
        pair_bps = self.book.pair_bps(res)
        if pair_bps > res.bandwidth_bps:             # the pair's path is already in place
            first = self.book.members_of(res)[0]
            # ... or still going in: wait for what the first one waits for too.
            needs: dict[str, int | None] = dict(
                path_needs if path_needs is not None
                else self._waiting.get(first.reservation_id, {}))
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

    def _place_loose(self, outbox: Outbox, background: dict | None = None,
                     reserved: Reserved | None = None) -> None:
        """Elephants no reservation carries now and loadaware has not pinned (their
        reservation DEGRADED or ended since they were found), placed as new ones."""
        loose = self.steering.loose()
        if not loose:
            return
        carried = self._carried({(r.src_host, r.dst_host) for r in loose})
        loose = [r for r in loose if not carried(r)]
        if not loose:
            return
        moved, placed = self.steering.place(
            loose, self._background() if background is None else background,
            self._reservations() if reserved is None else reserved)
        self._send_to(outbox, moved)
        outbox.placements += placed

    def _carried(self, only: set[tuple[str, str]] | None = None
                 ) -> Callable[[FlowRecord], bool]:
        """Whether a reservation's rules carry an elephant's packets (they come before any
        pin), for elephants of `only`'s host pairs if given. The reservations by pair are
        gathered at the first question only: most polls find no new elephant, and most
        restorations have no pin to ask about."""
        by_pair: dict[tuple[str, str], list[Reservation]] | None = None

        def carried(record: FlowRecord) -> bool:
            nonlocal by_pair
            if by_pair is None:
                by_pair = self._reserved_pairs(only)
            reserved = by_pair.get((record.src_host, record.dst_host), [])
            return reservation_rules.carriers(reserved, record.key.ip_proto,
                                              record.key.dst_port)[0] is not None
        return carried

    def _reserved_pairs(self, only: set[tuple[str, str]] | None = None
                        ) -> dict[tuple[str, str], list[Reservation]]:
        """Host pair (of `only`, if given) -> its reservations whose rules are in the
        switches, in the order the switches try them (highest priority first)."""
        by_pair: dict[tuple[str, str], list[Reservation]] = {}
        for res in self.book.reservations.values():
            if res.holds_bandwidth and (only is None or (res.request.src_host,
                                                         res.request.dst_host) in only):
                by_pair.setdefault((res.request.src_host, res.request.dst_host), []).append(res)
        for members in by_pair.values():
            members.sort(key=reservation_rules.priority, reverse=True)
        return by_pair

    def elephants(self) -> list[ElephantView]:
        """Every elephant, with what carries it: the rule of highest priority its packets
        match, which is a reservation's before its own pin, and a pin before the routes.
        A DSCP reservation takes only marked packets, which a 5-tuple does not show: the
        view names it, with the path of the unmarked ones."""
        views = self.steering.view()
        # Only the elephants' pairs, and nothing without elephants: this runs under the
        # service's lock for every ListElephants, beside thousands of live reservations
        # (an outside tester's 2 000: 22 ms a call, ReservePath p99 26-29 ms).
        by_pair = self._reserved_pairs({(v.src_host, v.dst_host) for v in views}) \
            if views else {}
        seen = []
        for view in views:
            key = view.key
            res, marked = reservation_rules.carriers(
                by_pair.get((view.src_host, view.dst_host), []), key.ip_proto, key.dst_port)
            if res is not None:
                view = replace(view, carrier=RESERVATION, reservation_id=res.reservation_id,
                               path=tuple((h.link, h.switch) for h in res.hops
                                          if h.wavelength))
            elif view.carrier == HASHED and self.policy == "shortest":
                route = self.programs.route(self.fabric.hosts[view.src_host].leaf, key.dst_ip)
                if route is not None:
                    view = replace(view, carrier=SHORTEST, path=route)
            if marked is not None:
                view = replace(view, carrier=RESERVATION_IF_MARKED,
                               reservation_id=marked.reservation_id)
            seen.append(view)
        return seen

    def stats_requests(self) -> Outbox:
        """A poll: port statistics from every programmed switch, flow counters from every
        leaf; and, from what the last poll measured, elephants revisited."""
        outbox = Outbox()
        moved, placements = self.steering.revisit(self._background(), self._reservations())
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
                                                       self._background(), self._carried(),
                                                       self._reservations)
        self._send_to(outbox, msgs)
        return outbox

    def _send_to(self, outbox: Outbox, msgs: dict[str, list]) -> None:
        for switch, switch_msgs in msgs.items():
            if self.switches[self._dpid[switch]].program_sent and switch_msgs:
                outbox.add(self._dpid[switch], switch_msgs)
                outbox.pins.add(self._dpid[switch])

    def lost(self, outbox: Outbox) -> None:
        """`outbox` could not be saved: nothing of it went out but its barriers. Its
        reservations' rules are `undo`'s; what else it sent that this core counted as
        sent (routing, a switch's whole program, elephants' pins) is counted unsent, for
        `resend`. Called newest first when several changes fail together."""
        for dpid, (program_no, before) in outbox.routing_before.items():
            state = self.switches.get(dpid)
            # not if the switch was programmed again since (it holds that program)
            if state is not None and state.name in self._sent \
                    and state.program_no == program_no:
                self._sent[state.name] = before
        self._resend_programs |= outbox.programs
        self._resend_pins |= outbox.pins

    def resend(self) -> Outbox:
        """What `lost` counted unsent, as this core holds it now: a lost program whole (its
        switch counts as programmed once the new one's barrier is back, not the lost
        one's), routing as the difference from what each switch holds, pins again. No
        reservation moves: nothing of it needs saving."""
        outbox = Outbox()
        programs, self._resend_programs = self._resend_programs, set()
        pins, self._resend_pins = self._resend_pins, set()
        for dpid in sorted(programs):
            state = self.switches.get(dpid)
            if state is not None and state.connected and state.program_sent:
                state.programmed = False
                self._program(dpid, state, outbox, placements=False)
        for dpid in sorted(pins - programs):
            state = self.switches.get(dpid)
            if state is not None and state.program_sent:
                # whole: the lost change may have unpinned some here (a moved elephant)
                msgs = elephant_rules.unpin_all() + self.steering.program(state.name)
                if state.atomic:
                    self._bundles += 1
                    msgs = of.atomically(msgs, self._bundles)
                self._barrier_seq(state)
                outbox.add(dpid, msgs + [of.barrier()])
        return self._restore(outbox, placements=False)

    def _reserved_wavelengths(self) -> dict[tuple[str, str], float]:
        """Reserved bandwidth on each directed wavelength, real b/s."""
        return {(d.link, d.src): bps for d, bps in self.book.reserved.items()
                if self.fabric.link(d.link).wavelength}

    def _background(self) -> dict[tuple[str, str], float]:
        """Measured rate on each directed wavelength, real b/s."""
        return {(d.link, d.src): self.load.rate_bps(d)
                for link in self.fabric.wavelengths() for d in directions(link)}

    def _reservations(self) -> Reserved:
        """Reservations on each directed wavelength: booked, and the part sent now (in the
        measured rate too: steering takes it out there and counts the booking in full)."""
        booked = self._reserved_wavelengths()
        in_use = self._reserved_in_use()
        return Reserved(booked, {d: min(bps, in_use.get(d, 0.0)) for d, bps in booked.items()})

    def _reserved_in_use(self) -> dict[tuple[str, str], float]:
        """What reservations send on the directed wavelengths of their paths, real b/s:
        each aggregate's flows as its leaf counts them, before its meter, so at most its
        bandwidth. A DSCP reservation's is not known (a flow's counters do not say whether
        it is marked): it counts as unused, in full."""
        by_pair = self._reserved_pairs()
        sent: dict[tuple, float] = {}
        for record in self.steering.detector.flows.values():
            members = by_pair.get((record.src_host, record.dst_host))
            if members and record.rate_bps > 0.0:
                res = reservation_rules.carriers(members, record.key.ip_proto,
                                                 record.key.dst_port)[0]
                if res is not None:
                    key = key_of(res.request)
                    sent[key] = sent.get(key, 0.0) + record.rate_bps
        in_use: dict[tuple[str, str], float] = {}
        for (src, dst, selector), rate in sent.items():
            aggregate = [r for r in by_pair[(src, dst)] if r.request.selector == selector]
            used = min(rate, sum(r.bandwidth_bps for r in aggregate))
            for hop in aggregate[0].hops:        # an aggregate's members share one path
                if hop.wavelength:
                    key = (hop.link, hop.switch)
                    in_use[key] = in_use.get(key, 0.0) + used
        return in_use

    def port_stats(self, dpid: int, counters: dict[int, tuple[int, int]], now: float) -> None:
        """A port statistics reply: port -> (tx_bytes, rx_bytes)."""
        state = self.switches.get(dpid)
        if state is not None and state.connected:
            self.load.sample(state.name, counters, now)

    def link_state(self) -> dict:
        """What the path engine says of the links beyond the counters: the rate and mode
        each wavelength runs, and those up but not in use (held down, drained). Taken
        under the caller's lock; `link_loads` may then build the snapshot outside it."""
        return {"rates_gbps": self.engine.rates(), "modes": self.engine.modes(),
                "out_of_service": self.engine.held_or_drained(),
                "drained": frozenset(self.engine.drained)}

    def link_loads(self, reserved_bps: dict | None = None, kinds: frozenset[str] | None = None,
                   reported_margins_db: dict[str, float] | None = None,
                   state: dict | None = None) -> list[LinkLoad]:
        """Both directions of every link (of `kinds`), with `reserved_bps` (the book's
        by default) and `state` (`link_state()`, now by default)."""
        return self.load.snapshot(self.book.reserved if reserved_bps is None else reserved_bps,
                                  kinds, reported_margins_db=reported_margins_db,
                                  **(state or self.link_state()))

    # -- packets -----------------------------------------------------------------------

    def _probe_arrived(self, sent_from: tuple[int, int], receiver: str,
                       received_port: int, now: float) -> Outbox:
        """A link probe came in: the cable it crossed is the file's, or it is not, and the
        ports at both its ends are taken out of service until a probe says otherwise."""
        outbox = Outbox()
        sender_state = self.switches.get(sent_from[0])
        if sender_state is None:
            return outbox
        sender, sent_port = sender_state.name, sent_from[1]
        if sent_port not in self.fabric.ports(sender):
            return outbox
        if received_port not in self.fabric.ports(receiver):
            # On a port the file lacks (said as unexpected, with the file's port said
            # missing): where the cable should go, said once (a hand-builder had to work
            # it out from the two lines).
            seen = (sender, sent_port, receiver, received_port)
            if seen not in self._misplaced:
                self._misplaced.add(seen)
                log.error("%s: move that cable", wiring.crossed(
                    self.fabric, sender, sent_port, receiver, received_port))
            return outbox
        why = wiring.crossed(self.fabric, sender, sent_port, receiver, received_port)
        ends = [(sender, sent_port), (receiver, received_port)]
        marked, cleared = _probe_verdicts(why, ends, self._crossed)
        if not marked and not cleared:
            return outbox
        # The same cable's probe the other way says it in its own words: once is enough.
        news = any(end not in self._crossed for end in marked)
        for end in marked:
            self._crossed[end] = why
        for end in cleared:
            del self._crossed[end]
        if marked and news:
            log.error("%s: both ports are out of service until the cable is where the "
                      "fabric file says", why)
        else:
            log.info("the cable of %s port %d is where the fabric file says: back in service",
                     sender, sent_port)
        for switch, port in marked + cleared:
            if self.fabric.ports(switch)[port].kind != HOST:
                self._port_state(switch, port, (switch, port) not in self._carrier_down, now,
                                 outbox)
        return self._restore(outbox, placements=False)

    def packet_in(self, dpid: int, in_port: int, data: bytes, now: float = 0.0,
                  table_id: int | None = None) -> Outbox:
        """Check link probes against the file's cables, and ARP from host ports against the
        file's hosts (copies from table 0; the leaf answers ARP for fabric hosts itself,
        table 3: core/wiring.py). What else reaches here is ARP the leaf has no answer for
        (table 3's miss), answered from the file when it asks for a fabric host."""
        state = self.switches.get(dpid)
        if state is None:
            return Outbox()
        sent_from = wiring.read_probe(data, self.probe_key)
        if sent_from is not None:
            return self._probe_arrived(sent_from, state.name, in_port, now)
        pkt = packet.Packet(data)
        request = pkt.get_protocol(arp.arp)
        if request is not None and table_id == TABLE_CLASSIFY:
            return self._heard(dpid, state.name, in_port, request, now)
        if request is None or request.opcode != arp.ARP_REQUEST:
            return Outbox()
        target = self.fabric.host_by_ip(request.dst_ip)
        if target is None:
            log.debug("ARP for %s from %s port %d: not a fabric host", request.dst_ip,
                      state.name, in_port)
            return Outbox()
        return Outbox().add(dpid, [of.packet_out(in_port, _arp_reply(request, target.mac))])

    def _heard(self, dpid: int, leaf: str, port: int, request: arp.arp, now: float) -> Outbox:
        """ARP from a host port by other than the file's host: said once, shown while heard,
        and over once the file's host is heard there (the leaf copies its ARP meanwhile)."""
        why = wiring.stranger(self.fabric, leaf, port, request.src_mac, request.src_ip)
        said = self._strangers.get((leaf, port))
        if why is None:
            if said is None:
                return Outbox()
            log.info("%s port %d: the fabric file's host is heard there again", leaf, port)
            return self._forget_stranger(leaf, port, Outbox())
        if said is None or said[0] != why:
            log.error("%s; it gets no traffic until it matches the fabric file", why)
        self._strangers[(leaf, port)] = (why, now)
        if said is not None:
            return Outbox()
        return Outbox().add(dpid, [host_arp_rule(self._host_at(leaf, port), listen=True)])

    def _forget_stranger(self, leaf: str, port: int, outbox: Outbox) -> Outbox:
        """The port's problem is over: the file's host's ARP is no longer copied."""
        del self._strangers[(leaf, port)]
        return outbox.add(self._dpid[leaf], [host_arp_rule(self._host_at(leaf, port))])

    def _host_at(self, leaf: str, port: int) -> Host:
        return self.fabric.hosts[self.fabric.ports(leaf)[port].name]   # named after its host


def _probe_verdicts(why: str | None, ends: list[tuple[str, int]],
                    crossed: dict[tuple[str, int], str]) -> tuple[list, list]:
    """The ends a probe marks crossed (not yet so), and those it clears (were so)."""
    if why is not None:
        return [e for e in ends if crossed.get(e) != why], []
    return [], [e for e in ends if e in crossed]


def _arp_reply(request: arp.arp, mac: str) -> bytes:
    reply = packet.Packet()
    reply.add_protocol(ethernet.ethernet(ethertype=ethernet.ether.ETH_TYPE_ARP,
                                         dst=request.src_mac, src=mac))
    reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=mac, src_ip=request.dst_ip,
                               dst_mac=request.src_mac, dst_ip=request.src_ip))
    reply.serialize()
    return bytes(reply.data)


def _where_to(old: Reservation, new: Reservation) -> str:
    """Where a move took an aggregate, for the log: its wavelengths, or, when they stay,
    that only its links inside the sites changed."""
    waves = [h.wavelength for h in new.hops if h.wavelength]
    if waves and waves == [h.wavelength for h in old.hops if h.wavelength]:
        return f"inside the sites (its wavelengths {' > '.join(waves)} stay)"
    return "to " + (" > ".join(waves) or new.hops[0].link)
