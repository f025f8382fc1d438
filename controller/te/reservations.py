"""Bandwidth reservations between hosts: admission without overbooking, no splitting.

A reservation takes one path and, on each DCI hop, one wavelength. It is admitted only if
every directed link on it keeps  reserved <= capacity x reservable_fraction.

Which feasible path: the one of least latency, and among equal-latency paths the widest
(largest bottleneck headroom); on each DCI hop the *best-fit* wavelength, the one with the
least free capacity that still fits. A longer path would hold capacity on more links;
best fit keeps whole wavelengths free for later large requests (the bin-packing argument),
so both choices leave the most room for what comes next.

The search (the path engine's `widest_shortest`, given the room this book leaves on each
directed link) is a Dijkstra over the links that still have room for the request, ordered by
(latency, then widest): the widest-shortest path of Wang & Crowcroft (IEEE JSAC 1996),
exact for every request, so a free longer path is found however many equal short ones
are full. It is guided (A*) by each switch's unloaded latency to the destination, cached
per destination leaf, so it explores little beyond the corridor it ends up using. Leaves
are never transit: a path enters only its destination leaf.

Reservations of one host pair share one path and one policer: their rules match the
pair's addresses, and the pair's meter polices the sum of their rates. A further
reservation goes on the pair's path if it fits; otherwise the pair's aggregate moves as a
whole (ids and meter kept) to the best path with room for the new sum; otherwise one
other aggregate is moved aside to a path of its own if that makes room (the
rearrangement that beats packing fragmentation); otherwise every movable aggregate may
change route and wavelengths (`te.repack`: a small MILP, the fewest moved, within
REPACK_TIME_LIMIT_S; inside the sites, where it chooses nothing, those staying on their
wavelengths give way if the moving ones find no room), the moves ordered so that each
fits where it lands while the others still hold their paths (a swap is untied by parking
one on a path with room); only then is it refused. `admit_moving` says which aggregates
moved, in order, for the caller to move their rules make before break.

Shared standby: a PROTECTED reservation's standby holds bandwidth only where its primary
does not go, and there it is shared: a directed link holds, for standby, the largest sum
over single risk events (a line system, an SRLG) of the standbys whose primaries that
event fails. Each standby avoids its primary's risks, so one event never needs more;
primaries and that largest sum together stay within the link's reservable capacity.

The book holds live reservations only: one that ends leaves it (its record is the
caller's to keep), so its memory follows what is reserved now, not the history.

Failures: the path engine says which links are up. `displaced` lists the host pairs whose
path crosses a link that is down; `repath` moves a pair, as a whole and with its meter, to
the best path with room for its sum; a pair that finds none is `degrade`d: DEGRADED, with
the reason, holding no bandwidth (its traffic is carried best effort), until `repath`
succeeds when capacity returns. Pairs are restored RESTORABLE before NONE (`protection`),
then highest `priority` first, then oldest.

Selectors: a reservation that names its traffic (`Selector`: an IP protocol and
destination ports, or a DSCP value) is an aggregate of its own, with the reservations of
the same pair and the same selector: its own path, rules and meter. Aggregates are keyed
by (src, dst, selector); selectors of one pair that overlap (and differ) are refused.

This module is pure: the caller supplies ids and the time, and serializes calls.
"""

from __future__ import annotations

import contextlib
import heapq
import math
from collections import deque
from collections.abc import Container
from dataclasses import dataclass, replace
from enum import Enum
from typing import NamedTuple

from ..fabric import Fabric
from ..fabric.model import HOST, Link
from .load import Direction, directions
from .milp import load_solver
from .paths import PathEngine
from .placement import Candidates
from .protection import RiskAvoid, SharedRisk
from .repack import SLACK_BPS, Unit, repack

DEFAULT_RESERVABLE_FRACTION = 0.9

# Limits on a request (AIP-203: every field bounded). A reservation's record must stay
# representable everywhere it goes: a protobuf Timestamp ends at year 9999, so a duration
# is capped far below that; names and ids are short, so an error or a listing never
# carries a megabyte of someone's input.
MAX_DURATION_S = 10 * 365 * 86400.0        # ten years
MAX_BANDWIDTH_GBPS = 1_000_000.0           # 1 Pb/s: beyond any link, yet a plain number
# ... and at least enough to mean something: an OpenFlow meter counts kb/s, so less would
# round to a meter that passes nothing; a reservation over before its rules are even
# acknowledged by the switches is none.
MIN_BANDWIDTH_GBPS = 0.001                 # 1 Mb/s
MIN_DURATION_S = 1.0                       # unless 0: until released
MAX_LATENCY_MS = 1_000_000.0
MAX_NAME_CHARS = 64                        # host names, reservation ids
MAX_REQUEST_ID_CHARS = 128                 # a UUID is 36


class State(str, Enum):
    PENDING = "PENDING"      # admitted; its rules are not yet acknowledged by every switch
    ACTIVE = "ACTIVE"
    DEGRADED = "DEGRADED"    # its path failed and no other had room: carried best effort
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"

    @property
    def live(self) -> bool:
        return self in (State.PENDING, State.ACTIVE, State.DEGRADED)


class Protection(str, Enum):
    """How a reservation survives a failure of its path (the one definition: the API,
    the CLI and the metrics use these names)."""

    NONE = "NONE"                # restored if there is room, after RESTORABLE ones
    RESTORABLE = "RESTORABLE"    # the default: restored first
    PROTECTED = "PROTECTED"      # a reserved, pre-installed, risk-disjoint standby path

    @property
    def restore_rank(self) -> int:
        return 1 if self == Protection.NONE else 0


class Selector(NamedTuple):
    """Which of a pair's traffic a reservation is for: an IP protocol, with (TCP, UDP) a
    destination port range (0-0: every port); or a DSCP value."""

    ip_proto: int = 0
    port_min: int = 0
    port_max: int = 0
    dscp: int | None = None

    @property
    def has_ports(self) -> bool:
        return self.port_max > 0

    def overlaps(self, other: "Selector") -> bool:
        """Some packet matches both, and priority alone would choose between them: the
        same kind (both protocol, or both DSCP) and not disjoint."""
        if (self.dscp is None) != (other.dscp is None):
            return False             # DSCP and protocol selectors: the protocol one wins
        if self.dscp is not None:
            return self.dscp == other.dscp
        if self.ip_proto != other.ip_proto:
            return False
        if not self.has_ports or not other.has_ports:
            return True
        return self.port_min <= other.port_max and other.port_min <= self.port_max

    def __str__(self) -> str:
        if self.dscp is not None:
            return f"dscp {self.dscp}"
        name = PROTOCOL_NAMES.get(self.ip_proto, f"proto {self.ip_proto}")
        if not self.has_ports:
            return name
        ports = (f"{self.port_min}" if self.port_min == self.port_max
                 else f"{self.port_min}-{self.port_max}")
        return f"{name} dport {ports}"


PROTOCOL_NAMES = {6: "tcp", 17: "udp"}


# Requests and hops are named tuples: a dozen hops are built on every admission, and a
# named tuple costs half as much to build as a frozen dataclass.
class ReservationRequest(NamedTuple):
    src_host: str
    dst_host: str
    bandwidth_gbps: float
    max_latency_ms: float | None = None
    duration_s: float = 0.0          # 0: until released
    request_id: str = ""
    priority: int = 0                # restored after a failure highest first (then oldest)
    selector: Selector | None = None  # None: the pair's aggregate
    protection: Protection = Protection.RESTORABLE


# A reservation's aggregate: the reservations of one host pair with the same selector
# share one path, one set of rules and one meter.
Key = tuple[str, str, "Selector | None"]


def key_of(req: "ReservationRequest") -> Key:
    return (req.src_host, req.dst_host, req.selector)


class ReservedHop(NamedTuple):
    switch: str
    out_port: int
    link: str
    wavelength: str | None


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: str
    request: ReservationRequest
    state: State
    hops: tuple[ReservedHop, ...]
    latency_ms: float
    created_at: float                # unix seconds
    expires_at: float | None
    meter_id: int                    # OpenFlow meter at the ingress leaf
    reason: str = ""                 # why it is DEGRADED
    standby: tuple[ReservedHop, ...] = ()   # PROTECTED: its reserved, risk-disjoint standby

    @property
    def bandwidth_bps(self) -> float:
        return self.request.bandwidth_gbps * 1e9

    def with_state(self, state: State, reason: str = "") -> "Reservation":
        return replace(self, state=state, reason=reason)

    @property
    def holds_bandwidth(self) -> bool:
        return self.state.live and self.state != State.DEGRADED


# What `_check_protectable` and `_widest_ever` keep found: pairs (and bounds) asked, most
# repeat.
PROTECTABLE_KEPT = 4096


def without_loops(hops: tuple[ReservedHop, ...]) -> tuple[ReservedHop, ...]:
    """`hops` with every return to a switch already crossed cut out: the first visit's
    hop is replaced by the last's. A standby goes back from the primary's gateway (its
    repair point) through the spine it came by; a switch holds one rule per match, so
    once a standby carries traffic untagged, as the primary, the switches take the short
    way, and the path must say so (an auditor's: the links of the loop were booked and
    their latency counted, though nothing crossed them)."""
    out: list[ReservedHop] = []
    for hop in hops:
        seen = next((i for i, h in enumerate(out) if h.switch == hop.switch), None)
        if seen is not None:
            del out[seen:]
        out.append(hop)
    return tuple(out)


def lacks_standby(res: Reservation) -> bool:
    """A PROTECTED reservation holding bandwidth over a line system, without a standby."""
    return (res.request.protection == Protection.PROTECTED and res.holds_bandwidth
            and not res.standby and any(h.wavelength for h in res.hops))


def selector_problem(sel: Selector) -> str:
    """What is wrong with a selector, or ''."""
    if sel.dscp is not None:
        if sel.ip_proto or sel.has_ports or sel.port_min:
            return "give a DSCP value or an IP protocol (with ports), not both"
        if not 0 <= sel.dscp <= 63:
            return f"dscp must be 0-63, got {sel.dscp}"
        return ""
    if not 1 <= sel.ip_proto <= 255:
        return (f"ip_protocol must be 1-255 (6 tcp, 17 udp), got {sel.ip_proto}; or give "
                f"dscp (0-63) instead")
    if sel.port_min or sel.port_max:
        if sel.ip_proto not in PROTOCOL_NAMES:
            return (f"a destination port range needs ip_protocol 6 (tcp) or 17 (udp), "
                    f"got {sel.ip_proto}")
        if not 1 <= sel.port_min <= sel.port_max <= 65535:
            return (f"dst_port_min..dst_port_max must satisfy 1 <= min <= max <= 65535, got "
                    f"{sel.port_min}..{sel.port_max}")
    return ""


class Move(NamedTuple):
    """One aggregate moved as a whole (same ids, same meter): its members before and after."""
    before: list
    after: list


# How a reason says a path is over its bound: a cause that does not end (see
# `core.controller.still_no_room`).
OVER_BOUND = " since the fabric changed, over its max_latency_ms"

# Meter ids freed after an id before it is given again (ids stay under the peak number of
# aggregates plus this).
METER_REST = 64
# How many other aggregates admission tries to move aside before it refuses a request.
MAKE_ROOM_TRIES = 16
# Then a re-packing of every movable aggregate is looked for (te.repack): within this
# time (a refusal costs at most this much more), over routes of at most this stretch.
REPACK_TIME_LIMIT_S = 0.2
REPACK_MAX_STRETCH = 100.0     # any route (the long way round a ring too), ...
REPACK_MAX_ROUTES = 16         # ... the 16 of least latency for the request's pair,
REPACK_OTHER_ROUTES = 4        # the 4 of least latency (and its own) for the others


class AdmissionError(Exception):
    """A request that cannot be admitted. `code` maps onto gRPC status codes."""

    INVALID = "invalid_argument"
    EXHAUSTED = "resource_exhausted"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    PRECONDITION = "failed_precondition"     # the fabric cannot offer it, however empty
    ABANDONED = "abandoned"                  # its caller gave up (deadline) before booking

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(reservation_id: str) -> AdmissionError:
    return AdmissionError(AdmissionError.NOT_FOUND, f"no reservation {shown(reservation_id)}")


def shown(text: str, limit: int = MAX_NAME_CHARS) -> str:
    """`text` quoted for a message, cut at `limit` characters: errors never echo
    unbounded input."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} chars)"


def _exact(value: float) -> str:
    """A number as sent, to its last digit: 1000000.5 must not read as the limit 1e+06,
    nor 1e6 + 1e-9 (an outside tester's) as 1000000. Whole numbers without the '.0'."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def check_id(field_name: str, value: str, limit: int = MAX_NAME_CHARS) -> None:
    """INVALID_ARGUMENT unless `value` is at most `limit` printable characters."""
    if len(value) > limit:
        raise AdmissionError(AdmissionError.INVALID,
                             f"{field_name}: at most {limit} characters, got {len(value)}")
    if not value.isprintable():
        raise AdmissionError(AdmissionError.INVALID,
                             f"{field_name}: only printable characters, got {shown(value)}")


def same_request(a: ReservationRequest, b: ReservationRequest) -> bool:
    """Whether two requests ask for the same thing (their request_id aside)."""
    return a._replace(request_id="") == b._replace(request_id="")


def reused_request_id(req: ReservationRequest, first: Reservation) -> AdmissionError:
    """AIP-155: a request_id reused with other parameters is an error, not the first
    answer."""
    theirs = first.request

    def value(v) -> str:                     # as a client wrote it, never a Python repr
        if isinstance(v, Enum):
            return v.value
        if isinstance(v, str):
            return shown(v)
        return "none" if v is None else str(v)
    def field(name: str) -> str:             # the request message's name for it
        return "duration" if name == "duration_s" else name

    def of(name: str, request: ReservationRequest) -> str:
        v = getattr(request, name)
        return f"{v:g} s" if name == "duration_s" else value(v)
    diffs = [f"{field(name)} {of(name, req)} (first: {of(name, theirs)})"
             for name in req._fields if name != "request_id"
             and getattr(req, name) != getattr(theirs, name)]
    return AdmissionError(
        AdmissionError.ALREADY_EXISTS,
        f"request_id {shown(req.request_id)} was used for reservation "
        f"{first.reservation_id} with other parameters: {'; '.join(diffs)}")


class ReservationBook:
    """Every live reservation and the bandwidth it holds on each directed link."""

    def __init__(self, fabric: Fabric, reservable_fraction: float = DEFAULT_RESERVABLE_FRACTION,
                 engine: PathEngine | None = None, rearrange: bool = True,
                 repack_time_limit_s: float = REPACK_TIME_LIMIT_S, share_standby: bool = True):
        """`rearrange` False: the previous rule, kept as the benchmark's baseline: a pair's
        further reservations only on its path, and nothing is moved to make room.
        `share_standby` False: each PROTECTED reservation's standby holds its bandwidth on
        its own (the previous rule, for comparison)."""
        if not 0 < reservable_fraction <= 1:
            raise ValueError(f"reservable_fraction must be in (0, 1], got {reservable_fraction}")
        self.fabric = fabric
        self.fraction = reservable_fraction
        self.engine = engine or PathEngine(fabric)
        self.rearrange = rearrange
        self.repack_time_limit_s = repack_time_limit_s if rearrange else 0.0
        if self.repack_time_limit_s > 0:
            load_solver()                   # before the first admission that re-packs
        self._candidates: Candidates | None = None     # made on the first re-packing
        self._created_floor = -math.inf                 # the last creation time given
        self._intact: PathEngine | None = None          # every link up: for bounds
        # (src leaf, dst leaf, latency bound) -> the most one path could ever reserve, for
        # the wavelength rates it was computed at (only a mode change moves it, not a failure)
        self._widest: dict[tuple[str, str, float | None], float] = {}
        self._widest_at: frozenset | None = None
        self._ceilings: dict[Direction, float] = {}
        self.reservations: dict[str, Reservation] = {}
        # While a caller records (`recording`): each reservation as it was before its first
        # change (None: not booked), what a change that cannot be saved is taken back to.
        self.journal: dict[str, Reservation | None] | None = None
        self.by_request_id: dict[str, str] = {}
        # (expiry, id) of live reservations with a duration, soonest first; entries of
        # ended ones are dropped as they surface (`due`), so a tick costs what is due, or
        # all at once when they outnumber the rest (released long before their expiry).
        self._expiry: list[tuple[float, str]] = []
        self._expiry_stale = 0
        self.reserved: dict[Direction, float] = {}     # primaries + shared standby
        # Shared standby: directed link -> risk event -> the standby bandwidth needed there
        # when that event fails; what it holds is the largest (counted in `reserved`).
        self.share_standby = share_standby
        # (src host, dst host, bound) -> (engine version, the most bandwidth found
        # protectable then): `_check_protectable` asks the fabric once per pair and state
        self._protectable_bps: dict[tuple, tuple[int, float]] = {}
        self._standby_need: dict[Direction, dict[str, float]] = {}
        self._standby_max: dict[Direction, float] = {}
        # The wavelengths down recently enough that their failure's other port statuses
        # may still be coming (the controller keeps it by the clock); None: every one down.
        self.settling: frozenset[str] | None = None
        self._far: dict[tuple[str, str], str] = {}      # (switch, link) -> the other end
        for link in fabric.links:
            self._far[(link.a.node, link.name)] = link.b.node
            self._far[(link.b.node, link.name)] = link.a.node
        # live (src, dst) -> its reservation ids, oldest first (they share its first's
        # path and meter)
        self._pairs: dict[Key, list[str]] = {}
        self._next_meter = 1
        self._meter_users: dict[int, int] = {}      # meter id -> live reservations on it
        self._free_meters: deque[int] = deque()     # ids given back, oldest first
        self._gaps_free = False    # ids below the highest restored one, unused: free too
        # Refusals stand until room is given back (`_room_back` counts each time it may
        # have been: an end, a degraded or moved aggregate, a link's state or rate).
        self._room_back = 0
        self._refused: dict[Key, tuple[float, float, Protection, AdmissionError]] = {}
        self._refused_in: tuple[int, int] = (0, -1)     # the state those refusals hold in
        self._risk = SharedRisk(fabric)                  # which line systems share a risk
        # line system -> the single risk events that fail it: itself, and each SRLG it is in
        self._events = {d.name: frozenset([f"line system {d.name}"]
                                          + [f"srlg {g}" for g in d.srlg])
                        for d in fabric.spec.dci_links}
        self._wavelengths: dict[str, list[str]] = {}     # line system -> its wavelengths
        for link in fabric.links:
            if link.line_system:
                self._wavelengths.setdefault(link.line_system, []).append(link.name)
        self._version = -1
        self._sync()

    def _sync(self) -> None:
        """Follow the path engine: only live links, at their current rate, are offered."""
        if self._version == self.engine.version:
            return
        self._version = self.engine.version
        fabric, engine = self.fabric, self.engine
        self._capacity: dict[Direction, float] = {}     # reservable, per directed link
        for link in fabric.links:
            rate = engine.rate_gbps(link) * 1e9 * self.fraction
            self._capacity[Direction(link.name, link.a.node, link.b.node)] = rate
            self._capacity[Direction(link.name, link.b.node, link.a.node)] = rate
        self._to_leaf: dict[str, dict[str, float]] = {}  # dst leaf -> switch -> latency

    # -- queries -------------------------------------------------------------------------

    def capacity_bps(self, d: Direction) -> float:
        return self._capacity[d]

    def free_bps(self, d: Direction) -> float:
        return self._capacity[d] - self.reserved.get(d, 0.0)

    def _link(self, name: str) -> Link:
        return self.fabric.link(name)

    def reserved_total(self) -> float:
        """Bandwidth held on all directed links together (bps): 0 when nothing is booked."""
        return sum(self.reserved.values())

    def live(self) -> list[Reservation]:
        return list(self.reservations.values())

    # -- admission ---------------------------------------------------------------------

    def validate(self, req: ReservationRequest, new: bool = True) -> None:
        """INVALID_ARGUMENT naming the field and its limit, for anything out of bounds.
        The lower limits hold for `new` requests only: a record an earlier version
        admitted below them is still restored."""
        hosts = self.fabric.hosts
        check_id("request_id", req.request_id, MAX_REQUEST_ID_CHARS)
        for field_name in ("src_host", "dst_host"):
            name = getattr(req, field_name)
            if not name:
                raise AdmissionError(AdmissionError.INVALID, f"{field_name}: required (a "
                                     f"host of the fabric, e.g. {next(iter(hosts))})")
            if name not in hosts:
                check_id(field_name, name)
                raise AdmissionError(AdmissionError.INVALID,
                                     f"{field_name}: unknown host {name!r} (hosts are named "
                                     f"<site>-h<n>, e.g. {next(iter(hosts))})")
        if req.src_host == req.dst_host:
            raise AdmissionError(AdmissionError.INVALID,
                                 f"src_host and dst_host are both {req.src_host!r}")
        least = MIN_BANDWIDTH_GBPS if new else 0.0
        if not (math.isfinite(req.bandwidth_gbps)
                and 0 < req.bandwidth_gbps <= MAX_BANDWIDTH_GBPS
                and req.bandwidth_gbps >= least):
            raise AdmissionError(AdmissionError.INVALID,
                                 f"bandwidth_gbps must be at least {MIN_BANDWIDTH_GBPS:g} "
                                 f"(1 Mb/s) and at most {MAX_BANDWIDTH_GBPS:g}, "
                                 f"got {_exact(req.bandwidth_gbps)}")
        if req.max_latency_ms is not None and not (
                math.isfinite(req.max_latency_ms) and 0 < req.max_latency_ms <= MAX_LATENCY_MS):
            raise AdmissionError(AdmissionError.INVALID,
                                 f"max_latency_ms must be positive and at most "
                                 f"{MAX_LATENCY_MS:g}, got {_exact(req.max_latency_ms)}")
        if not (math.isfinite(req.duration_s) and 0 <= req.duration_s <= MAX_DURATION_S
                and (req.duration_s == 0 or req.duration_s >= MIN_DURATION_S or not new)):
            raise AdmissionError(AdmissionError.INVALID,
                                 f"duration must be 0 (until released) or from "
                                 f"{MIN_DURATION_S:g} s to {MAX_DURATION_S:g} s (ten years), "
                                 f"got {_exact(req.duration_s)} s")
        sel = req.selector
        if sel is not None:
            problem = selector_problem(sel)
            if problem:
                raise AdmissionError(AdmissionError.INVALID, f"selector: {problem}")
        if not isinstance(req.protection, Protection):
            raise AdmissionError(AdmissionError.INVALID,
                                 f"protection must be one of "
                                 f"{', '.join(p.value for p in Protection)}, got {req.protection!r}")

    def restore_problem(self, res: Reservation) -> str | None:
        """Why `res`, read back from a store, cannot be booked on this fabric as it is
        now (None: it can). Checks its request, its hops (and standby's) against the
        fabric's links and ports, its meter against its aggregate's and the others', and
        that the bandwidth it holds still fits beside what is booked."""
        where = f"reservation {shown(res.reservation_id)}"
        try:
            check_id("reservation_id", res.reservation_id)
            self.validate(res.request, new=False)
        except AdmissionError as exc:
            return f"{where}: {exc.message}"
        if not res.hops:
            return f"{where}: no hops"
        problem = (self._path_problem(res, res.hops, "hop")
                   or (res.standby and self._path_problem(res, res.standby, "standby hop")))
        if problem:
            return f"{where}: {problem}"
        if res.expires_at is not None and not math.isfinite(res.expires_at):
            return f"{where}: expiry {res.expires_at} is not a time"
        src, dst = res.request.src_host, res.request.dst_host
        # its aggregate's first (the one the rest must agree with): not the whole list,
        # which made a restore of many in one aggregate quadratic (52 578 took 74 s)
        first = self._pairs.get(key_of(res.request))
        sharing = [self.reservations[first[0]]] if first else []
        if sharing and sharing[0].hops != res.hops:
            return (f"{where}: {src} -> {dst} already holds another path "
                    f"(reservation {sharing[0].reservation_id})")
        problem = self._meter_problem(res, sharing) or self._protection_problem(res, sharing)
        if problem:
            return f"{where}: {problem}"
        for d in self.held(res):
            if self.free_bps(d) + 1e-3 < res.bandwidth_bps:
                return f"{where}: " + self._exhausted(d, res.bandwidth_bps).message
        if not self._standby_fits(res, res.bandwidth_bps - 1e-3):
            return f"{where}: its standby has no room for {res.bandwidth_bps / 1e9:.3f} Gb/s"
        return None

    def _path_problem(self, res: Reservation, hops: tuple[ReservedHop, ...],
                      what: str) -> str | None:
        """Whether `hops` lead, link by link of this fabric, from the source host's leaf to
        the destination host (a primary's and a standby's alike)."""
        at = self.fabric.hosts[res.request.src_host].leaf
        dst = res.request.dst_host
        for i, hop in enumerate(hops):
            if hop.switch != at:
                return f"{what} {i} is at {hop.switch!r}, but the path is at {at!r}"
            try:
                link = self._link(hop.link)
            except KeyError:
                return f"{what} {i}: fabric {self.fabric.name!r} has no link {hop.link!r}"
            if hop.switch not in (link.a.node, link.b.node):
                return f"{what} {i}: link {hop.link!r} does not touch {hop.switch!r}"
            port = link.end(hop.switch).port
            if hop.out_port != port or hop.wavelength != link.wavelength:
                on = (f" on wavelength {link.wavelength}" if link.wavelength else "",
                      f" on {hop.wavelength}" if hop.wavelength else "")
                return (f"{what} {i}: link {hop.link!r} leaves {hop.switch!r} by port "
                        f"{port}{on[0]}, the record says port {hop.out_port}{on[1]}")
            at = self._far[(hop.switch, hop.link)]
        if at != dst:
            return f"the path{' of its standby' if 'standby' in what else ''} ends at " \
                   f"{at!r}, not at {dst!r}"
        return None

    def _meter_problem(self, res: Reservation, sharing: list[Reservation]) -> str | None:
        """An aggregate has one meter, and no other aggregate has it: a meter shared by two
        would police both pairs' traffic as one."""
        if res.meter_id < 1:
            return f"meter_id {res.meter_id}: meters are numbered from 1"
        if sharing:
            if sharing[0].meter_id != res.meter_id:
                return (f"meter_id {res.meter_id}, but its aggregate (reservation "
                        f"{sharing[0].reservation_id}) has meter {sharing[0].meter_id}")
            return None
        if res.meter_id in self._meter_users:
            other = next(r for r in self.reservations.values() if r.meter_id == res.meter_id)
            return (f"meter_id {res.meter_id} is already the meter of reservation "
                    f"{other.reservation_id} ({other.request.src_host} -> "
                    f"{other.request.dst_host})")
        return None

    @staticmethod
    def _protection_problem(res: Reservation, sharing: list[Reservation]) -> str | None:
        """An aggregate is PROTECTED as a whole (admission refuses to mix), and only a
        PROTECTED one has a standby. One without a standby may be: a failure left it none
        (`_relocate` with `fallback`)."""
        protected = res.request.protection == Protection.PROTECTED
        if sharing and (sharing[0].request.protection == Protection.PROTECTED) != protected:
            return (f"protection {res.request.protection.value}, but its aggregate "
                    f"(reservation {sharing[0].reservation_id}) is "
                    f"{sharing[0].request.protection.value}")
        if res.standby and not protected:
            return f"protection {res.request.protection.value} with a standby path"
        if sharing and sharing[0].standby != res.standby:
            return (f"its standby differs from its aggregate's (reservation "
                    f"{sharing[0].reservation_id})")
        return None

    def _check_selector(self, req: ReservationRequest) -> None:
        """A selector must not overlap another of the same pair, unless equal (then they
        are one aggregate): which reservation a packet belongs to must be unambiguous."""
        sel = req.selector
        if sel is None:
            return
        for (src, dst, other), ids in self._pairs.items():
            if (src, dst) == (req.src_host, req.dst_host) and other is not None \
                    and other != sel and sel.overlaps(other):
                raise AdmissionError(
                    AdmissionError.INVALID,
                    f"selector: {sel} overlaps {other} of reservation {ids[0]} between "
                    f"{src} and {dst}; use the same selector (one aggregate) or disjoint ones")

    def admit(self, req: ReservationRequest, reservation_id: str, now: float) -> Reservation:
        """Admit `req` or raise AdmissionError; the same request_id returns the same one."""
        return self.admit_moving(req, reservation_id, now)[0]

    def admit_moving(self, req: ReservationRequest, reservation_id: str,
                     now: float) -> tuple[Reservation, list[Move]]:
        """Admit `req`, and say which aggregates moved to make room (each a `Move`, in the
        order their rules must change): the request's own pair, when its path is full, and
        at most one other pair whose path it needed."""
        if req.request_id and req.request_id in self.by_request_id:
            first = self.reservations[self.by_request_id[req.request_id]]
            if not same_request(first.request, req):
                raise reused_request_id(req, first)
            return first, []
        self.validate(req)
        self.check_ever(req)
        bps = req.bandwidth_gbps * 1e9
        full = self._access_full(req.src_host, req.dst_host, bps)
        if full is not None:
            raise full
        pair = key_of(req)
        self._check_selector(req)
        members = self.pair_members(*pair)
        if members and members[0].state == State.DEGRADED:
            first = members[0]
            raise AdmissionError(
                AdmissionError.EXHAUSTED,
                f"{first.request.src_host} -> {first.request.dst_host} is DEGRADED "
                f"({first.reason}); a host pair's reservations share one path: ask again "
                f"once reservation {first.reservation_id} is restored")
        if members and ((members[0].request.protection == Protection.PROTECTED)
                        != (req.protection == Protection.PROTECTED)):
            raise AdmissionError(
                AdmissionError.INVALID,
                f"protection: the traffic of {req.src_host} -> {req.dst_host}"
                f"{f' ({req.selector})' if req.selector else ''} is already reserved "
                f"{members[0].request.protection.value} by {members[0].reservation_id}; its "
                f"reservations share one path, so give this one a selector of its own")
        if members and self._fits_on(members[0], req, bps):
            return self._add_on(members[0].hops, members[0].latency_ms, members[0].meter_id,
                                req, reservation_id, now, members[0].standby), []
        if members and not self.rearrange:
            tightest = min(self.held(members[0]), key=self.free_bps)
            raise AdmissionError(AdmissionError.EXHAUSTED, self._exhausted(tightest, bps).message
                                 + f" (the pair's reservations share the path of "
                                 f"{members[0].reservation_id})")
        self._refused_before(pair, req, bps)
        try:
            placed, moves = self._make_way(pair, req, bps)
        except AdmissionError as exc:
            if exc.code == AdmissionError.EXHAUSTED:
                if self._refused_in != self.layout():
                    self._refused = {}              # only refusals of this state are kept
                    self._refused_in = self.layout()
                self._refused[pair] = (bps, req.max_latency_ms or math.inf, req.protection, exc)
            raise
        latency, hops, moved, standby = placed
        if moved:
            moves.append(Move(members, moved))
        if moves:
            self._room_back += 1                   # aggregates moved: the layout changed
        meter = members[0].meter_id if members else self._meter_id()
        return self._add_on(hops, latency, meter, req, reservation_id, now, standby), moves

    def _make_way(self, pair: Key, req: ReservationRequest, bps: float):
        """A placement for the pair with `req`: moved as a whole, else after moving one
        other aggregate aside, else after a re-packing; (placement, other moves) or
        AdmissionError."""
        placed = self._relocate(pair, req)
        if placed is None and not self.rearrange:
            self._place(req.src_host, req.dst_host, bps, req.max_latency_ms,
                        req.protection == Protection.PROTECTED)    # raises: no path has room
        if placed is not None:
            return placed, []
        try:
            return self._make_room(pair, req)
        except AdmissionError:
            repacked = self._repack(pair, req) if self.repack_time_limit_s > 0 else None
            if repacked is None:
                raise
            return repacked

    def layout(self) -> tuple[int, int]:
        """Changes when room comes back or aggregates move (reservations ended, degraded,
        moved) or the links change: a search that found nothing may find something."""
        return self._room_back, self.engine.version

    def _refused_before(self, pair: Key, req: ReservationRequest, bps: float) -> None:
        """Refuse at once what was refused for this pair since room last came back: as
        much or more, within as tight a bound or tighter, the same protection. Searching
        again (moving aggregates, re-packing: up to 0.2 s) would find nothing new, and
        clients retrying a full fabric would hold up everyone else's calls."""
        refused = self._refused.get(pair)
        if refused is None or self._refused_in != self.layout():
            return
        refused_bps, refused_bound, protection, error = refused
        if (bps >= refused_bps and (req.max_latency_ms or math.inf) <= refused_bound
                and req.protection == protection):
            raise AdmissionError(error.code, (
                f"{bps / 1e9:g} Gb/s: {refused_bps / 1e9:g} Gb/s was refused for this pair "
                f"and nothing was released or moved since; then: {error.message}"))

    def _fits_on(self, first: Reservation, req: ReservationRequest, bps: float) -> bool:
        """Whether `req` fits on the path its pair holds (within its latency bound). Not
        on a path a failure broke before the next tick moved the pair, nor on a PROTECTED
        pair's that a failure left without a standby: the pair moves, or `req` is refused."""
        if req.max_latency_ms is not None and (
                first.latency_ms > req.max_latency_ms
                or self.standby_latency(req.src_host, first.standby) > req.max_latency_ms):
            return False          # a PROTECTED one's standby meets its bound too
        if lacks_standby(first) or self.crosses_down(first):
            return False
        return (all(self.free_bps(d) >= bps for d in self.held(first))
                and self._standby_fits(first, bps))

    def _add_on(self, hops, latency: float, meter_id: int, req: ReservationRequest,
                reservation_id: str, now: float, standby=()) -> Reservation:
        # Lists page by (created_at, id): a reservation made in the same clock tick as the
        # last, or after the wall clock stepped back, is still created after it, so a
        # client holding a page never skips it. Its expiry counts from the clock.
        created = max(now, math.nextafter(self._created_floor, math.inf))
        self._created_floor = created
        res = Reservation(reservation_id, req, State.PENDING, hops, latency, created,
                          now + req.duration_s if req.duration_s > 0 else None, meter_id,
                          standby=standby)
        self.add(res)
        return res

    def _relocate(self, pair: tuple[str, str], req: ReservationRequest | None = None,
                  taken: bool = False, fallback: bool = False):
        """The best path with room for the pair's sum (plus `req`), its own bandwidth
        counting as free; the pair is moved there (state kept) and (latency, hops, moved
        members, standby) returned; None, the book unchanged, if no path has room. `taken`: the
        pair's bandwidth is already taken off its links (and stays so on failure).
        A PROTECTED aggregate gets a standby too; with `fallback` (restoring after a
        failure) it takes a path without one when no standby has room."""
        members = self.pair_members(*pair)
        total = sum(r.bandwidth_bps for r in members)
        bounds = [r.request.max_latency_ms for r in members if r.request.max_latency_ms]
        if req is not None:
            total += req.bandwidth_gbps * 1e9
            if req.max_latency_ms:
                bounds.append(req.max_latency_ms)
        protect = any(r.protection == Protection.PROTECTED
                      for r in [m.request for m in members] + ([req] if req else []))
        if not taken:
            self._take(members)
        bound = min(bounds) if bounds else None
        try:
            latency, hops, standby = self._place(pair[0], pair[1], total, bound, protect)
        except AdmissionError:
            if not (protect and fallback):
                if not taken:
                    self._put(members)
                return None
            try:                      # restoring: a live path without a standby beats none
                latency, hops, standby = self._place(pair[0], pair[1], total, bound, False)
            except AdmissionError:
                if not taken:
                    self._put(members)
                return None
        moved = [replace(r, hops=hops, latency_ms=latency, standby=standby) for r in members]
        self._put(moved)
        return latency, hops, moved, standby

    def _place(self, src_host: str, dst_host: str, bps: float, bound: float | None,
               protect: bool):
        """(latency, hops, standby) of the best path with `bps` free, and with `protect` a
        standby with room sharing no line system or SRLG with it; AdmissionError if none.
        With `protect`, the first of `_primaries` that has such a standby."""
        full = self._access_full(src_host, dst_host, bps)
        if full is not None:
            raise full
        latency, hops = self._find(src_host, dst_host, bps, bound)
        if not protect:
            return latency, hops, ()
        for latency, candidate in self._primaries(src_host, dst_host, bps, bound,
                                                  (latency, hops)):
            standby = self._standby(dst_host, candidate, bps, bound)
            if standby is not None:
                return latency, candidate, standby
        raise self._no_standby(src_host, dst_host, hops, bps, bound)

    def _access_full(self, src_host: str, dst_host: str, bps: float) -> AdmissionError | None:
        """The refusal naming a host's link (either end) without `bps` free, or None. The
        path searches run leaf to leaf: a pair restored after others took its hosts' links
        while it was DEGRADED held 500 Gb/s on a 400G host link (a randomized test)."""
        src, dst = self.fabric.hosts[src_host], self.fabric.hosts[dst_host]
        for d in (Direction(src.name, src.name, src.leaf), Direction(dst.name, dst.leaf, dst.name)):
            if self.free_bps(d) < bps:
                return self._exhausted(d, bps)
        return None

    def _primaries(self, src_host: str, dst_host: str, bps: float, bound: float | None,
                   best: tuple[float, tuple[ReservedHop, ...]]):
        """Primaries for a PROTECTED pair: the best path, then the best avoiding each of
        its line systems in turn (with what shares a risk with it). The best path may
        cross the one line system every disjoint standby would need (on a ring whose
        chord shares a duct with a side, say), and another primary leaves it free."""
        yield best
        seen = {best[1]}
        for line_system in self._line_systems(best[1]):
            # Clear of its risks, then clear of it alone: a line system sharing a group
            # with it may be the primary whose standby exists (an outside tester's fabric:
            # ab1 in {bldg, d1}, ab2 in {d1}, ac in {bldg}; ab2 is the primary, ac+bc
            # its standby, and avoiding ab1's risks rules ab2 out).
            for avoid in (self._risk_links([line_system]),
                          frozenset(self._wavelengths.get(line_system, ()))):
                try:
                    found = self._find(src_host, dst_host, bps, bound, avoid)
                except AdmissionError:
                    continue
                if found[1] not in seen:
                    seen.add(found[1])
                    yield found

    def _protectable(self, src_host: str, dst_host: str, bound: float | None = None,
                     bps: float = 0.0) -> bool:
        """Whether the pair would get a primary and standby (both within `bound`, each with
        `bps` of room) with nothing reserved. The primaries a loaded fabric left may have
        none when others have one: that is a matter of room, not of the fabric."""
        with self._nothing_reserved():
            try:
                best = self._find(src_host, dst_host, bps, bound)
            except AdmissionError:
                return False
            return any(self._standby(dst_host, hops, bps, bound) is not None
                       for _, hops in self._primaries(src_host, dst_host, bps, bound, best))

    @contextlib.contextmanager
    def _nothing_reserved(self):
        """The book as if nothing were reserved, for the length of the block: what the
        fabric allows, whatever the load."""
        reserved, share = self.reserved, self.share_standby
        self.reserved, self.share_standby = {}, False
        try:
            yield
        finally:
            self.reserved, self.share_standby = reserved, share

    @contextlib.contextmanager
    def _whole_fabric(self):
        """The book on the fabric with every link up at its planned mode, for the length of
        the block: whether a repair could help at all."""
        if self._intact is None:
            self._intact = PathEngine(self.fabric)
        self._sync()
        saved = (self.engine, self._version, self._capacity, self._to_leaf)
        self.engine, self._version = self._intact, -1
        try:
            yield
        finally:
            self.engine, self._version, self._capacity, self._to_leaf = saved

    def _check_protectable(self, req: ReservationRequest, bps: float) -> None:
        """FAILED_PRECONDITION for a PROTECTED request no primary and standby could carry
        however empty the fabric (every link in service, at its planned mode): no retry
        gets it, whatever the load now (an outside tester's client retried such a
        refusal for good when it came as RESOURCE_EXHAUSTED, naming a busy wavelength)."""
        src, dst, bound = req.src_host, req.dst_host, req.max_latency_ms
        # What was found protectable stays so until a link or mode changes: most PROTECTED
        # requests join or repeat a pair already checked, and the check is several searches.
        key = (src, dst, bound)
        known = self._protectable_bps.get(key)
        if known is not None and known[0] == self.engine.version and bps <= known[1]:
            return
        if self._protectable(src, dst, bound, bps):
            if len(self._protectable_bps) >= PROTECTABLE_KEPT:
                # keyed by each bound asked: a client asking random ones grew it for good
                self._protectable_bps.clear()
            self._protectable_bps[key] = (self.engine.version, bps)
            return
        if not self._protectable(src, dst, bound):          # no standby of any width
            with self._nothing_reserved():
                try:
                    _, hops = self._find(src, dst, 0.0, bound)
                except AdmissionError:
                    return                                  # no path at all: said below
            raise self._no_standby(src, dst, hops, bps, bound)
        within = f" within max_latency_ms {bound:.12g}" if bound is not None else ""
        most = next((c for c in sorted(self._capacities(), reverse=True)
                     if c < bps and self._protectable(src, dst, bound, c)), 0.0)
        why = (f"no primary and standby sharing no line system or SRLG{within} can each "
               f"reserve {bps / 1e9:g} Gb/s (at most {most / 1e9:g} Gb/s)")
        out = self.engine.out_of_service() + [
            f"{l.wavelength} (a slower mode)" for l in self.fabric.wavelengths()
            if self.engine.rate_gbps(l) < l.rate_gbps]
        if out:
            with self._whole_fabric():      # no retry helps where the whole fabric has none
                out = out if self._protectable(src, dst, bound, bps) else []
        if out:             # with every link back at its mode the fabric may well have one
            raise AdmissionError(
                AdmissionError.EXHAUSTED,
                f"PROTECTED {src} -> {dst}: {why} while {', '.join(out[:4])}"
                f"{f' and {len(out) - 4} more' if len(out) > 4 else ''}"
                f" {'is' if len(out) == 1 else 'are'} out of service or slower; ask again "
                f"once they are back")
        raise AdmissionError(AdmissionError.PRECONDITION,
                             f"PROTECTED {src} -> {dst}: {why}, even with nothing reserved; "
                             f"reserve less, as several reservations with selectors of their "
                             f"own, or ask for RESTORABLE")

    def _capacities(self) -> set[float]:
        """The links' reservable capacities now: where a PROTECTED pair's most lies."""
        self._sync()
        return set(self._capacity.values())

    def _no_standby(self, src_host: str, dst_host: str, hops, bps: float,
                    bound: float | None) -> AdmissionError:
        """Why a PROTECTED request has no standby: none exists in this fabric, none within
        its latency bound has room, or none has room."""
        primary = ", ".join(self._line_systems(hops)) or "no line system"
        disjoint = (f"that shares no line system or SRLG with its primary (over {primary})")
        unbounded = self._protectable(src_host, dst_host)
        if not unbounded or (bound is not None
                             and not self._protectable(src_host, dst_host, bound)):
            out = self.engine.out_of_service()
            if out:
                with self._whole_fabric():  # a repair that could not help is no reason
                    if not self._protectable(src_host, dst_host, bound):
                        out, unbounded = [], self._protectable(src_host, dst_host)
            within = "" if not unbounded else f" within max_latency_ms {bound:.12g}"
            if out:         # with every link back the fabric may well have one: not final
                return AdmissionError(
                    AdmissionError.EXHAUSTED,
                    f"PROTECTED {src_host} -> {dst_host}: no standby path {disjoint}{within} "
                    f"while {', '.join(out[:4])}"
                    f"{f' and {len(out) - 4} more' if len(out) > 4 else ''}"
                    f" {'is' if len(out) == 1 else 'are'} out of service (down, drained or "
                    f"held down after a failure); ask again once they are back")
            if within:
                return AdmissionError(
                    AdmissionError.PRECONDITION,
                    f"PROTECTED {src_host} -> {dst_host}: the fabric has no standby path "
                    f"{disjoint}{within} (the standby must meet the bound too), even with "
                    f"nothing reserved; ask for a larger bound, or for RESTORABLE")
            return AdmissionError(
                AdmissionError.PRECONDITION,
                f"PROTECTED {src_host} -> {dst_host}: the fabric has no standby path {disjoint}, "
                f"even with nothing reserved; ask for RESTORABLE, or add a line system that "
                f"shares no risk with it")
        if bound is not None and self._standby(dst_host, hops, bps, None) is not None:
            return AdmissionError(
                AdmissionError.EXHAUSTED,
                f"no standby path for {src_host} -> {dst_host} {disjoint} and within "
                f"max_latency_ms {bound:.12g} has {bps / 1e9:.3f} Gb/s free; a longer one has "
                "(PROTECTED: the standby must meet the bound too)")
        return AdmissionError(
            AdmissionError.EXHAUSTED,
            f"no standby path for {src_host} -> {dst_host} {disjoint} has {bps / 1e9:.3f} Gb/s "
            f"free{self._standby_bottleneck(dst_host, hops, bps)} (PROTECTED; standby room is "
            "shared only by reservations whose primaries cannot fail together)")

    def _standby_bottleneck(self, dst_host: str, hops, bps: float) -> str:
        """'; on the shortest one, <the link with least room>': what a refusal for want of
        standby room names, as every refusal names its bottleneck ('' if none is found)."""
        first = next((i for i, h in enumerate(hops) if self._link(h.link).wavelength), None)
        if first is None:
            return ""
        found = self._search(hops[first].switch, self.fabric.hosts[dst_host].leaf, 0.0,
                             self._risk_links(self._line_systems(hops)))
        if found is None:
            return ""
        return f"; on the shortest one, {self._exhausted(self._bottleneck(found[1]), bps).message}"

    def _line_systems(self, hops) -> list[str]:
        out = []
        for h in hops:
            ls = self._link(h.link).line_system
            if ls and ls not in out:
                out.append(ls)
        return out

    def _risk_links(self, line_systems) -> RiskAvoid:
        """The wavelengths of these line systems and of every one sharing an SRLG."""
        return self._risk.avoiding(line_systems)

    def _standby(self, dst_host: str, hops, bps: float,
                 bound: float | None) -> tuple[ReservedHop, ...] | None:
        """The standby of a primary: its hops up to its first gateway (the repair point,
        where the ingress fast-failover group sits), then the widest-shortest path with
        `bps` free to the destination that uses no wavelength of the primary's line
        systems or of any sharing an SRLG with them; back through the spine the primary
        came by where that is as short. () when the primary crosses no line system; None
        when there is no such path (within `bound`)."""
        first = next((i for i, h in enumerate(hops) if self._link(h.link).wavelength), None)
        if first is None:
            return ()
        dst, gateway = self.fabric.hosts[dst_host], hops[first].switch
        avoid = self._risk_links(self._line_systems(hops))
        slack = self.standby_slack(self.risk_events(hops))
        found = self._search(gateway, dst.leaf, bps, avoid, slack)
        if found is None:
            return None
        came = hops[first - 1].switch          # the spine the primary came by
        if found[1] and not self._link(found[1][0].link).wavelength and found[1][0].dst != came:
            # By another spine, a standby carried as the path (`take_standby`) kept its
            # hairpin through the dead gateway, booked (an outside tester's): back the way
            # it came, that spine's one rule for the pair takes it straight on.
            others = [link.name for link in self.fabric.ports(gateway).values()
                      if not link.wavelength and link.other(gateway).node != came]
            back = self._search(gateway, dst.leaf, bps, avoid.also(others), slack)
            if back is not None and back[0] <= found[0]:
                found = back
        standby = hops[:first] + tuple(
            ReservedHop(d.src, self._out_port(d), d.link, self._link(d.link).wavelength)
            for d in found[1]) + (ReservedHop(dst.leaf, dst.port, dst.name, None),)
        # The bound holds for the path it becomes (`take_standby`), the short way: the
        # hairpin through the gateway lasts only until the controller hears of the failure.
        latency = self._far_host_link(hops[0].switch) + sum(
            self._link(h.link).latency_ms for h in without_loops(standby))
        if bound is not None and latency > bound:
            return None
        return standby

    def _far_host_link(self, leaf: str) -> float:
        # Host links of one leaf have one latency (intra-site); take any.
        return next(l.latency_ms for l in self.fabric.ports(leaf).values()
                    if l.kind == HOST)

    def _make_room(self, pair: tuple[str, str], req: ReservationRequest):
        """No path has room for the pair with `req`: move one other aggregate that holds
        bandwidth on the pair's shortest path to a path of its own with room, if the pair
        then fits (the rearrangement that beats packing fragmentation); aggregates on the
        pair's shortest path are tried first, smallest first. Returns the
        placement and the moves (the other's, and the pair's own) in the order their rules
        must change; AdmissionError naming the bottleneck if
        no single move makes room, the book then unchanged."""
        src, dst = self.fabric.hosts[pair[0]], self.fabric.hosts[pair[1]]
        bps = req.bandwidth_gbps * 1e9
        members = self.pair_members(*pair)
        total = sum(r.bandwidth_bps for r in members) + bps
        unloaded = self._search(src.leaf, dst.leaf, 0.0)
        if unloaded is None:
            raise AdmissionError(AdmissionError.EXHAUSTED,
                                 f"no path from {src.name} to {dst.name} is up")
        corridor = set(unloaded[1])
        candidates = []
        for other, ids in self._pairs.items():
            if other == pair:
                continue
            rs = [self.reservations[r] for r in ids]
            if not all(r.holds_bandwidth for r in rs):
                continue
            held = set(self.held(rs[0])[1:-1])
            aside = not any(self._parallel(d) & held for d in corridor)
            candidates.append((aside, sum(r.bandwidth_bps for r in rs), other))
        reserved_before = dict(self.reserved)
        for *_, other in sorted(candidates, key=lambda c: c[:2])[:MAKE_ROOM_TRIES]:
            before = self.pair_members(*other)
            self._take(before)
            placed = self._relocate(pair, req)
            if placed is not None:
                probe = Reservation("", req, State.PENDING, placed[1], placed[0], 0.0, None, 0,
                                    standby=placed[3])
                self._hold(probe, +1)              # the request's own share, while we look
                again = self._relocate(other, taken=True)
                self._hold(probe, -1)
                if again is not None:
                    # Each computed as if the other had moved: if both want where the other
                    # is, one of them goes first within the line rate, or neither goes.
                    moves = [Move(before, again[2])] + (
                        [Move(members, placed[2])] if placed[2] else [])
                    for order in (moves, moves[::-1]):
                        if self._in_order(reserved_before, order):
                            return (placed[0], placed[1], [], placed[3]), order
                    self._take(again[2])
                self._take(placed[2])
                self._put(members)
            self._put(before)
        raise self._refusal(pair, req, members, total, unloaded[1])

    def _refusal(self, pair: Key, req: ReservationRequest, members: list[Reservation],
                 total: float, shortest: list[Direction]) -> AdmissionError:
        """Why the pair with `req` (`total` in all) fits nowhere: the bottleneck of the
        path it would take, or the latency bound that rules out the paths with room."""
        bounded = [(r.request.max_latency_ms, r.reservation_id) for r in members
                   if r.request.max_latency_ms]
        bounded += [(req.max_latency_ms, "this request")] if req.max_latency_ms else []
        bound, whose = min(bounded) if bounded else (None, "")
        protect = req.protection == Protection.PROTECTED
        self._take(members)
        try:
            try:
                self._place(pair[0], pair[1], total, bound, protect)
                error = self._exhausted(self._bottleneck(shortest), total)
            except AdmissionError as exc:
                error = exc                        # what refused it: room, or a bound
            beyond = None
            if bound is not None and error.code == AdmissionError.EXHAUSTED:
                beyond = self._only_beyond(pair, total, bound, protect)
        finally:
            self._put(members)
        why = error.message
        if beyond is not None:
            why = (f"no path for {pair[0]} -> {pair[1]} within max_latency_ms {bound:.12g} "
                   f"({whose}'s bound) has {total / 1e9:.3f} Gb/s free, a path of "
                   f"{beyond:.3f} ms has room ({why})")
        if members and error.code == AdmissionError.EXHAUSTED:
            own = sum(r.bandwidth_bps for r in members)
            why += (f" (free counts, where they are, the {own / 1e9:.3f} Gb/s the pair's "
                    f"{len(members)} reservation(s) hold: with this one, {total / 1e9:.3f} "
                    f"Gb/s, they travel as one aggregate, one path and one meter"
                    + (", within the tightest bound of them" if beyond is not None
                       else ", and no path has room for them")
                    + "; a reservation with a traffic selector of its own (an IP protocol "
                      "and destination ports, or a DSCP value) is metered apart and may "
                      "take another path)")
        return AdmissionError(error.code, why)

    def _only_beyond(self, pair: Key, bps: float, bound: float,
                     protect: bool) -> float | None:
        """The latency of a path with room beyond `bound` when no primary within it has
        room (the bound, not the load, refuses the request); else None."""
        try:
            self._place(pair[0], pair[1], bps, bound, False)
            return None                            # a primary fits: the standby refused
        except AdmissionError:
            pass
        try:
            return self._place(pair[0], pair[1], bps, None, protect)[0]
        except AdmissionError:
            return None

    def _repack(self, pair: Key, req: ReservationRequest):
        """Neither the pair's own move nor one other's makes room: look for a re-packing
        of every movable aggregate (not PROTECTED, not DEGRADED, between two sites, on
        a route the candidates know) that fits the pair with `req` too, the fewest moved
        (te.repack); realize it on switch-level paths through the wavelengths chosen, and
        order the moves so that every one fits where it lands while the others not yet
        moved still hold their old paths (make before break, one aggregate at a time).
        Returns (placement, moves) as `_make_room`, or None, the book unchanged."""
        if req.protection == Protection.PROTECTED:
            return None
        if self._candidates is None:
            self._candidates = Candidates(self.fabric, max_stretch=REPACK_MAX_STRETCH,
                                          max_routes=REPACK_MAX_ROUTES, engine=self.engine)
        members = self.pair_members(*pair)
        bps = req.bandwidth_gbps * 1e9
        keys, units = [], []
        movable_on: dict[Direction, float] = {}
        own = self._unit(pair, members, bps, req.max_latency_ms)
        if own is None:
            return None
        # Only aggregates that may cross a line system the request may take can make room.
        wanted = {hop.line_system for route in own.routes for hop in route.hops}
        for key, ids in [(pair, members)] + [(k, v) for k, v in self._pairs.items() if k != pair]:
            rs = [self.reservations[r] for r in ids] if key != pair else members
            unit = own if key == pair else self._unit(key, rs, 0.0, None)
            if unit is None or not any(hop.line_system in wanted for route in unit.routes
                                       for hop in route.hops):
                continue
            keys.append(key)
            units.append(unit)
            for r in rs:
                for d in self.held(r):
                    if d.link != d.src and self._link(d.link).wavelength:
                        movable_on[d] = movable_on.get(d, 0.0) + r.bandwidth_bps
        residual = {(d.link, d.src): self._capacity[d] - self.reserved.get(d, 0.0)
                    + movable_on.get(d, 0.0)
                    for d in self._capacity if self._link(d.link).wavelength}
        chosen = repack(units, residual, self.repack_time_limit_s)
        if chosen is None:
            return None
        reserved_before = dict(self.reserved)
        originals = {key: self.pair_members(*key) for key in keys}
        # The pair itself is placed again even where it stays on its wavelengths: inside
        # the sites its path may have no room for the request (it then moves there).
        moving = [(k, u, p) for k, u, p in zip(keys, units, chosen) if p != u.current or k == pair]
        dci = {name for names in self._wavelengths.values() for name in names}

        def undo() -> None:
            self.reserved = dict(reserved_before)
            for rs in originals.values():
                for r in rs:
                    self._note(r.reservation_id)
                    self.reservations[r.reservation_id] = r

        def realize(order, keep: Container[Key] = ()) -> dict[Key, tuple[float, tuple[
                ReservedHop, ...]]] | None:
            """Each aggregate of `order` on a switch-level path through its wavelengths
            (those in `keep` on the path they have, if it still has room)."""
            for key, _, _ in order:
                self._take(originals[key])
            after = {}
            for key, unit, path in order:
                first = originals[key][0] if originals[key] else None
                if key in keep and first is not None and all(
                        self.free_bps(d) + SLACK_BPS >= unit.demand for d in self.held(first)):
                    after[key] = first.latency_ms, first.hops
                    self._put(originals[key])
                    continue
                bounds = [r.request.max_latency_ms for r in originals[key]
                          if r.request.max_latency_ms]
                if key == pair and req.max_latency_ms:
                    bounds.append(req.max_latency_ms)
                try:
                    latency, hops = self._find(key[0], key[1], unit.demand,
                                               min(bounds) if bounds else None,
                                               frozenset(dci - {w for w, _ in path}))
                except AdmissionError:
                    return None                    # no room inside a site
                after[key] = latency, hops
                self._put([replace(r, hops=hops, latency_ms=latency) for r in originals[key]])
                if key == pair:                    # the request's own share, while we look
                    self._hold(Reservation("", req, State.PENDING, hops, latency, 0.0, None,
                                           0), +1)
            return after

        # The largest first (what is left inside the sites fits the small ones best),
        # else the smallest first. The packing chose wavelengths only: where the links
        # inside the sites (a gateway's spine links, say) are left too fragmented for an
        # aggregate, those that stay on their wavelengths may give way inside the sites:
        # first each keeps its path if it still has room once the moving ones are placed,
        # then all are placed again, the largest first.
        def largest_first(ms):
            return sorted(ms, key=lambda m: -m[1].demand)

        moved = {k for k, _, _ in moving}
        staying = [(k, u, p) for k, u, p in zip(keys, units, chosen) if k not in moved]
        attempts = [(largest_first(moving), ()),
                    (sorted(moving, key=lambda m: m[1].demand), ())]
        if staying:
            attempts += [(largest_first(moving) + largest_first(staying),
                          {k for k, _, _ in staying}),
                         (largest_first(moving + staying), ())]
        for order, keep in attempts:
            after = realize(order, keep)
            if after is not None:
                break
            undo()
        else:
            return None
        moves = self._order_moves(reserved_before, originals,
                                  [key for key, _, _ in order if originals[key]
                                   and originals[key][0].hops != after[key][1]], after)
        if moves is None:
            undo()
            return None
        latency, hops = after[pair]
        self._hold(Reservation("", req, State.PENDING, hops, latency, 0.0, None, 0), -1)
        return (latency, hops, [], ()), moves

    def _in_order(self, load: dict[Direction, float], moves: list[Move]) -> bool:
        """Whether `moves`, one after the other from `load`, keep every link they land
        on within its line rate (see `_order_moves`)."""
        load = dict(load)
        for move in moves:
            total = sum(r.bandwidth_bps for r in move.before)
            old = self.held(move.before[0])
            for d in old:
                load[d] = load.get(d, 0.0) - total
            for d in self.held(move.after[0]):
                load[d] = load.get(d, 0.0) + total
                if d not in old and load[d] > self._line_rate(d):
                    return False
        return True

    def _line_rate(self, d: Direction) -> float:
        """What a move may put on `d` while it is under way (see `_order_moves`)."""
        return self._capacity[d] / self.fraction + SLACK_BPS

    def _order_moves(self, reserved_before: dict[Direction, float],
                     originals: dict[Key, list[Reservation]], pending: list[Key],
                     after: dict[Key, tuple[float, tuple[ReservedHop, ...]]]) -> list[Move] | None:
        """An order for the moves from `originals` to `after` such that each one fits
        where it lands beside where the others are then (one aggregate at a time, make
        before break). While moves are under way a link may carry more than its
        reservable share, never more than its line rate: the share left unreserved is
        the scratch capacity that lets two aggregates swap wavelengths without a
        packet lost (SWAN's congestion-free updates); the end state is within the
        reservable capacity, as the packing found it. Where every remaining move waits
        for another even so, one of them is first parked on any path with room now,
        and moves on from there later. None if that does not untie it. `self.reserved`
        is borrowed for the parking searches."""
        load = dict(reserved_before)
        at = {key: originals[key] for key in pending}
        parked: set[Key] = set()
        moves: list[Move] = []

        def shift(key: Key, latency: float, hops) -> None:
            before = at[key]
            moved = [replace(r, hops=hops, latency_ms=latency) for r in before]
            total = sum(r.bandwidth_bps for r in before)
            for d in self.held(before[0]):
                load[d] = load.get(d, 0.0) - total
            for d in self.held(moved[0]):
                load[d] = load.get(d, 0.0) + total
            moves.append(Move(before, moved))
            at[key] = moved

        def fits(key: Key, hops) -> bool:
            first = at[key][0]
            total = sum(r.bandwidth_bps for r in at[key])
            old = set(self.held(first))
            new = set(self.held(replace(first, hops=hops)))
            return all(load.get(d, 0.0) + total <= self._line_rate(d) for d in new - old)

        while pending:
            key = next((k for k in pending if fits(k, after[k][1])), None)
            if key is not None:
                shift(key, *after[key])
                pending.remove(key)
                continue
            final = self.reserved
            try:
                for key in sorted((k for k in pending if k not in parked),
                                  key=lambda k: sum(r.bandwidth_bps for r in at[k])):
                    rs = at[key]
                    self.reserved = dict(load)
                    self._take(rs)                 # its own share counts as free
                    bounds = [r.request.max_latency_ms for r in rs if r.request.max_latency_ms]
                    try:
                        latency, hops = self._find(key[0], key[1],
                                                   sum(r.bandwidth_bps for r in rs),
                                                   min(bounds) if bounds else None)
                    except AdmissionError:
                        continue
                    if hops != rs[0].hops and fits(key, hops):
                        parked.add(key)
                        shift(key, latency, hops)
                        break
                else:
                    return None
            finally:
                self.reserved = final
        return moves

    def _unit(self, key: Key, members: list[Reservation], extra_bps: float,
              extra_bound: float | None) -> Unit | None:
        """The aggregate `key` as a re-packing unit (None: it stays where it is)."""
        src, dst = self.fabric.hosts[key[0]], self.fabric.hosts[key[1]]
        if src.site == dst.site or any(
                not r.holds_bandwidth or r.request.protection == Protection.PROTECTED
                for r in members):
            return None
        bounds = [r.request.max_latency_ms for r in members if r.request.max_latency_ms]
        bounds += [extra_bound] if extra_bound else []
        edge_ms = self._link(src.name).latency_ms + self._link(dst.name).latency_ms
        routes = tuple(r for r in self._candidates.routes(src.site, dst.site)
                       if not bounds or r.latency_ns / 1e6 + edge_ms <= min(bounds) + 1e-9)
        current = None
        if members:
            current = tuple((h.link, h.switch) for h in members[0].hops if h.wavelength)
            here = [r for r in routes if len(r.hops) == len(current) and all(
                w in hop.wavelengths for w, hop in zip(current, r.hops))]
            if not here:
                return None                        # a route the candidates do not know
            if not extra_bps:      # another aggregate: its route and the few shortest
                routes = tuple(dict.fromkeys(routes[:REPACK_OTHER_ROUTES] + tuple(here)))
        if not routes:
            return None
        return Unit(sum(r.bandwidth_bps for r in members) + extra_bps, routes, current)

    def _parallel(self, d: Direction) -> set[Direction]:
        """`d` and the other live links between the same two switches, same direction."""
        return {p for v, _, links in self.engine.directed()[d.src] if v == d.dst
                for _, p in links}

    def _find(self, src_host: str, dst_host: str, bps: float, max_latency_ms: float | None,
              avoid: Container[str] = frozenset()) -> tuple[float, tuple[ReservedHop, ...]]:
        """The widest-shortest live path with `bps` free from host to host, using no link
        in `avoid`, as (latency ms, hops); AdmissionError naming the bottleneck if none."""
        self._sync()
        src, dst = self.fabric.hosts[src_host], self.fabric.hosts[dst_host]
        edge_ms = self._link(src.name).latency_ms + self._link(dst.name).latency_ms
        to_dst = self._latency_to(dst.leaf)
        if src.leaf not in to_dst:
            raise AdmissionError(AdmissionError.EXHAUSTED,
                                 f"no path from {src.name} to {dst.name} is up")
        shortest_ms = to_dst[src.leaf] + edge_ms
        if max_latency_ms is not None and shortest_ms > max_latency_ms:
            raise AdmissionError(
                AdmissionError.EXHAUSTED,
                f"no path from {src.name} to {dst.name} within max_latency_ms "
                f"{max_latency_ms:g}: the shortest takes {shortest_ms:.3f} ms")
        found = self._search(src.leaf, dst.leaf, bps, avoid)
        if found is None or (max_latency_ms is not None and found[0] + edge_ms > max_latency_ms):
            unloaded = self._search(src.leaf, dst.leaf, 0.0)
            if unloaded is None:           # only links held down after a failure lead there
                raise AdmissionError(AdmissionError.EXHAUSTED,
                                     f"no path from {src.name} to {dst.name} is in service")
            raise self._exhausted(self._bottleneck(unloaded[1]), bps)
        latency, chosen = found[0] + edge_ms, found[1]
        hops = tuple(ReservedHop(d.src, self._out_port(d), d.link, self._link(d.link).wavelength)
                     for d in chosen) + (ReservedHop(dst.leaf, dst.port, dst.name, None),)
        return latency, hops

    def pair_members(self, src_host: str, dst_host: str,
                     selector: Selector | None = None) -> list[Reservation]:
        """The live reservations of a host pair's aggregate (or of its reservations with
        `selector`), oldest first."""
        return [self.reservations[r] for r in self._pairs.get((src_host, dst_host, selector),
                                                               [])]

    def members_of(self, res: Reservation) -> list[Reservation]:
        """The live reservations sharing `res`'s path, rules and meter, oldest first."""
        return self.pair_members(*key_of(res.request))

    def pair_bps(self, res: Reservation) -> float:
        """What the pair of `res` has reserved in all: the rate its meter enforces."""
        return sum(r.bandwidth_bps for r in self.pair_members(*key_of(res.request)))

    @contextlib.contextmanager
    def recording(self):
        """Record, for the length of the block, each reservation before its first change
        (yields the record: id -> the reservation before, None if it was not booked)."""
        self.journal = {}
        try:
            yield self.journal
        finally:
            self.journal = None

    def _note(self, reservation_id: str) -> None:
        if self.journal is not None and reservation_id not in self.journal:
            self.journal[reservation_id] = self.reservations.get(reservation_id)

    def put_back(self, res: Reservation) -> None:
        """`res` as it was (a live record: its path, standby and state), in place of what
        the book holds for its id now: a change that could not be saved, taken back."""
        if res.reservation_id in self.reservations:
            self.end(res.reservation_id, State.RELEASED)
        self.add(res)

    def created_after(self, created_at: float) -> None:
        """Create every new reservation after `created_at` (the latest on record when the
        store was opened): a clock stepped back across a restart then makes no reservation
        that sorts before those a paging client has already seen."""
        self._created_floor = max(self._created_floor, created_at)

    def add(self, res: Reservation) -> None:
        """Book `res` (a new one, or one restored from the store); an ended one books
        nothing."""
        if not res.state.live:
            return
        self._meter_users[res.meter_id] = self._meter_users.get(res.meter_id, 0) + 1
        self._next_meter = max(self._next_meter, res.meter_id + 1)
        self._note(res.reservation_id)
        self.reservations[res.reservation_id] = res
        if res.request.request_id:
            self.by_request_id[res.request.request_id] = res.reservation_id
        self._pairs.setdefault(key_of(res.request), []).append(res.reservation_id)
        self._hold(res, +1)
        if res.expires_at:
            heapq.heappush(self._expiry, (res.expires_at, res.reservation_id))

    def held(self, res: Reservation) -> list[Direction]:
        """The directed links `res` holds bandwidth on (none while DEGRADED)."""
        if not res.holds_bandwidth:
            return []
        src = res.request.src_host
        held = [Direction(src, src, res.hops[0].switch)] + [
            Direction(h.link, h.switch, self._far[(h.switch, h.link)]) for h in res.hops]
        if res.standby and not self.share_standby:
            # where it shares the primary's links, it counts once there
            held = list(dict.fromkeys(held + self.standby_held(res)))
        return held

    def standby_held(self, res: Reservation) -> list[Direction]:
        """The directed links only the standby of `res` crosses (not its primary)."""
        if not res.standby or not res.holds_bandwidth:
            return []
        primary = {Direction(h.link, h.switch, self._far[(h.switch, h.link)]) for h in res.hops}
        return [d for d in (Direction(h.link, h.switch, self._far[(h.switch, h.link)])
                            for h in res.standby) if d not in primary]

    def risk_events(self, hops, standby: tuple[ReservedHop, ...] | None = None
                    ) -> frozenset[str]:
        """The single risk events that fail a path: each of its line systems and SRLGs,
        and each gateway its wavelengths join past the first (the repair point, which
        its standby shares). A gateway's loss darkens the ports at both ends, as a cut
        does: two primaries on two line systems into one gateway fail together. Given
        its `standby`, a gateway the standby crosses too is left out: its loss fails both,
        and standby room held for it would never carry anything."""
        events = {e for ls in self._line_systems(hops) for e in self._events[ls]}
        crossed = {h.switch for h in standby or ()}
        for i, h in enumerate(h for h in hops if self._link(h.link).wavelength):
            for gateway in ((h.switch,) if i else ()) + (self._far[(h.switch, h.link)],):
                if gateway not in crossed:
                    events.add(f"switch {gateway}")
        return frozenset(events)

    def failing_events(self) -> frozenset[str]:
        """The risk events that may be under way: a line system with a wavelength down
        (`settling`: down a moment ago), a gateway with one (the rest of its port statuses
        may come a moment later). Standbys of primaries they may fail are not shed
        meanwhile; standby room may read over for that moment (no traffic does: the
        primaries fit)."""
        out: set[str] = set()
        for ls, names in self._wavelengths.items():
            down = [self._link(n) for n in names if not self.engine.usable(self._link(n))
                    and (self.settling is None or n in self.settling)]
            if down:
                out |= self._events[ls]
                out |= {f"switch {end.node}" for link in down for end in (link.a, link.b)}
        return frozenset(out)

    def standby_slack(self, events: frozenset[str]) -> dict[Direction, float]:
        """Per directed link, how much standby for a primary failing with `events` fits
        in the standby already held there (for primaries that cannot fail with it)."""
        if not self.share_standby:
            return {}
        return {d: self._standby_max[d] - max((need.get(e, 0.0) for e in events), default=0.0)
                for d, need in self._standby_need.items()}

    def _standby_fits(self, res: Reservation, bps: float) -> bool:
        """Whether `bps` more fits on the standby of `res` (shared where it may be)."""
        slack = self.standby_slack(self.risk_events(res.hops, res.standby))
        return all(self.free_bps(d) + slack.get(d, 0.0) >= bps for d in self.standby_held(res))

    def end(self, reservation_id: str, state: State) -> Reservation:
        """Release or expire a live reservation: it leaves the book, and is returned in
        its final state."""
        res = self.get(reservation_id)
        self._hold(res, -1)
        pair = key_of(res.request)
        self._pairs[pair].remove(reservation_id)
        if not self._pairs[pair]:
            del self._pairs[pair]
        self._note(reservation_id)
        del self.reservations[reservation_id]
        if res.request.request_id:
            self.by_request_id.pop(res.request.request_id, None)
        self._room_back += 1
        if res.expires_at:
            self._expiry_stale += 1
            if self._expiry_stale > max(64, len(self._expiry) // 2):
                self._expiry = [(r.expires_at, rid) for rid, r in self.reservations.items()
                                if r.expires_at]
                heapq.heapify(self._expiry)
                self._expiry_stale = 0
        self._meter_users[res.meter_id] -= 1
        if not self._meter_users[res.meter_id]:
            del self._meter_users[res.meter_id]
            self._free_meters.append(res.meter_id)
        return res.with_state(state)

    def set_state(self, reservation_id: str, state: State) -> Reservation:
        res = self.get(reservation_id).with_state(state)
        self._note(reservation_id)
        self.reservations[reservation_id] = res
        return res

    def get(self, reservation_id: str) -> Reservation:
        """A live reservation; NOT_FOUND for any other id."""
        try:
            return self.reservations[reservation_id]
        except KeyError:
            raise not_found(reservation_id) from None

    def due(self, now: float) -> list[str]:
        """Ids of live reservations whose time is up, soonest first. They stay queued
        until they end: one whose expiry cannot be saved is due again at the next tick."""
        due: dict[str, float] = {}
        while self._expiry and self._expiry[0][0] <= now:
            at, rid = heapq.heappop(self._expiry)
            res = self.reservations.get(rid)
            if res is not None and res.expires_at == at:
                due[rid] = at
            else:
                self._expiry_stale = max(0, self._expiry_stale - 1)
        for rid, at in due.items():
            heapq.heappush(self._expiry, (at, rid))
        return list(due)

    # -- failures ----------------------------------------------------------------------

    def crosses_down(self, res: Reservation) -> str | None:
        """What of its path (or its standby) is down now (a switch or a link), or None."""
        return self._down_on(res.hops + res.standby)

    def _down_on(self, hops: tuple[ReservedHop, ...]) -> str | None:
        for hop in hops:
            link = self._link(hop.link)
            for end in (hop.switch, link.a.node, link.b.node):
                if end in self.fabric.switches and not self.engine.switch_up(end):
                    return f"switch {end}"
            if not self.engine.usable(link):
                return link.wavelength or link.name
        return None

    def crosses_full(self, res: Reservation) -> str | None:
        """A link of its path whose primaries hold more than it can carry now (a wavelength
        whose mode stepped down under it), or None. Shared standby room over a link's
        capacity is not its primaries' to give way for: shedding takes it (a re-tester saw
        pairs carried by their standby DEGRADED when a cut's port statuses were all in)."""
        self._sync()
        for d in self.held(res):
            if (self.reserved.get(d, 0.0) - self._standby_max.get(d, 0.0)
                    > self._capacity[d] + SLACK_BPS):
                return self._link(d.link).wavelength or d.link
        return None

    def path_gone(self, res: Reservation) -> bool:
        """Whether this fabric no longer has the path (or standby) `res` was saved with: a
        link removed, a port renumbered (a site grown), a host moved."""
        hosts = self.fabric.hosts
        if res.request.src_host not in hosts or res.request.dst_host not in hosts:
            return False                           # not a path's problem: the request's
        return (not res.hops or bool(self._path_problem(res, res.hops, "hop"))
                or bool(res.standby and self._path_problem(res, res.standby, "standby hop")))

    def readmit(self, res: Reservation) -> tuple[Reservation, list[Reservation]] | str:
        """A live reservation read back whose path this fabric no longer has, placed again
        as admission places its request: on its aggregate's path if that has room, else
        with its aggregate moved, else with another aggregate moved aside or a re-packing
        (`_make_way`). It keeps its id, times, priority and (if free) meter, and is PENDING
        on its new path (DEGRADED beside an aggregate that is). Returns it and every other
        reservation moved; or why it has no place, the book unchanged. Not booked: the
        caller restores it (`FabricController.restore`)."""
        req = res.request
        try:
            self.validate(req, new=False)
        except AdmissionError as exc:
            return exc.message
        self._sync()
        key, bps = key_of(req), res.bandwidth_bps
        members = self.pair_members(*key)
        if members and ((members[0].request.protection == Protection.PROTECTED)
                        != (req.protection == Protection.PROTECTED)):
            return f"its aggregate (reservation {members[0].reservation_id}) is not as protected"
        moved: list[Reservation] = []
        if members and members[0].state == State.DEGRADED:
            first = members[0]
            return replace(res, hops=first.hops, latency_ms=first.latency_ms, standby=(),
                           meter_id=first.meter_id, state=State.DEGRADED,
                           reason=first.reason), []
        if members and self._fits_on(members[0], req, bps):
            latency, hops, standby = members[0].latency_ms, members[0].hops, members[0].standby
        else:
            full = self._access_full(req.src_host, req.dst_host, bps)
            if full is not None:
                return full.message
            if req.protection == Protection.PROTECTED:
                try:
                    self._check_protectable(req, bps)
                except AdmissionError as exc:
                    return exc.message
            try:
                placed, moves = self._make_way(key, req, bps)
            except AdmissionError as exc:
                if req.max_latency_ms is None:
                    return exc.message
                # Its bound may be what refuses it (a fibre made longer too): placed
                # without, it is over its bound as one whose path is intact would be, and
                # the first restoration moves it within it or DEGRADES it, saying so (a
                # re-tester's was refused only because an edit elsewhere renumbered a port)
                try:
                    placed, moves = self._make_way(key, req._replace(max_latency_ms=None), bps)
                except AdmissionError:
                    return exc.message
            latency, hops, moved, standby = placed
            moved = list(moved) + [r for move in moves for r in move.after]
            if moves:
                self._room_back += 1
        meter = (members[0].meter_id if members else res.meter_id
                 if res.meter_id >= 1 and res.meter_id not in self._meter_users
                 else self._meter_id())
        return replace(res, hops=hops, latency_ms=latency, standby=standby, meter_id=meter,
                       state=State.PENDING, reason=""), moved

    def over_bound(self, res: Reservation) -> str | None:
        """Why its path no longer meets its max_latency_ms (restored after the fabric's
        fibre lengths changed: an operator's was kept, silently, 0.13 ms over), or None."""
        bound = res.request.max_latency_ms
        if bound is None or not res.holds_bandwidth or res.latency_ms <= bound + 1e-9:
            return None
        return f"its path takes {res.latency_ms:.3f} ms{OVER_BOUND} {bound:g}"

    def path_latency(self, res: Reservation) -> float:
        """The latency of its path on this fabric, from its source host (ms)."""
        return self._latency_of(res.request.src_host, res.hops)

    def as_on_this_fabric(self, res: Reservation) -> tuple[Reservation, list[str]]:
        """`res` read back from a store, with what its paths make of this fabric if the
        file was edited since: its path's latency (fibre lengths), and no standby where
        the standby now shares a line system or SRLG with its primary (SRLGs; an
        operator's stayed "PROTECTED" over one duct). Returns it, and what changed, said
        for the log; `res` as it is where its paths are not this fabric's
        (`restore_problem` says why)."""
        hosts = self.fabric.hosts
        if (res.request.src_host not in hosts or res.request.dst_host not in hosts
                or not res.hops or self._path_problem(res, res.hops, "hop")
                or (res.standby and self._path_problem(res, res.standby, "standby hop"))):
            return res, []
        notes = []
        latency = self.path_latency(res)
        if abs(latency - res.latency_ms) > 1e-9:
            res = replace(res, latency_ms=latency)
            over = self.over_bound(res)
            if over:
                notes.append(f"{over}; it moves within it, or is DEGRADED, at the next "
                             f"restoration")
        bound = res.request.max_latency_ms
        if res.standby and bound is not None and res.request.protection == Protection.PROTECTED:
            standby_ms = self.standby_latency(res.request.src_host, res.standby)
            if standby_ms > bound + 1e-9:          # admission holds a standby to it too
                res = replace(res, standby=())
                notes.append(f"its standby takes {standby_ms:.3f} ms since the fabric "
                             f"changed, over its max_latency_ms {bound:g}: it runs "
                             f"unprotected until another is found")
        if res.standby and res.request.protection == Protection.PROTECTED:
            primary = {e for ls in self._line_systems(res.hops) for e in self._events[ls]}
            shared = sorted(primary & {e for ls in self._line_systems(res.standby)
                                       for e in self._events[ls]})
            if shared:
                res = replace(res, standby=())
                notes.append(f"its standby shares {', '.join(shared)} with its primary since "
                             f"the fabric changed: it runs unprotected until another is found")
        return res, notes

    def pairs_to_restore(self) -> list[tuple[str, str]]:
        """Aggregates whose path crosses a link that is down or holds more than it can
        carry now, or is over a member's latency bound, or that are DEGRADED: RESTORABLE
        before NONE, then the highest priority first, then the oldest."""
        return self.in_restore_order(
            pair for pair, ids in self._pairs.items()
            if any(r.state == State.DEGRADED or self.crosses_down(r) or self.crosses_full(r)
                   or self.over_bound(r) for r in (self.reservations[i] for i in ids)))

    def in_restore_order(self, pairs) -> list[tuple[str, str]]:
        """`pairs` RESTORABLE (and PROTECTED) before NONE, then the highest priority first,
        then the oldest."""
        out = []
        for pair in pairs:
            members = self.pair_members(*pair)
            out.append((min(r.request.protection.restore_rank for r in members),
                        -max(r.request.priority for r in members),
                        min(r.created_at for r in members), pair))
        return [pair for *_, pair in sorted(out)]

    def protect_again(self, pair: tuple[str, str]) -> list[Reservation] | None:
        """A PROTECTED pair whose primary broke, placed afresh as a new PROTECTED request of
        its sum would be: a live primary and a standby with room, sharing no risk (its own
        room free to take). Its members there, or None, the book unchanged, where none
        has room (it then takes its standby, `take_standby`). Before the pairs restored
        after it: an outside tester's pair took its standby for good, 2.5 times as long
        and unprotected, while a NONE pair took the surviving wavelength of its line
        system, where it could have stayed with its standby."""
        members = self.pair_members(*pair)
        first = members[0]
        if (first.request.protection != Protection.PROTECTED or not first.holds_bandwidth
                or not self._down_on(first.hops)):
            return None
        placed = self._relocate(pair)           # with a standby, or not at all
        if placed is None:
            return None
        self._room_back += 1                    # its old primary and standby are free
        return placed[2]

    def take_standby(self, pair: tuple[str, str]
                     ) -> tuple[list[Reservation], list[tuple[Reservation, list[Reservation]]]] | None:
        """A PROTECTED pair whose primary crosses something down while its standby is
        whole takes its standby as its path: the switches' fast failover already sent its
        traffic there, and the room is the standby's, held for this failure. Shared, that
        room was also held for the standbys of primaries that cannot fail with this one:
        where it is now short, those lose their standby (the lowest priority, the newest
        first), and one is sought for them again as after any failure. Returns (the pair's
        members on their new path, without a standby; and (first member before, members
        after) of each pair that lost its standby), or None, the book unchanged, when the
        pair has no whole standby or its links cannot carry it (a failure beyond single
        risk events, or a wavelength slower now)."""
        members = self.pair_members(*pair)
        first = members[0]
        if (first.request.protection != Protection.PROTECTED or not first.standby
                or not first.holds_bandwidth or self._down_on(first.standby)
                or not self._down_on(first.hops)):
            return None
        path = without_loops(first.standby)    # carried untagged now: the short way
        latency = self._latency_of(first.request.src_host, path)
        if any(r.request.max_latency_ms is not None and latency > r.request.max_latency_ms
               for r in members):             # one joined later, with a tighter bound
            return None
        self._sync()
        self._take(members)
        total = sum(r.bandwidth_bps for r in members)
        new = replace(first, hops=path, standby=())
        # Primaries only: the room held as shared standby is what this failure may take.
        if any(self.reserved.get(d, 0.0) - self._standby_max.get(d, 0.0) + total
               > self._capacity[d] + SLACK_BPS for d in self.held(new)):
            self._put(members)
            return None
        moved = [replace(r, hops=path, standby=(), latency_ms=latency) for r in members]
        self._put(moved)
        self._room_back += 1
        return moved, self._shed_standbys(self.held(new))

    def shed_overfull_standbys(self) -> list[tuple[Reservation, list[Reservation]]]:
        """Standbys taken off the links where they hold more than the link carries now (a
        wavelength stepped down to a slower mode under them, or the standbys a failure
        made paths took the room), the lowest priority, the newest first: (first member
        before, members after) of each pair that lost its standby; one is sought for them
        again."""
        self._sync()
        return self._shed_standbys(list(self._standby_need))

    def _shed_standbys(self, links: list[Direction]
                       ) -> list[tuple[Reservation, list[Reservation]]]:
        """Standbys taken off `links` where they hold more than is left (see take_standby):
        only those of the risk events whose need no longer fits beside the primaries, so
        a standby that still has its room keeps it."""
        shed = []
        for d in links:
            sharing = None
            while (d in self._standby_need
                   and self.reserved.get(d, 0.0) > self._capacity[d] + SLACK_BPS):
                room = self._capacity[d] - (self.reserved.get(d, 0.0) - self._standby_max[d])
                over = {e for e, need in self._standby_need[d].items()
                        if need > room + SLACK_BPS}
                if sharing is None:
                    # Not those the failure broke too: they take their standby next (a
                    # re-tester saw one lose it here, then go DEGRADED). Anything still
                    # over once they have is shed at the end of the restoration.
                    failing = self.failing_events()
                    sharing = [(self.risk_events(ms[0].hops, ms[0].standby), ms)
                               for ms in (self.pair_members(*p) for p in self._pairs)
                               if d in self.standby_held(ms[0])
                               and not self._down_on(ms[0].hops)]
                    sharing = [(events, ms) for events, ms in sharing
                               if not events & failing]
                    sharing.sort(key=lambda em: (max(m.request.priority for m in em[1]),
                                                 -min(m.created_at for m in em[1])))
                victim = next((em for em in sharing if em[0] & over), None)
                if victim is None:
                    break
                sharing.remove(victim)
                shed.append((victim[1][0], self._drop_standby(victim[1])))
        return shed

    def _drop_standby(self, members: list[Reservation]) -> list[Reservation]:
        """The pair's members without their standby, its room given back."""
        self._take(members)
        bare = [replace(r, standby=()) for r in members]
        self._put(bare)
        self._room_back += 1        # shared standby room freed: refusals may fit now
        return bare

    def repath(self, pair: tuple[str, str], only_if_shorter: bool = False) -> list[Reservation]:
        """Move a pair, as a whole and with its meter, onto the best live path with room
        for its sum (its own bandwidth counts as free). Returns its members on the new path
        (a DEGRADED one comes back PENDING, until its rules are acknowledged); AdmissionError
        if no path has room, the book then unchanged. With `only_if_shorter`, it moves only
        to a path of less latency (a link came back), and returns [] otherwise."""
        members = self.pair_members(*pair)
        old_latency = members[0].latency_ms
        placed = self._relocate(pair, fallback=not only_if_shorter)
        if placed is None and not only_if_shorter:
            kept = self._keep_primary(members)
            if kept is not None:
                return kept
        if placed is None:
            src, dst = self.fabric.hosts[pair[0]], self.fabric.hosts[pair[1]]
            total = sum(r.bandwidth_bps for r in members)
            self._take(members)
            full = self._access_full(src.name, dst.name, total)
            self._put(members)
            if full is not None:
                raise full
            unloaded = self._search(src.leaf, dst.leaf, 0.0)
            # A leaf down is no path at all, also for two hosts of one leaf, whose path
            # has no hop to name a bottleneck on (a restart tester's traceback, every tick).
            if unloaded is None or not all(self.engine.switch_up(leaf)
                                           for leaf in (src.leaf, dst.leaf)):
                raise AdmissionError(AdmissionError.EXHAUSTED,
                                     f"no path from {src.name} to {dst.name} is up")
            if not unloaded[1]:
                raise AdmissionError(AdmissionError.EXHAUSTED,
                                     f"{src.name} and {dst.name} (both on {src.leaf}) have "
                                     f"no room for {total / 1e9:.3f} Gb/s on their own links")
            bound = min((r.request.max_latency_ms for r in members
                         if r.request.max_latency_ms), default=None)
            if bound is not None:
                # none within the bound even with every link up (a fibre made longer under
                # it): say that, not room (no retry meets it)
                try:
                    self._check_bound(members[0].request._replace(max_latency_ms=bound))
                except AdmissionError as exc:
                    raise AdmissionError(AdmissionError.EXHAUSTED,
                                         f"no path meets it: {exc.message}") from None
            if bound is not None:          # a path has room, beyond the bound: say that
                # Restoring takes a path without a standby when none has room: the
                # explanation asks for one only when the move did.
                needs_standby = only_if_shorter and any(
                    r.request.protection == Protection.PROTECTED for r in members)
                self._take(members)
                try:
                    beyond = self._only_beyond(pair, total, bound, needs_standby)
                finally:
                    self._put(members)
                if beyond is not None:
                    raise AdmissionError(
                        AdmissionError.EXHAUSTED,
                        f"no path for {src.name} -> {dst.name} within max_latency_ms "
                        f"{bound:g} has {total / 1e9:.3f} Gb/s free; a path of {beyond:.3f} "
                        f"ms has room")
            raise self._exhausted(self._bottleneck(unloaded[1]), total)
        latency, hops, moved, _ = placed
        if only_if_shorter and not latency < old_latency - 1e-9:
            self._take(moved)
            self._put(members)
            return []
        self._room_back += 1
        self._take(moved)
        back = []
        for r in moved:
            state = State.PENDING if r.state == State.DEGRADED else r.state
            back.append(replace(r, state=state, reason=""))
        self._put(back)
        return back

    def repath_making_room(self, pair: Key) -> tuple[list[Reservation], list[Move]] | None:
        """Restoring a pair no path has room for (its path broke, or it is DEGRADED): move
        other aggregates aside so that it fits, as admission does for a request of its sum
        (one other aggregate moved, else a re-packing of the movable ones; `_make_room`,
        `_repack`). Returns its members on their new path (a DEGRADED one PENDING) and the
        others' moves, in the order their rules must change; None, the book unchanged.
        Not for PROTECTED pairs (their standby is their restoration), nor without
        `rearrange`."""
        members = self.pair_members(*pair)
        if not self.rearrange or not members or any(
                r.request.protection == Protection.PROTECTED for r in members):
            return None
        bounds = [r.request.max_latency_ms for r in members if r.request.max_latency_ms]
        # The pair stands aside as one new request of its sum: the searches then treat it
        # as they treat an arrival (no path of its own to keep, every route a candidate).
        stand_in = members[0].request._replace(
            request_id="", bandwidth_gbps=sum(r.bandwidth_bps for r in members) / 1e9,
            max_latency_ms=min(bounds) if bounds else None, protection=Protection.RESTORABLE)
        self._take(members)
        if self._access_full(pair[0], pair[1], stand_in.bandwidth_gbps * 1e9) is not None:
            self._put(members)                     # its hosts' own links: no move helps
            return None
        ids = self._pairs.pop(pair)
        try:
            try:
                placed, moves = self._make_room(pair, stand_in)
            except AdmissionError:
                repacked = (self._repack(pair, stand_in)
                            if self.repack_time_limit_s > 0 else None)
                if repacked is None:
                    self._put(members)
                    return None
                placed, moves = repacked
        finally:
            self._pairs[pair] = ids
        latency, hops, _, standby = placed
        back = [replace(r, hops=hops, latency_ms=latency, standby=standby, reason="",
                        state=State.PENDING if r.state == State.DEGRADED else r.state)
                for r in members]
        self._put(back)
        self._room_back += 1                       # aggregates moved: the layout changed
        return back, moves

    def _latency_of(self, src_host: str, hops: tuple[ReservedHop, ...]) -> float:
        """A path's latency from its source host (0 for no path, as a missing standby)."""
        if not hops:
            return 0.0
        return self._link(src_host).latency_ms + sum(self._link(h.link).latency_ms
                                                     for h in hops)

    def standby_latency(self, src_host: str, standby: tuple[ReservedHop, ...]) -> float:
        """A standby's latency as admission holds it to a bound: the short way, its
        hairpin through the primary's gateway cut out (`without_loops`), as it carries
        traffic once taken. Measured with the hairpin, a restart found an unchanged
        standby over the bound it was admitted within (an auditor's)."""
        return self._latency_of(src_host, without_loops(standby))

    def _keep_primary(self, members: list[Reservation]) -> list[Reservation] | None:
        """A pair whose standby broke while its primary still carries it, with no path
        found for it (its own is held down after a flap, so searches pass it by): it keeps
        its primary without the standby (one is sought again later); None otherwise."""
        first = members[0]
        if (not first.holds_bandwidth or not first.standby or self._down_on(first.hops)
                or not self._down_on(first.standby) or self.crosses_full(first)):
            return None
        self._room_back += 1
        return self._drop_standby(members)

    def unprotected(self) -> list[Reservation]:
        """PROTECTED reservations holding bandwidth without a standby though they cross a
        line system: a failure took it (or left no disjoint room) and none has had room
        since. (Between two hosts of one site there is nothing to protect.)"""
        return [r for r in self.reservations.values() if lacks_standby(r)]

    def reprotect(self, pair: tuple[str, str]) -> list[Reservation]:
        """A PROTECTED pair without a standby takes a path with one where there is room
        (its own primary first); its members as moved, or [] (the book unchanged) when no
        standby has room."""
        members = self.pair_members(*pair)
        placed = self._relocate(pair)
        if placed is None:
            return []
        if not placed[3]:                          # nothing to protect it with
            self._take(placed[2])
            self._put(members)
            return []
        self._room_back += 1
        return placed[2]

    def room_elsewhere(self, link: Link) -> str | None:
        """Whether taking `link` out of use by choice (a step up to a faster mode) would
        degrade or leave unprotected no reservation: tried as restoration moves pairs,
        then taken back. Every aggregate whose path or standby crosses it moves off, in
        restore order, to a path with room on every link of the way (inside the sites
        too) within its latency bound, a PROTECTED one with a standby (unless it had
        none); then standbys whose shared room no longer holds are sought again. Other
        aggregates are not moved aside to make room, as restoration may: where that
        would be needed the step up waits. None, else the first that would not find its
        place; the book is as it was either way. Counting only the other wavelengths'
        room, an approved drain left pairs DEGRADED whose way to those wavelengths was
        full or cut inside a site, or a PROTECTED pair without its standby (a
        reviewer's)."""
        before = {pair: self.pair_members(*pair) for pair in self._pairs}
        unprotected = {key_of(r.request) for r in self.unprotected()}
        room_back = self._room_back
        crossing = self.in_restore_order(
            pair for pair, members in before.items() if members[0].holds_bandwidth
            and any(h.link == link.name for h in members[0].hops + members[0].standby))
        journal, self.journal = self.journal, None        # nothing of a trial is saved
        try:
            with self.engine.drained_for_trial(link.name):
                for pair in crossing:
                    why = self._moves_off(pair, link, had_standby=pair not in unprotected)
                    if why is not None:
                        return why
                self.shed_overfull_standbys()
                for r in self.unprotected():
                    pair = key_of(r.request)
                    if pair not in unprotected and not self.reprotect(pair):
                        return self._would(pair, link, "run without a standby: none that "
                                                       "avoids its primary's risks has room")
            return None
        finally:
            changed = [pair for pair, members in before.items()
                       if self.pair_members(*pair) != members]
            for pair in changed:
                self._take(self.pair_members(*pair))
            for pair in changed:
                self._put(before[pair])
            self.journal = journal
            self._room_back = room_back     # no room came back: what was refused still is

    def _moves_off(self, pair: Key, link: Link, had_standby: bool) -> str | None:
        """For `room_elsewhere`: the pair moved as restoration moves it; None, else why not
        (a PROTECTED pair that had a standby and would not: a re-tester's pair already
        without one, for lack of room, held off a step up for good)."""
        try:
            after = self.repath(pair)
        except AdmissionError as exc:
            return self._would(pair, link, "have no room", exc.message)
        if had_standby and lacks_standby(after[0]):
            return self._would(pair, link, "run without a standby: none that avoids its "
                                           "primary's risks has room")
        return None

    def _would(self, pair: Key, link: Link, outcome: str, detail: str = "") -> str:
        members = self.pair_members(*pair)
        return (f"reservation(s) {', '.join(r.reservation_id for r in members)} "
                f"({sum(r.bandwidth_bps for r in members) / 1e9:.3f} Gb/s {pair[0]} -> "
                f"{pair[1]}) would {outcome} without {link.wavelength or link.name}"
                + (f": {detail}" if detail else ""))

    def pairs(self) -> list[tuple[str, str]]:
        """Every host pair holding bandwidth, in restore order (`in_restore_order`)."""
        return self.in_restore_order(
            pair for pair, ids in self._pairs.items()
            if all(self.reservations[r].holds_bandwidth for r in ids))

    def degrade(self, pair: tuple[str, str], reason: str) -> list[Reservation]:
        """No path has room for the pair: it holds nothing and is carried best effort."""
        members = [self.reservations[r] for r in self._pairs[pair]]
        self._take(members)
        self._room_back += 1
        # Nor a standby: one is sought when it is restored (a client reading the old one
        # would take it for protected).
        degraded = [replace(r.with_state(State.DEGRADED, reason), standby=()) for r in members]
        self._put(degraded)
        return degraded

    def _hold(self, res: Reservation, sign: int) -> None:
        for d in self.held(res):
            left = self.reserved.get(d, 0.0) + sign * res.bandwidth_bps
            if left > 1e-3:
                self.reserved[d] = left
            else:
                self.reserved.pop(d, None)
        if self.share_standby and res.standby:
            self._hold_standby(res, sign)

    def _hold_standby(self, res: Reservation, sign: int) -> None:
        """Shared standby: on each link only its standby crosses, the need of every risk
        event that fails its primary changes by its bandwidth; the link holds the largest
        need (a single event fails only primaries that share it, and each standby avoids
        its primary's risks, so one event never needs more than that)."""
        events = self.risk_events(res.hops, res.standby)
        for d in self.standby_held(res):
            need = self._standby_need.setdefault(d, {})
            for e in events:
                left = need.get(e, 0.0) + sign * res.bandwidth_bps
                if left > 1e-3:
                    need[e] = left
                else:
                    need.pop(e, None)
            new = max(need.values(), default=0.0)
            old = self._standby_max.pop(d, 0.0)
            if need:
                self._standby_max[d] = new
            else:
                del self._standby_need[d]
            left = self.reserved.get(d, 0.0) + new - old
            if left > 1e-3:
                self.reserved[d] = left
            else:
                self.reserved.pop(d, None)

    def _take(self, members: list[Reservation]) -> None:
        for r in members:
            self._hold(r, -1)

    def _put(self, members: list[Reservation]) -> None:
        for r in members:
            self._note(r.reservation_id)
            self.reservations[r.reservation_id] = r
            self._hold(r, +1)

    # -- internals ---------------------------------------------------------------------

    def check_ever(self, req: ReservationRequest) -> None:
        """FAILED_PRECONDITION for a (valid) request no retry can get, however empty the
        fabric: a latency bound under its shortest path, more than one path could carry,
        a PROTECTED one with no disjoint standby. Before any room is looked at (the host
        links' too): the answer must not depend on the load (a re-tester's host link, busy,
        made it retryable)."""
        self._sync()
        if req.max_latency_ms is not None:
            self._check_bound(req)
        bps = req.bandwidth_gbps * 1e9
        self._check_size(req, bps)
        if req.protection == Protection.PROTECTED:
            self._check_protectable(req, bps)

    def _check_bound(self, req: ReservationRequest) -> None:
        """FAILED_PRECONDITION for a latency bound below the fabric's shortest path with
        every link up: no retry can meet it. (Below the shortest live path only, links
        being down, it is no room for now: `_find` says so.)"""
        if self._intact is None:
            self._intact = PathEngine(self.fabric)
        src, dst = self.fabric.hosts[req.src_host], self.fabric.hosts[req.dst_host]
        edge_ms = self._link(src.name).latency_ms + self._link(dst.name).latency_ms
        shortest_ns = self._intact.distances_to(dst.leaf).get(src.leaf)
        if shortest_ns is None:
            return                                 # unreachable: `_find` says so
        shortest_ms = shortest_ns / 1e6 + edge_ms
        if shortest_ms > req.max_latency_ms:
            raise AdmissionError(
                AdmissionError.PRECONDITION,
                f"max_latency_ms {req.max_latency_ms:.12g}: the shortest path from {src.name} "
                f"to {dst.name} takes {shortest_ms:.6g} ms with every link up")

    def _ceiling_bps(self, link: Link) -> float:
        """The most `link` can reserve: at its planned mode's rate, or at the rate it runs
        if a mode change raised it."""
        return max(link.rate_gbps, self.engine.rate_gbps(link)) * 1e9 * self.fraction

    def _check_size(self, req: ReservationRequest, bps: float) -> None:
        """FAILED_PRECONDITION for more than one path could ever carry, every link up and
        empty: a request rides one path, so no retry can get it. (More than the path has
        free now is no room for now: RESOURCE_EXHAUSTED.)"""
        src, dst = self.fabric.hosts[req.src_host], self.fabric.hosts[req.dst_host]
        for host in (src, dst):
            most = self._ceiling_bps(self._link(host.name))
            if bps > most + SLACK_BPS:
                raise AdmissionError(
                    AdmissionError.PRECONDITION,
                    f"bandwidth_gbps {req.bandwidth_gbps:g}: the host link of {host.name} can "
                    f"reserve at most {most / 1e9:g} Gb/s, however empty")
        if src.leaf == dst.leaf:
            return
        # Within its bound: only a short line may meet it, however wide a long one is (a
        # re-tester's 500 Gb/s within 0.3 ms, which only a 400G line met, came back
        # RESOURCE_EXHAUSTED, and a client retried it for good).
        bound = req.max_latency_ms
        edges_ms = self._link(src.name).latency_ms + self._link(dst.name).latency_ms
        most = self._widest_ever(src.leaf, dst.leaf,
                                 None if bound is None else bound - edges_ms)
        if bps > most + SLACK_BPS:
            within = f" within max_latency_ms {bound:.12g}" if bound is not None else ""
            raise AdmissionError(
                AdmissionError.PRECONDITION,
                f"bandwidth_gbps {req.bandwidth_gbps:g}: a reservation takes one path, and "
                f"the widest from {src.name} to {dst.name}{within} can reserve at most "
                f"{most / 1e9:g} Gb/s, every link up and empty; reserve more as several "
                f"reservations with selectors of their own")

    def _widest_ever(self, src_leaf: str, dst_leaf: str, within_ms: float | None = None
                     ) -> float:
        """The most one path between two leaves could reserve, every link up and empty:
        the largest link ceiling at which a path still exists (`within_ms` of latency)."""
        rates = frozenset(self.engine.rates().items())
        if self._widest_at != rates or len(self._widest) >= PROTECTABLE_KEPT:
            self._widest, self._widest_at = {}, rates      # keyed by each bound asked too
            self._ceilings = {d: self._ceiling_bps(link) for link in self.fabric.links
                              for d in directions(link)}
        key = (src_leaf, dst_leaf, within_ms)
        if key not in self._widest:
            if self._intact is None:
                self._intact = PathEngine(self.fabric)

            def carries(bps: float) -> bool:
                found = self._intact.widest_shortest(src_leaf, dst_leaf, bps, self._ceilings,
                                                     {})
                return found is not None and (within_ms is None
                                              or found[0] <= within_ms + 1e-9)
            self._widest[key] = next(
                (bps for bps in sorted(set(self._ceilings.values()), reverse=True)
                 if carries(bps)), 0.0)
        return self._widest[key]

    def _latency_to(self, dst_leaf: str) -> dict[str, float]:
        """Latency (ms) of the shortest live path from every switch to `dst_leaf`, leaves
        never transit (the path engine's distances)."""
        if dst_leaf not in self._to_leaf:
            self._to_leaf[dst_leaf] = {u: ns / 1e6 for u, ns in
                                       self.engine.distances_to(dst_leaf).items()}
        return self._to_leaf[dst_leaf]

    def _search(self, src_leaf: str, dst_leaf: str, bps: float,
                avoid: Container[str] = frozenset(), bonus: dict[Direction, float] | None = None):
        """The path engine's widest-shortest path with `bps` free after what is reserved
        (`PathEngine.widest_shortest`). `bonus`: room a link has beyond its free capacity
        (a standby's share of the shared standby)."""
        self._sync()
        return self.engine.widest_shortest(src_leaf, dst_leaf, bps, self._capacity,
                                           self.reserved, avoid, bonus)

    def _bottleneck(self, path: list[Direction]) -> Direction:
        """On a path, the hop whose best link has the least room (what refused a request)."""
        def parallel(d: Direction) -> list[Direction]:
            return next(links for v, _, links in self.engine.directed()[d.src] if v == d.dst)

        def room(d: Direction) -> float:
            return max(self.free_bps(p) for _, p in parallel(d))
        worst = min(path, key=room)
        return max((p for _, p in parallel(worst)), key=self.free_bps)

    def _out_port(self, d: Direction) -> int:
        link = self._link(d.link)
        return link.end(d.src).port

    def _exhausted(self, d: Direction, bps: float) -> AdmissionError:
        link = self._link(d.link)
        what = f"wavelength {link.wavelength}" if link.wavelength else f"link {link.name}"
        return AdmissionError(
            AdmissionError.EXHAUSTED,
            f"{what} ({d.src} -> {d.dst}) has {max(0.0, self.free_bps(d)) / 1e9:.3f} Gb/s free "
            f"of {self.capacity_bps(d) / 1e9:.3f} Gb/s reservable; {bps / 1e9:.3f} Gb/s asked")

    def _meter_id(self) -> int:
        """A meter id for a new aggregate. Ids come back when their last reservation ends
        (a switch has a fixed meter table: OVS refuses ids above its max_meters), and rest
        while METER_REST others are freed after them, so a meter's last statistics are
        never read as its successor's."""
        if not self._gaps_free:
            # Restored records leave the ids between theirs unused: without them, ids
            # would climb at every restart, and standby VLAN ids (an id modulo 2047)
            # could repeat among far fewer than 2047 live aggregates.
            self._gaps_free = True
            freed = set(self._free_meters)
            self._free_meters.extend(i for i in range(1, self._next_meter)
                                     if i not in self._meter_users and i not in freed)
        while len(self._free_meters) > METER_REST:
            meter = self._free_meters.popleft()
            if meter not in self._meter_users:
                return meter
        meter, self._next_meter = self._next_meter, self._next_meter + 1
        return meter
