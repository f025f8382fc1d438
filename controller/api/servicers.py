"""dcilab.v1 servicers: each method turns a request into one ControllerService call and its
answer (or AdmissionError, StoreError) into a response (or a status code with the human
message).

Reads are bounded: ListReservations pages (AIP-158), and every read (ListReservations,
ListLinks, ListElephants, GetFabric; GetReservation at a tenth of a call) spends from a budget per client
address and one in total (`ReadBudget`), so clients looping on reads cannot starve the
calls that book capacity.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import random
import threading
import time

import grpc

from ..core.errors import UNAVAILABLE, StoreError
from ..te.reservations import MAX_NAME_CHARS, AdmissionError, State, check_id
from . import convert
from .defaults import DEFAULT_PAGE_SIZE, DEFAULT_READS_PER_S, MAX_PAGE_SIZE
from .v1 import fabric_pb2 as fpb
from .v1 import fabric_pb2_grpc
from .v1 import path_pb2 as ppb
from .v1 import path_pb2_grpc

STATUS = {AdmissionError.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
          AdmissionError.EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
          AdmissionError.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
          AdmissionError.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
          AdmissionError.PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
          AdmissionError.ABANDONED: grpc.StatusCode.DEADLINE_EXCEEDED}

STATE_FILE_ERROR = "dcilab-state-file-error"
RETRY_AFTER = "retry-after-s"
CLIENT_BURST_S = 2.0
TOTAL_BURST_S = 1.0
GET_COST = 0.1
# A change sent on a watch of every reservation: a message of its own costs the
# controller about what five records of a page do.
STREAMED_COST = 0.05
LINK_DIRECTIONS_PER_TOKEN = 500
MIN_RETRY_S = 0.01
MAX_PAGE_TOKEN_CHARS = 512

DEFAULT_INTERVAL_S = 1.0
MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 3600.0


def _abort(context: grpc.ServicerContext, exc: AdmissionError):
    context.abort(STATUS.get(exc.code, grpc.StatusCode.UNKNOWN), exc.message)


def _answer(context: grpc.ServicerContext, call, *args):
    """The service's answer, or the call aborted with the status its refusal maps to."""
    try:
        return call(*args)
    except AdmissionError as exc:
        _abort(context, exc)
    except StoreError as exc:
        # Marked as the server's answer: a client must not take this UNAVAILABLE for a
        # server it could not reach.
        context.set_trailing_metadata(((STATE_FILE_ERROR, "1"),))
        context.abort(grpc.StatusCode.UNAVAILABLE if exc.code == UNAVAILABLE
                      else grpc.StatusCode.INTERNAL, str(exc))


class ReadBudget:
    """Token buckets for read calls: one per client address and one in total. A call
    costs 1, a page of reservations 1 + its page_size / 100 (a watch of every live one
    as many pages), a ListLinks 1 + its link directions / 500, a GetReservation (or a
    watch of one) 0.1. It goes
    ahead once every bucket holds a tenth of a token (the cheapest call's price) and then
    takes its whole cost, leaving a bucket in debt if it costs more; the debt is repaid at
    the bucket's rate before the next call goes. So a page of 1000 is neither starved by
    a neighbour's stream of cheap calls on the same address nor refused for good by a
    budget smaller than its cost. Otherwise it waits up to `max_wait_s`, then is refused
    with RESOURCE_EXHAUSTED and the seconds to wait in the trailing metadata
    `retry-after-s` (the Client waits and retries). By default it waits not at all: a
    waiting call would hold one of the server's few threads, which the calls that book
    need."""

    def __init__(self, per_client: float = DEFAULT_READS_PER_S,
                 total: float = DEFAULT_READS_PER_S,
                 max_wait_s: float = 0.0, clock=time.monotonic, sleep=time.sleep):
        self.per_client, self.total, self.max_wait_s = per_client, total, max_wait_s
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        # Bursts: 2 s of a client's rate (a listing of a few pages at once), 1 s of the
        # total's. The total's burst is work done in a row on the controller's CPU while
        # reservations wait: at 10 s of it, four clients looping on listings took 45 pages
        # in their first 0.15 s, and 2 % of ReservePaths at 500/s then waited 10-35 ms.
        self._total = [TOTAL_BURST_S * total, clock()]     # tokens, when last filled
        self._clients: dict[str, list[float]] = {}

    @staticmethod
    def _fill(bucket: list[float], rate: float, burst_s: float, now: float) -> None:
        bucket[0] = min(burst_s * rate, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now

    def spend(self, client: str, cost: float) -> float | None:
        """Wait until `client` may spend `cost`; None once spent, else the seconds it
        would have had to wait (more than max_wait_s: refused, nothing spent)."""
        with self._lock:
            now = self._clock()
            if len(self._clients) > 4096:                  # forget idle clients
                self._clients = {k: b for k, b in self._clients.items() if now - b[1] < 60}
            mine = self._clients.setdefault(client, [CLIENT_BURST_S * self.per_client, now])
            self._fill(mine, self.per_client, CLIENT_BURST_S, now)
            self._fill(self._total, self.total, TOTAL_BURST_S, now)
            wait = max(0.0, (self._due(cost, CLIENT_BURST_S * self.per_client) - mine[0])
                       / self.per_client,
                       (self._due(cost, TOTAL_BURST_S * self.total) - self._total[0])
                       / self.total)
            if wait > self.max_wait_s:
                return wait
            mine[0] -= cost                                # may go below 0: later callers wait
            self._total[0] -= cost
        if wait > 0:
            self._sleep(wait)
        return None

    @staticmethod
    def _due(cost: float, burst: float) -> float:
        """Tokens a bucket must hold for a call of `cost` to go (the rest becomes debt):
        the cheapest call's price, for all, so that cheap calls polling as fast as allowed
        cannot keep a bucket below what a dear one waits for."""
        return min(cost, GET_COST, burst)


def client_of(peer: str | None) -> str:
    """The client a gRPC peer names, by its address without the port: one client's many
    connections (a new channel each, or a pool) share its bounds. 'ipv4:10.0.0.5:41234'
    -> 'ipv4:10.0.0.5'; 'ipv6:[::1]:5555' (or %5B..%5D) -> 'ipv6:[::1]'; others as given."""
    if not peer:
        return "?"
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and ":" in rest:
        return f"{kind}:{rest.rsplit(':', 1)[0]}"
    return peer


def _refused(service, kind: str) -> None:
    observer = getattr(service, "observer", None)
    if observer is not None:
        observer.read_refused(kind)


def _paid(budget: ReadBudget | None, context, wake: threading.Event, streams: "Streams",
          cost: float) -> bool:
    """A stream's next message paid from its client's read budget, waiting on the
    stream's own thread as long as told; False if the stream ended meanwhile."""
    while context.is_active() and not streams.closed.is_set():
        wait = budget.spend(client_of(context.peer()), cost) if budget is not None else None
        if wait is None:
            return True
        wake.wait(min(wait, 1.0))
    return False


def _spend(budget: ReadBudget | None, service, context, cost: float, what: str) -> None:
    if budget is None:
        return
    wait = budget.spend(client_of(context.peer()), cost)
    if wait is not None:
        _refused(service, "read_budget")
        # Up to half as long again, at random: clients refused together would otherwise
        # all come back at the same instant, and be refused together again.
        wait = max(MIN_RETRY_S, wait * (1.0 + random.random() / 2))
        context.set_trailing_metadata(((RETRY_AFTER, f"{wait:.3f}"),))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                      f"too many {what} calls: at most {budget.per_client:g} reads per second "
                      f"per client address and {budget.total:g} in total, and this one counts "
                      f"{cost:.3g} (a call 1, a page of 100 reservations 2, a ListLinks 1 + "
                      f"the link directions it answers / {LINK_DIRECTIONS_PER_TOKEN}, a "
                      f"GetReservation {GET_COST:g}); retry in {wait:.2f} s")


def encode_page_token(key: tuple[float, str], query: str) -> str:
    raw = json.dumps([key[0], key[1], query], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, query: str) -> tuple[float, str] | None:
    """The list key a page token resumes after; None if it is not one we gave for
    `query` (the request's other fields)."""
    if len(token) > MAX_PAGE_TOKEN_CHARS:
        return None
    try:
        created, rid, asked = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if asked != query or not isinstance(rid, str) or not isinstance(created, (int, float)):
            return None
        created = float(created)
        rid.encode()                     # a lone surrogate cannot reach SQLite as text
        check_id("page_token", rid)
    except (ValueError, TypeError, OverflowError, AdmissionError):
        return None                      # a forged token: a digit too many, a bad string
    return (created, rid) if math.isfinite(created) else None


class Streams:
    """The open Watch* streams: bounded in number, in total and per client address (each
    holds a server thread; by default one address may hold half of them), and woken to end
    at once when the server stops."""

    def __init__(self, limit: int, per_client: int | None = None):
        self._slots = threading.BoundedSemaphore(limit)
        self.limit = limit
        self.per_client = per_client if per_client is not None else max(1, limit // 2)
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._wakes: dict[threading.Event, str] = {}

    def open(self, client: str = "") -> threading.Event | None:
        with self._lock:                   # counted and taken at once: no two pass together
            if (self.closed.is_set()
                    or sum(1 for c in self._wakes.values() if c == client) >= self.per_client
                    or not self._slots.acquire(blocking=False)):
                return None
            wake = threading.Event()
            self._wakes[wake] = client
            return wake

    def held(self, client: str) -> int:
        with self._lock:
            return sum(1 for c in self._wakes.values() if c == client)

    def done(self, wake: threading.Event) -> None:
        with self._lock:
            self._wakes.pop(wake, None)
        self._slots.release()

    def close(self) -> None:
        self.closed.set()
        with self._lock:
            for wake in self._wakes:
                wake.set()


def _open_stream(streams: Streams, service, context) -> threading.Event:
    client = client_of(context.peer())
    wake = streams.open(client)
    if wake is None:
        if streams.closed.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the server is stopping")
        _refused(service, "watch_streams")
        which = (f"this client address has {streams.per_client} open already"
                 if streams.held(client) >= streams.per_client else "all are open")
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                      f"this server serves at most {streams.limit} watch streams at once, "
                      f"{streams.per_client} per client address, and {which} "
                      f"(dcilab controller --watch-streams)")
    return wake


def _end_if_stopping(streams: Streams, context) -> None:
    """A stream the server's stop ended is not over: a client told OK would take a
    watched reservation for ended, or stop watching for good (a client writer's find)."""
    if streams.closed.is_set() and context.is_active():
        context.abort(grpc.StatusCode.UNAVAILABLE,
                      "the server is stopping: watch again once it is back")


class FabricServicer(fabric_pb2_grpc.FabricServiceServicer):
    def __init__(self, service, streams: Streams, budget: ReadBudget | None = None):
        self.service = service
        self.streams = streams
        self.budget = budget
        # Their size is the fabric's, which its file's limits bound; what clients can
        # make long is the history, which ListReservations pages.
        self._list_cost = 1.0
        # Each answer as last built, with what it was built from: on a large fabric a
        # build takes milliseconds of the controller's one CPU, and a client within its
        # budget asking ten times at once made ReservePaths wait (an outside tester's p99
        # 150 ms with ListLinks); the state changes at most once a poll.
        self._fabric: tuple = (None, None)
        self._links: dict[int, tuple] = {}      # id(load) -> (load, its message)
        self._costs: dict[tuple[int, str], float] = {}

    def GetFabric(self, request, context):
        _spend(self.budget, self.service, context, self._list_cost, "GetFabric")
        built_from = (self.service.switch_status(), self.service.wiring_problems())
        if self._fabric[0] != built_from:
            self._fabric = (built_from, fpb.GetFabricResponse(
                fabric=convert.fabric(self.service.fabric, *built_from)))
        return self._fabric[1]

    def _loads(self, kind: int, site: str) -> list[fpb.LinkLoad]:
        # The tracker hands out the same load objects while nothing changed (a booking
        # changes a few directions' reserved figure): each is converted once.
        built, out = self._links, []
        now: dict[int, tuple] = {}
        for load in self.service.link_loads():
            if (kind and convert.LINK_KIND[load.kind] != kind) or \
                    (site and site not in (load.site_a, load.site_b)):
                continue
            entry = built.get(id(load))
            if entry is None or entry[0] is not load:
                entry = (load, convert.link_load(load))
            now[id(load)] = entry
            out.append(entry[1])
        if not kind and not site:
            self._links = now                    # keeps only what the last answer held
        return out

    def _check_filter(self, request, context) -> None:
        if request.kind and request.kind not in convert.LINK_KIND_NAME:
            kinds = ", ".join(f"{v} {n}" for v, n in sorted(convert.LINK_KIND_NAME.items()))
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"kind: unknown link kind {request.kind} (0: every kind; {kinds})")
        self._check_site(request.site, context)

    def _check_site(self, site: str, context) -> None:
        if site and site not in {s.name for s in self.service.fabric.sites}:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"site: fabric {self.service.fabric.name!r} has no site "
                          f"{site[:MAX_NAME_CHARS]!r}; its sites: "
                          + ", ".join(s.name for s in self.service.fabric.sites[:20])
                          + (" ..." if len(self.service.fabric.sites) > 20 else ""))

    def ListLinks(self, request, context):
        self._check_filter(request, context)
        _spend(self.budget, self.service, context, self._links_cost(request.kind, request.site),
               "ListLinks")
        return fpb.ListLinksResponse(link_loads=self._loads(request.kind, request.site))

    def _links_cost(self, kind: int, site: str) -> float:
        """1 + the link directions answered / 500, priced by size as a page of
        reservations is (a direction is about a seventh of a record's bytes): the bench's
        160-switch fabric answers 2 176 (128 kB) for 5.35, so ten at once are no longer
        a free burst (they were 1 each, and took ReservePath p99 to 150 ms)."""
        key = (kind, site)
        if key not in self._costs:
            self._costs[key] = 1.0 + 2 * sum(
                1 for l in self.service.fabric.links
                if (not kind or convert.LINK_KIND[l.kind] == kind)
                and (not site or site in (l.site_a, l.site_b))) / LINK_DIRECTIONS_PER_TOKEN
        return self._costs[key]

    def ListElephants(self, request, context):
        self._check_site(request.site, context)
        _spend(self.budget, self.service, context, self._list_cost, "ListElephants")
        policy, views = self.service.elephants()
        fabric, site = self.service.fabric, request.site
        return fpb.ListElephantsResponse(policy=policy, elephants=[
            convert.elephant(view, fabric) for view in views
            if not site or site in (fabric.hosts[view.src_host].site,
                                    fabric.hosts[view.dst_host].site)])

    def WatchLinkLoad(self, request, context):
        self._check_filter(request, context)
        interval = (_answer(context, convert.seconds, "interval", request.interval)
                    if request.HasField("interval") else DEFAULT_INTERVAL_S)
        if not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"interval must be between {MIN_INTERVAL_S:g} s and "
                          f"{MAX_INTERVAL_S:g} s, got {interval:g} s")
        wake = _open_stream(self.streams, self.service, context)
        cost = self._links_cost(request.kind, request.site)
        try:
            context.add_callback(wake.set)      # the client cancelled or went away
            while context.is_active() and not self.streams.closed.is_set():
                # Each answer is a ListLinks, paid as one (waiting on the stream's own
                # thread): four streams at 0.1 s were 40 unpaid answers a second.
                if not _paid(self.budget, context, wake, self.streams, cost):
                    break
                now = time.time()
                yield fpb.WatchLinkLoadResponse(
                    time=convert.timestamp(now),
                    link_loads=self._loads(request.kind, request.site))
                wake.wait(interval)
            _end_if_stopping(self.streams, context)
        finally:
            self.streams.done(wake)


def required_id(reservation_id: str) -> None:
    """A reservation id a call cannot do without: present, and bounded as every id."""
    if not reservation_id:
        raise AdmissionError(AdmissionError.INVALID, "reservation_id: required (the id "
                             "ReservePath answered, e.g. r-0123456789ab)")
    check_id("reservation_id", reservation_id)


class PathServicer(path_pb2_grpc.PathServiceServicer):
    def __init__(self, service, budget: ReadBudget | None = None,
                 streams: Streams | None = None):
        self.service = service
        self.budget = budget
        self.streams = streams or Streams(16)

    def WatchReservations(self, request, context):
        if request.reservation_id:
            _answer(context, check_id, "reservation_id", request.reservation_id)
            # A lookup as GetReservation's, paid as one: an ended one's record comes back
            # at once, and unpaid this was a GetReservation without a budget.
            _spend(self.budget, self.service, context, GET_COST, "WatchReservations")
            _answer(context, self.service.get, request.reservation_id)   # NOT_FOUND early
        else:
            # Every live reservation comes first, as a listing of them: paid as its pages
            # (a client reopening it in a loop had every live record for nothing).
            _spend(self.budget, self.service, context,
                   1 + self.service.live_count() / 100, "WatchReservations")
        wake = _open_stream(self.streams, self.service, context)
        try:
            context.add_callback(wake.set)
            with contextlib.ExitStack() as stack:
                # NOT_FOUND too if the history forgot it since the check above
                watch = _answer(context, stack.enter_context,
                                self.service.watch(request.reservation_id))
                first = True                    # the state now: paid at the opening
                while context.is_active() and not self.streams.closed.is_set():
                    items = watch.drain()
                    # A watch of every reservation pays for the changes it sends:
                    # under 500 bookings a second, four sent 4 000 messages a second
                    # and held the controller's CPU (an outside tester's p99 173 ms).
                    # One that waits falls behind; too far behind, it is ended.
                    if items and not first and not request.reservation_id and \
                            not _paid(self.budget, context, wake, self.streams,
                                      len(items) * STREAMED_COST):
                        break
                    first = first and not items
                    for res in items:
                        yield ppb.WatchReservationsResponse(reservation=convert.reservation(res))
                        if request.reservation_id and not res.state.live:
                            return          # its final state: nothing more will come
                    if watch.overflowed:
                        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                      "this client fell too far behind; watch again")
                    watch.wait(wake, timeout=1.0)
            _end_if_stopping(self.streams, context)
        finally:
            self.streams.done(wake)

    def ReservePath(self, request, context):
        req = _answer(context, convert.reservation_request, request)

        def wanted() -> bool:                # the caller still waits for the answer
            left = context.time_remaining()
            return context.is_active() and (left is None or left > 0)
        res = _answer(context, self.service.reserve, req, wanted)
        return ppb.ReservePathResponse(reservation=convert.reservation(res))

    def ReleasePath(self, request, context):
        _answer(context, self._release_id, request.reservation_id)
        res = _answer(context, self.service.release, request.reservation_id)
        return ppb.ReleasePathResponse(reservation=convert.reservation(res))

    def _release_id(self, reservation_id: str) -> None:
        """`required_id`, a refusal counted as a release's outcome as every other is."""
        try:
            required_id(reservation_id)
        except AdmissionError:
            self.service.observer.release_request("invalid")
            raise

    def GetReservation(self, request, context):
        _answer(context, required_id, request.reservation_id)
        # One record: a tenth of a listing call, so that clients may poll their own.
        _spend(self.budget, self.service, context, GET_COST, "GetReservation")
        res = _answer(context, self.service.get, request.reservation_id)
        return ppb.GetReservationResponse(reservation=convert.reservation(res))

    def ListReservations(self, request, context):
        if request.state and request.state not in convert.STATE_OF:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"state: unknown reservation state {request.state}")
        if request.page_size < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"page_size must be >= 0 (0: {DEFAULT_PAGE_SIZE}; at most "
                          f"{MAX_PAGE_SIZE}), got {request.page_size}")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        state = convert.STATE_OF.get(request.state)
        states = ((state,) if state is not None else tuple(State) if request.show_ended
                  else tuple(s for s in State if s.live))
        query = ",".join(s.value for s in states)
        after = None
        if request.page_token:
            after = decode_page_token(request.page_token, query)
            if after is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              "page_token: not one this server gave for this listing (the "
                              "state and show_ended must stay the same from page to page)")
        _spend(self.budget, self.service, context, 1 + size / 100, "ListReservations")
        page = _answer(context, self.service.page, states, after, size + 1)
        more = len(page) > size
        page = page[:size]
        last = page[-1] if page else None
        return ppb.ListReservationsResponse(
            reservations=[convert.reservation(r) for r in page],
            next_page_token=(encode_page_token((last.created_at, last.reservation_id), query)
                             if more and last else ""))
