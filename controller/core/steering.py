"""Elephant steering: detect elephants from the leaves' per-flow counters and, under the
`loadaware` policy, pin each to the path and wavelengths its placement chooses.

Policies (see te.placement): `ecmp` leaves every flow to the switches' select groups,
`shortest` programs one path and one wavelength per site pair for all traffic (see
rules.forwarding), and `loadaware` pins each elephant, hop by hop, where the resulting
utilization is lowest given its estimated natural demand (Hedera's estimator), the
reserved bandwidth and the measured background load; placements are revisited once per
poll, with hysteresis. Mice always stay on the default spread.

Periodic elephants come back: a training job's flows (NCCL channels) keep their
connections, so each step's sync reuses the same 5-tuples after a compute phase of
silence. An elephant that goes idle (ends or drops under the threshold) therefore keeps
its pin, and its room in the placement load, for `pin_hold_s` (longer than a step): when
it comes back, its first packet already takes the wavelength it was placed on, instead of
being hashed until a poll finds it again. A pin idle for longer is removed.
"""

from __future__ import annotations

import itertools
import statistics
import logging
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..fabric import Fabric
from ..te.demand import estimate_demands
from ..te.elephants import PIN_HOLD_S, ElephantDetector, FlowKey, FlowRecord
from ..te.paths import PathEngine
from ..te.placement import (DEFAULT_MAX_STRETCH, NO_RESERVATIONS, POLICIES, Candidates,
                            DirectedLink, Flow, LoadAwarePlacer, Path, Reserved, add_load)
from . import elephant_rules

log = logging.getLogger("dcilab.steering")

SETTLE_POLLS = 2
# A settled elephant whose path has room (its busiest wavelength, all traffic measured,
# under ROOMY of capacity) is not held back by the network: app-limited, its demand is
# what it sends (averaged over RATE_POLLS polls: one poll's counters read 0.5-1.5x), with
# HEADROOM to grow. It stays so wherever it goes until it is held back: its path past
# FULL and its rate under SLOWED of what it sent with room. A paced flow beside others'
# traffic on a full wavelength is not held back; judged by the wavelength alone, it was
# moved off and back for good.
ROOMY, FULL, SLOWED, HEADROOM, RATE_POLLS = 0.7, 0.9, 0.8, 1.25, 3
NOISE_FLOOR = 0.15
# A TCP elephant just moved may send nothing for a poll (packets reordered, a window lost):
# taken for ended, its pin was dropped and it was placed again from scratch, on a NIC's
# share, beside another elephant (a re-tester's). Its pin is held this long instead.
MOVED_STALL_S = 3.0


@dataclass
class Pinned:
    flow: Flow
    record: FlowRecord
    demand_bps: float
    path: Path                               # the directed wavelengths
    hops: list[tuple[str, int]]              # every (switch, out port), leaf to leaf
    since_poll: int = 0                      # the poll it was (re)placed at
    previous: Path = ()                      # where it was before its last move
    idle_since: float | None = None          # when it went idle (its pin held), or active
    hold_s: float = 0.0                      # how long its pin is held idle
    app_limited: bool = False                # sends what it wants (found with room)
    app_rate: float = 0.0                    # ... at this rate (the most since)
    rates: deque = field(default_factory=lambda: deque(maxlen=RATE_POLLS))  # its last polls


# What carries an elephant: the rule of highest priority its packets match.
HASHED = "hashed"                  # the select groups' hash (ecmp; loadaware not yet pinned)
PINNED = "pinned"                  # its own pin (loadaware)
SHORTEST = "shortest"              # the site pair's one route (policy shortest)
RESERVATION = "reservation"        # a reservation's rules: the pair's, or its protocol/ports
RESERVATION_IF_MARKED = "reservation_if_marked"   # a DSCP reservation's, if it is marked


@dataclass(frozen=True)
class ElephantView:
    """An elephant as a client sees it (`ListElephants`): its flow, what it sends, what
    carries it and over which directed wavelengths."""
    key: FlowKey
    src_host: str
    dst_host: str
    rate_bps: float                          # at its leaf, the last poll (real); idle: 0
    demand_bps: float                        # the placement's estimate; 0 when not pinned
    path: Path                               # one directed wavelength per DCI hop; hashed: ()
    idle: bool                               # quiet, its pin held for its return
    carrier: str = HASHED
    reservation_id: str = ""                 # RESERVATION, RESERVATION_IF_MARKED: which


class Steering:
    def __init__(self, fabric: Fabric, graph: PathEngine, policy: str = "loadaware",
                 elephant_fraction: float = 0.1, elephant_polls: int = 2,
                 max_stretch: float = DEFAULT_MAX_STRETCH, min_gain: float = 0.05,
                 pin_hold_s: float = PIN_HOLD_S):
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}: choose one of {', '.join(POLICIES)}")
        if not pin_hold_s >= 0:
            raise ValueError("pin_hold_s must be >= 0")
        self.fabric, self.graph, self.policy = fabric, graph, policy
        self.pin_hold_s = pin_hold_s
        self.detector = ElephantDetector(fabric, graph, elephant_fraction, elephant_polls)
        self.candidates = Candidates(fabric, max_stretch, engine=graph)
        self.placer = (LoadAwarePlacer(self.candidates, min_gain=min_gain)
                       if policy == "loadaware" else None)
        self.pinned: dict[FlowKey, Pinned] = {}
        self._ids = itertools.count(1)
        self._poll = 0
        self._returned_at = -SETTLE_POLLS - 1    # the poll an idle pin's elephant last came back
        self._proposed: dict[Flow, Path] = {}    # the last revisit's moves, made once confirmed

    @property
    def elephant_count(self) -> int:
        return len(self.detector.elephants())

    def view(self) -> list[ElephantView]:
        """Every elephant and every held pin, by hosts then flow, as steering placed
        them (`FabricController.elephants` adds what reservations and routes carry)."""
        seen = []
        for record in self.detector.elephants():
            pin = self.pinned.get(record.key)
            seen.append(ElephantView(record.key, record.src_host, record.dst_host,
                                     record.rate_bps, pin.demand_bps if pin else 0.0,
                                     pin.path if pin else (), False,
                                     PINNED if pin else HASHED))
        for pin in self.pinned.values():
            if pin.idle_since is not None and not pin.record.elephant:
                record = pin.record
                seen.append(ElephantView(record.key, record.src_host, record.dst_host,
                                         0.0, pin.demand_bps, pin.path, True, PINNED))
        return sorted(seen, key=lambda e: (e.src_host, e.dst_host, str(e.key)))

    def sample(self, leaf: str, counters: dict[FlowKey, int], now: float,
               background: dict[DirectedLink, float],
               carried: Callable[[FlowRecord], bool] = lambda record: False,
               reserved: Callable[[], Reserved] = lambda: NO_RESERVATIONS
               ) -> tuple[dict[str, list], int]:
        """Flow counters read at `leaf`. Returns (messages per switch, elephants placed).
        `carried`: whether a reservation's rules carry an elephant (they come before any
        pin, so it is found and listed, not placed: a pin would count its load where it
        does not go). `reserved`: what reservations hold, asked only when an elephant is
        placed (it reads every flow the leaves count, and every leaf is read each poll)."""
        new, ended = self.detector.sample(leaf, counters, now)
        msgs: dict[str, list] = {}
        for record in ended:
            pin = self.pinned.get(record.key)
            hold = self.pin_hold_s
            if (pin is not None and pin.previous and record.key in counters
                    and self._poll - pin.since_poll <= SETTLE_POLLS):
                hold = max(hold, MOVED_STALL_S)      # just moved, and still there: stalled
            if pin is not None and hold > 0:
                pin.idle_since, pin.hold_s = now, hold
                log.info("elephant %s idle: pin held for %g s", record.key, hold)
                continue
            log.info("elephant %s ended", record.key)
            if pin is not None:
                self._unpin(record.key, msgs)
        self._expire(now, msgs)
        fresh = []
        for record in new:
            held = self.pinned.get(record.key)
            if held is not None:          # a periodic elephant back: already on its path
                held.record, held.idle_since = record, None
                self._returned_at = self._poll
                log.info("elephant %s back on %s", record.key,
                         " > ".join(link for link, _ in held.path) or "the hashed routes")
                continue
            log.info("elephant %s (%s -> %s) at %.1f Gb/s", record.key, record.src_host,
                     record.dst_host, record.rate_bps / 1e9)
            if carried(record):
                log.info("elephant %s is carried by a reservation: not pinned", record.key)
                continue
            fresh.append(record)
        new = fresh
        if not new:
            return msgs, 0
        if self.placer is None:
            return msgs, len(new)          # ecmp / shortest: the static rules place them
        self._place(new, background, reserved(), msgs)
        return msgs, len(new)

    def loose(self) -> list[FlowRecord]:
        """Elephants loadaware has not pinned: new ones before their placing, those a
        reservation's rules carry, those no route took; nothing under another policy."""
        if self.placer is None:
            return []
        return [r for r in self.detector.elephants() if r.key not in self.pinned]

    def place(self, records: list[FlowRecord], background: dict[DirectedLink, float],
              reserved_now: Reserved) -> tuple[dict[str, list], int]:
        """Place elephants found before, as new ones: one a reservation carried when it was
        found, until the reservation stopped carrying it (DEGRADED by a cut or a slower
        mode, or ended), was never offered again and rode the hashed routes (an outside
        optical tester: two DEGRADED pairs' streams on one wavelength for two minutes,
        its sibling idle, 6 % lost). Returns (messages per switch, elephants pinned)."""
        msgs: dict[str, list] = {}
        if self.placer is None or not records:
            return msgs, 0
        for record in records:
            log.info("elephant %s is carried by no reservation now", record.key)
        return msgs, self._place(records, background, reserved_now, msgs)

    def _place(self, records: list[FlowRecord], background: dict[DirectedLink, float],
               reserved_now: Reserved, msgs: dict[str, list]) -> int:
        """Place and pin each of `records` by the loadaware rule, one after another on
        the load the ones before add; returns how many were pinned."""
        pinned = 0
        demands = self._demands()
        load = self._placement_load(background, reserved_now)
        for record in records:
            flow = Flow(next(self._ids), record.src_host, record.dst_host, record.key.src_port,
                        record.key.dst_port, record.key.ip_proto)
            try:
                path = self.placer.place(flow, demands[record.key], load, reserved_now.booked)
                hops = self.expand(record, path)
            except ValueError as exc:       # no live route now: the hashed routes carry it
                log.warning("elephant %s not pinned: %s", record.key, exc)
                continue
            add_load(load, path, demands[record.key])
            pin = Pinned(flow, record, demands[record.key], path, hops, self._poll)
            self.pinned[record.key] = pin
            _merge(msgs, elephant_rules.pin(self.fabric, record.key, pin.hops))
            log.info("elephant %s pinned to %s (demand %.0f Gb/s)", record.key,
                     " > ".join(link for link, _ in path), demands[record.key] / 1e9)
            pinned += 1
        return pinned

    def unpin_carried(self, carried: Callable[[FlowRecord], bool]) -> dict[str, list]:
        """Pins of elephants whose packets a reservation's rules now carry (restored after
        it was DEGRADED, or admitted since): the reservation comes first, and the pin only
        counted the flow's load where it does not go (a re-tester's, placed again onto a
        wavelength it never took). Returns messages per switch."""
        msgs: dict[str, list] = {}
        for key, pin in list(self.pinned.items()):
            if carried(pin.record):
                log.info("elephant %s is carried by a reservation now: unpinned", key)
                self._unpin(key, msgs)
        return msgs

    def _repin(self, msgs: dict[str, list], pin: Pinned, hops: list[tuple[str, int]]) -> None:
        """Move `pin` onto `hops`, make before break as a reservation moves: the new pins
        last hop first (an ADD replaces a pin in place), then the removals at switches the
        new path leaves out. (A code reviewer: a revisit sent the removals first, so a
        switch of the old path could drop its pin before the ingress leaf turned.)"""
        new = elephant_rules.pin(self.fabric, pin.record.key, hops)
        _merge(msgs, {switch: new[switch] for switch in reversed(list(new))})
        stale = {s for s, _ in pin.hops} - {s for s, _ in hops}
        _merge(msgs, elephant_rules.unpin(pin.record.key, sorted(stale)))

    def _unpin(self, key: FlowKey, msgs: dict[str, list]) -> None:
        pin = self.pinned.pop(key)
        _merge(msgs, elephant_rules.unpin(key, [s for s, _ in pin.hops]))

    def _expire(self, now: float, msgs: dict[str, list]) -> None:
        """Unpin the elephants idle for the whole hold: they are not coming back."""
        for key, pin in list(self.pinned.items()):
            if pin.idle_since is not None and now - pin.idle_since >= pin.hold_s:
                log.info("elephant %s idle for %.0f s: unpinned", key, now - pin.idle_since)
                self._unpin(key, msgs)

    def revisit(self, background: dict[DirectedLink, float],
                reserved: Reserved = NO_RESERVATIONS) -> tuple[dict[str, list], int]:
        """Re-place pinned elephants where that takes them off reserved room they
        overfill, or lowers utilization by more than the hysteresis; returns (messages
        per switch, elephants moved)."""
        self._poll += 1
        if self.placer is None or not self.pinned:
            self._proposed = {}
            return {}, 0
        # Periodic elephants coming back (a training step's sync starting) are found one
        # poll apart, and until all are, the demand estimate of those found is too high
        # (Hedera shares a NIC among the elephants it knows): moves made on it churn the
        # sync's placement, and each move costs its flows a reordering. Wait until the
        # returns have settled, as a new pin does.
        if self._poll - self._returned_at <= SETTLE_POLLS:
            self._proposed = {}
            return {}, 0
        for key, pin in self.pinned.items():
            record = self.detector.flows.get(key)
            if pin.idle_since is None and record is not None:
                pin.rates.append(record.rate_bps)
        demands = self._demands(background)
        for key, pin in self.pinned.items():
            pin.demand_bps = demands.get(key, pin.demand_bps)    # idle: its last demand
        # A pin younger than SETTLE_POLLS is measured on the wavelength it left as well as on
        # the one it took: it stays put (it still counts in the load) until that passes.
        # An idle pin has nothing to measure: it stays, keeping its room, until it returns.
        placed = {pin.flow: (pin.demand_bps, pin.path) for pin in self.pinned.values()
                  if pin.path and pin.idle_since is None
                  and self._poll - pin.since_poll > SETTLE_POLLS}
        proposed = self.placer.revisit(placed, self._placement_load(background, reserved),
                                       reserved.booked)
        # A move is made only when two revisits in a row propose it: port and flow
        # counters are read at different moments, and while TCP ramps (a flow just
        # pinned doubling its rate) one poll's residual can look like load that is not
        # there. Moved on it, elephants on idle wavelengths hopped back and forth (an
        # outside tester's "moved from w2; w1", and a CI run's flows split over four).
        moves = [m for m in proposed if self._proposed.get(m.flow) == m.new]
        self._proposed = {m.flow: m.new for m in proposed}
        by_flow = {pin.flow: pin for pin in self.pinned.values()}
        msgs: dict[str, list] = {}
        measured = dict(background)           # as the moves made so far leave it
        made = 0
        for move in moves:
            pin = by_flow[move.flow]
            rate = statistics.fmean(pin.rates) if pin.rates else 0.0
            # (off reserved room it goes wherever the placer says: reservations come first)
            full = (None if any(reserved.booked.get(link) for link in pin.path)
                    else self._overfilled(pin, move.new, rate, measured))
            if full is not None:
                log.debug("elephant %s stays: %s is full of what app-limited elephants send",
                          pin.record.key, full[0])
                continue
            add_load(measured, pin.path, -rate)
            add_load(measured, move.new, rate)
            hops = self.expand(pin.record, move.new)
            self._repin(msgs, pin, hops)
            pin.previous = pin.path
            pin.path, pin.hops, pin.since_poll = move.new, hops, self._poll
            log.info("elephant %s moved to %s", pin.record.key,
                     " > ".join(link for link, _ in move.new))
            made += 1
        return msgs, made

    def _overfilled(self, pin: Pinned, new: Path, rate: float,
                    measured: dict[DirectedLink, float]) -> DirectedLink | None:
        """A wavelength of `new` that `pin`, sending `rate`, would overfill where the
        traffic measured there is what app-limited elephants choose to send (the pin is
        one, or one is on that wavelength): demand met, which a newcomer only pushes past
        capacity. TCP squeezed by the network is not that, and moves among such links
        stand. (A training sync's paced flows, found app-limited at different polls on a
        busy machine, were counted some at their rate and some at a wavelength each, so of
        two wavelengths that four flows each filled one looked emptier, and a revisit moved
        a flow onto it, and back the next step: an outside tester's 3-site ring.)"""
        capacity = self.candidates.capacity_bps
        for link in new:
            if link in pin.path or measured.get(link, 0.0) + rate <= capacity[link]:
                continue
            if pin.app_limited or any(
                    other is not pin and other.app_limited and other.idle_since is None
                    and link in other.path for other in self.pinned.values()):
                return link
        return None

    def restore(self, background: dict[DirectedLink, float],
                reserved: Reserved = NO_RESERVATIONS) -> tuple[dict[str, list], int]:
        """After a failure: every pinned elephant whose path crosses a link or switch that
        is down is placed again on what survives (loadaware), or, with no live route,
        unpinned to the hashed routes. Returns (messages per switch, elephants moved)."""
        engine = self.graph
        if self.placer is None:
            return {}, 0
        broken = [pin for pin in self.pinned.values()
                  if not pin.path
                  or any(not engine.usable(self.fabric.link(name)) for name, _ in pin.path)
                  or any(not engine.switch_up(s) for s, _ in pin.hops)]
        return self._place_again(broken, background, reserved, moved_off=False)

    def spread(self, background: dict[DirectedLink, float], returned: set[str],
               reserved: Reserved = NO_RESERVATIONS) -> tuple[dict[str, list], int]:
        """Wavelengths `returned` (link names) are in service again: the pinned elephants
        that could take them are placed again together, so those a failure crowded onto
        the survivors spread out (each stays where it is best). Idle pins too: a training
        sync's flows are idle between steps and, back, too short for revisits to move
        (they wait for the returns to settle), so they stayed crowded and lost packets (a
        cut then lit again under `dcilab train`: 1 700 drops a sync after the return
        against 0 before the cut). Returns (messages per switch, elephants moved)."""
        if self.placer is None or not self.pinned or not returned:
            return {}, 0
        pins = [pin for pin in self.pinned.values() if pin.path and any(
            link in returned for route in self.candidates.for_flow(pin.flow)
            for hop in route.hops for link, _ in hop.wavelengths)]
        pins.sort(key=lambda pin: (-pin.demand_bps, pin.flow.id))   # largest first: even
        # What they send now is theirs to take along, not background where they are.
        background = dict(background)
        for pin in pins:
            record = self.detector.flows.get(pin.record.key)
            if record is not None:
                add_load(background, pin.path, -record.rate_bps)
        return self._place_again(pins, background, reserved, moved_off=True)

    def make_way(self, background: dict[DirectedLink, float],
                 reserved: Reserved) -> tuple[dict[str, list], int]:
        """Reservations just took room (admitted, moved, or restored): pinned elephants
        on a wavelength holding reservations that their rates and what is `reserved`
        (booked) there overfill are placed again at once, not at the next poll: the
        wavelength serves the reserved traffic first, so they would be squeezed meanwhile
        (and, before it did, reserved packets were lost). Measured traffic is left out of
        that test (during a failover it shows elephants where their pins are not), not out
        of where they go. Returns (messages per switch, elephants moved)."""
        if self.placer is None or not self.pinned:
            return {}, 0
        # What an elephant sends now, not its demand estimate (a NIC's share: 800-1600
        # Gb/s, which would overfill every reserved wavelength and move elephants that
        # fit beside the reservation, an outside tester saw).
        need = dict(reserved.booked)
        for key, pin in self.pinned.items():
            record = self.detector.flows.get(key)
            if pin.idle_since is None:
                add_load(need, pin.path, record.rate_bps if record is not None
                         else pin.demand_bps)
        capacity = self.candidates.capacity_bps
        over = {d for d, v in need.items()                # where reservations share it
                if reserved.booked.get(d) and v > capacity.get(d, float("inf")) + 1.0}
        crowded = [pin for pin in self.pinned.values()
                   if pin.path and pin.idle_since is None and over.intersection(pin.path)]
        return self._place_again(crowded, background, reserved, moved_off=True)

    def _place_again(self, pins: list[Pinned], background: dict[DirectedLink, float],
                     reserved: Reserved, moved_off: bool) -> tuple[dict[str, list], int]:
        """Place `pins` again, together, on the load without them (loadaware). With
        `moved_off`, a pin that moves remembers the path it left (its flow still measures
        there until the move settles), as a revisit's does; a broken path is forgotten."""
        msgs: dict[str, list] = {}
        if not pins:
            return msgs, 0
        was = {pin.flow: (pin.path, pin.previous) for pin in pins}
        for pin in pins:                        # off the load first: they move together
            pin.previous, pin.path = (), ()
        load = self._placement_load(background, reserved)
        placed = 0
        for pin in pins:
            try:
                path = self.placer.place(pin.flow, pin.demand_bps, load, reserved.booked)
                hops = self.expand(pin.record, path)
            except ValueError as exc:
                # No live route: the hashed routes carry it; placed again when one returns.
                if pin.hops:
                    log.warning("elephant %s unpinned until a route returns: %s",
                                pin.record.key, exc)
                    _merge(msgs, elephant_rules.unpin(pin.record.key, [s for s, _ in pin.hops]))
                pin.hops = []
                continue
            add_load(load, path, pin.demand_bps)
            old_path, old_previous = was[pin.flow]
            if path == old_path and hops == pin.hops:
                pin.path, pin.previous = old_path, old_previous     # nowhere better: stays
                continue
            self._repin(msgs, pin, hops)
            pin.path, pin.hops, pin.since_poll = path, hops, self._poll
            if moved_off:
                pin.previous = old_path
            placed += 1
            log.info("elephant %s placed again onto %s", pin.record.key,
                     " > ".join(link for link, _ in path))
        return msgs, placed

    def program(self, switch: str) -> list:
        """The pins a (re)connecting switch must get back."""
        msgs: list = []
        for pin in self.pinned.values():
            here = [h for h in pin.hops if h[0] == switch]
            msgs += elephant_rules.pin(self.fabric, pin.record.key, here).get(switch, [])
        return msgs

    def _demands(self, measured: dict[DirectedLink, float] | None = None
                 ) -> dict[FlowKey, float]:
        """Each elephant's demand: Hedera's natural demand (its sender's NIC shared among
        its hosts' elephants); once pinned, never more than one wavelength of its path
        carries (an unsplit flow takes one); and, for a settled pin found on a path with
        room (`measured`: every link's traffic; each pin's verdict is updated), what it
        sends, with headroom (app-limited: paced or fixed-rate). Charged a NIC's share
        instead, three 2 Mb/s UDP streams read as 800 Gb/s each, twice their wavelength,
        and a revisit moved a TCP elephant onto another's full wavelength (an outside
        tester's)."""
        records = self.detector.elephants()
        fractions = estimate_demands([(r.src_host, r.dst_host) for r in records])
        capacity = self.candidates.capacity_bps
        demands = {}
        for r, f in zip(records, fractions):
            # A new elephant is placed on the whole estimate: its own traffic, still hashed
            # somewhere, is in the measured load it is placed against (capped, two new
            # ones from two leaves met on one wavelength beside a reservation's).
            demand = f * self.candidates.nic_bps(r.src_host)
            pin = self.pinned.get(r.key)
            if pin is not None and pin.path:
                demand = min(demand, min(capacity[link] for link in pin.path))
                if self._poll - pin.since_poll <= SETTLE_POLLS:
                    if pin.app_limited:              # moving: as it was, until measured
                        demand = min(demand, pin.demand_bps)
                elif measured is not None and pin.rates:
                    busiest = max(measured.get(link, 0.0) / capacity[link]
                                  for link in pin.path)
                    rate = sum(pin.rates) / len(pin.rates)
                    if not pin.app_limited and busiest < ROOMY:
                        pin.app_limited, pin.app_rate = True, rate
                        log.info("elephant %s app-limited: %.0f Gb/s on a path %.0f%% busy",
                                 r.key, rate / 1e9, busiest * 100)
                    elif pin.app_limited and busiest >= FULL and rate < SLOWED * pin.app_rate:
                        pin.app_limited = False                 # held back: Hedera's again
                        log.info("elephant %s held back: %.0f Gb/s, had %.0f; its path %.0f%% "
                                 "busy", r.key, rate / 1e9, pin.app_rate / 1e9, busiest * 100)
                    elif pin.app_limited:
                        pin.app_rate = max(pin.app_rate, rate)
                    if pin.app_limited:
                        demand = min(demand, HEADROOM * rate)
            demands[r.key] = demand
        return demands

    def _placement_load(self, background: dict[DirectedLink, float],
                        reserved: Reserved = NO_RESERVATIONS) -> dict[DirectedLink, float]:
        """Background (measured, less what pinned elephants and reservations send), what
        reservations book, in full, and the pinned elephants' demands."""
        load = dict(background)
        # What reservations send is theirs, counted below as booked: left in the measured
        # remainder, it was floored away with it when an elephant beside one was counted at
        # its leaf before the drops (a re-tester's 144 Gb/s reservation vanished, and an
        # elephant that filled its wavelength stayed: 14 % of reserved packets lost).
        for link, bps in reserved.sent.items():
            load[link] = load.get(link, 0.0) - bps
        for key, pin in self.pinned.items():
            # What the flow measures now (an idle pin's flow may be back before a poll
            # has found it an elephant again; gone, it measures nothing).
            record = self.detector.flows.get(key)
            rate = record.rate_bps if record is not None else 0.0
            add_load(load, pin.path, -rate)
            if pin.previous and self._poll - pin.since_poll <= SETTLE_POLLS:
                # Just moved: the last measurement still shows it on its old path too.
                add_load(load, pin.previous, -rate)
        capacity = self.candidates.capacity_bps
        for link in load:
            # Port and flow counters are read at slightly different moments, so what is
            # left after taking the elephants out is noisy: under NOISE_FLOOR of the
            # wavelength it is taken as nothing, or revisits would chase the noise.
            residual = load[link]
            load[link] = residual if residual > NOISE_FLOOR * capacity[link] else 0.0
        # Exact, not measured: under the floor, a reservation of less than 15 % of its
        # wavelength counted as nothing, and an elephant was placed beside it (a tester's).
        for link, bps in reserved.booked.items():
            load[link] = load.get(link, 0.0) + bps
        for pin in self.pinned.values():
            add_load(load, pin.path, pin.demand_bps)
        return load

    def expand(self, record: FlowRecord, path: Path) -> list[tuple[str, int]]:
        """The directed wavelengths of a placement as every (switch, out port) hop, from the
        source leaf to the destination host. Inside a site, of the equal-latency ways (one
        per spine) it takes the one whose busiest hop carries the least pinned demand, so
        elephants on different wavelengths do not meet again on one spine link; ties go
        by a hash of the flow, as the select groups would."""
        src, dst = self.fabric.hosts[record.src_host], self.fabric.hosts[record.dst_host]
        spread = zlib.crc32(str(record.key).encode())
        pinned = self._pinned_demand(exclude=record.key)
        hops: list[tuple[str, int]] = []
        node = src.leaf
        for link_name, sender in path:
            hops += self._segment(node, sender, spread, pinned)
            link = self.fabric.link(link_name)
            hops.append((sender, link.end(sender).port))
            node = link.other(sender).node
        hops += self._segment(node, dst.leaf, spread, pinned)
        hops.append((dst.leaf, dst.port))
        return hops

    def _pinned_demand(self, exclude: FlowKey) -> dict[tuple[str, int], float]:
        """Demand of the pinned elephants on each (switch, out port)."""
        out: dict[tuple[str, int], float] = {}
        for key, pin in self.pinned.items():
            if key != exclude:
                for hop in pin.hops:
                    out[hop] = out.get(hop, 0.0) + pin.demand_bps
        return out

    def _segment(self, u: str, v: str, spread: int,
                 pinned: dict[tuple[str, int], float]) -> list[tuple[str, int]]:
        if u == v:
            return []
        options = [[(h.switch, h.out_port) for h in option]
                   for option in self.graph.paths(u, v, limit=16)]
        if not options:
            raise ValueError(f"no live path from {u} to {v}")
        first = spread % len(options)
        order = options[first:] + options[:first]
        return min(order, key=lambda hops: max(pinned.get(h, 0.0) for h in hops))


def _merge(into: dict[str, list], more: dict[str, list]) -> None:
    for switch, msgs in more.items():
        into.setdefault(switch, []).extend(msgs)
