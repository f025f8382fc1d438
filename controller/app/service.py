"""ControllerService: the one door into the controller core for every thread.

The os-ken app (OpenFlow events, stats timer), the gRPC servicers and the metrics
collector all call the core through here. It adds what the pure core leaves out: a lock
(so concurrent requests are admitted one at a time and can never together overbook a
link), the clock, reservation ids, persistence, and sending what the core returns.

The core books live reservations only. An ended one is forgotten once its final state is
committed: from there on the store answers for it (by id, by request_id, in lists), so
memory and the garbage collector's work follow what is reserved now rather than the whole
history. Without a store every ended one stays here.

Memory follows the disk. A change is booked in the core at once (so concurrent requests
can never together overbook a link), but nobody hears of it until it is durable: its
OpenFlow messages wait in an ordered queue (barrier numbers are counted in the order the
core made them), readers and idempotent retries see the reservation as last saved, and
metrics count it only then. If the commit fails, the change is undone in the core, the
messages are dropped (their barriers still go, so the numbering holds), and the caller
gets the StoreError with its cause (disk full, read-only, ...).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from ..api.defaults import DEFAULT_MAX_LIVE
from ..core import FabricController, Outbox
from ..core.controller import RESUMED
from ..core.steering import ElephantView
from ..fabric import Fabric
from ..te.load import LinkLoad
from ..store.sqlite import UNAVAILABLE, GroupCommit, ReservationStore, StoreError
from ..te.reservations import (DEFAULT_RESERVABLE_FRACTION, AdmissionError, Reservation,
                               Protection, ReservationRequest, State, lacks_standby,
                               not_found, reused_request_id, same_request)

log = logging.getLogger("dcilab.service")

WATCH_BACKLOG = 10_000        # changes a watcher may fall behind by before it is cut off
# How long a read of link load waits for the saves in flight (a commit takes a few ms)
# before it answers from the last state known durable.
SETTLE_WAIT_S = 0.1
# How long a refusal waits for the saves in flight it rests on.
REFUSAL_WAIT_S = 30.0
STORE_READERS = 4               # reads of the state file at once (each holds a gRPC worker)
STORE_READ_WAIT_S = 2.0         # ... and how long one waits for its turn


class Watch:
    """One WatchReservations client: the changes to the reservations it asked for, in the
    order the controller made them, starting with their state now."""

    def __init__(self, reservation_id: str, current: list[Reservation]):
        self.reservation_id = reservation_id
        self.overflowed = False
        self._items: list[Reservation] = list(current)
        self._lock = threading.Lock()
        self._event = threading.Event()
        if current:
            self._event.set()

    def offer(self, changed: list[Reservation]) -> None:
        wanted = [r for r in changed
                  if not self.reservation_id or r.reservation_id == self.reservation_id]
        if not wanted:
            return
        with self._lock:
            self._items += wanted
            if len(self._items) > WATCH_BACKLOG:
                self.overflowed, self._items = True, []
        self._event.set()

    def drain(self) -> list[Reservation]:
        with self._lock:
            items, self._items = self._items, []
            self._event.clear()
        return items

    def wait(self, wake: threading.Event, timeout: float) -> None:
        """Until there is something to send, `wake` is set, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not self._event.is_set() and not wake.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._event.wait(min(left, 0.1))


class Observer(Protocol):
    """What the service reports as it works (metrics implement it)."""

    def reservation_request(self, result: str, seconds: float) -> None: ...
    def request_refused(self, result: str) -> None: ...
    def release_request(self, result: str) -> None: ...
    def placement(self, policy: str) -> None: ...
    def path_compute(self, seconds: float) -> None: ...
    def openflow_sent(self, count: int) -> None: ...
    def openflow_error(self) -> None: ...
    def failure(self, kind: str, name: str) -> None: ...
    def restoration(self, seconds: float) -> None: ...


@dataclass
class _Change:
    """One core event's outbox on its way out: sent once its commit is settled."""

    outbox: Outbox
    pending: object | None = None                 # the commit (None: nothing to save)
    previous: dict[str, Reservation | None] = field(default_factory=dict)  # as last saved
    flushed: threading.Event = field(default_factory=threading.Event)   # sent or taken back
    created: float = field(default_factory=time.monotonic)

    @property
    def settled(self) -> bool:
        return self.pending is None or self.pending.done

    @property
    def failed(self) -> StoreError | None:
        return None if self.pending is None else self.pending.error


def _barriers_only(outbox: Outbox) -> Outbox:
    """The barriers of `outbox`: what must still go when its changes are taken back."""
    out = Outbox()
    for dpid, msgs in outbox.messages.items():
        out.add(dpid, [m for m in msgs if type(m).__name__ == "OFPBarrierRequest"])
    return out


class _NoObserver:
    def __getattr__(self, _name):
        return lambda *args, **kwargs: None


def _place_again(core: FabricController, unpathed: list[tuple[Reservation, str]],
                 problems: list[str], unfit: list[Reservation], amended: list[Reservation]
                 ) -> tuple[dict[str, str], dict[str, str]]:
    """Restored records whose path the fabric no longer has (a wavelength removed, a site
    grown), each with why, placed again as admission would (`book.readmit`), in
    restoration's order: the class, then the priority, then the oldest (an operator's NONE
    one took the room of a RESTORABLE of priority 9). An operator's every reservation
    across a site that had grown a leaf was refused, or dropped, though all had room.
    Those with no place join `problems` and `unfit`; those placed and those moved for them,
    `amended`. Returns id -> why, of those placed, and id -> for whom, of those moved."""
    unpathed.sort(key=lambda rp: (rp[0].request.protection.restore_rank,
                                  -rp[0].request.priority, rp[0].created_at))
    placed_again: dict[str, str] = {}
    moved_aside: dict[str, str] = {}
    for res, problem in unpathed:
        placed = core.book.readmit(res)
        if isinstance(placed, str):
            problem += f"; not placed again on this fabric: {placed}"
            problems.append(problem)
            unfit.append(res.with_state(State.RELEASED, f"dropped at start: {problem}"[:500]))
            continue
        again, moved = placed
        core.restore(again)
        amended += [again, *moved]
        placed_again[res.reservation_id] = problem.split(": ", 1)[-1]
        moved_aside.update((r.reservation_id, res.reservation_id) for r in moved
                           if r.reservation_id not in placed_again)
    return placed_again, moved_aside


def _placed_again_lines(book, placed_again: dict[str, str],
                        moved_aside: dict[str, str]) -> list[str]:
    """What the start says of `_place_again`, each where it ended after every placing."""
    def where(rid: str) -> str:
        return " > ".join(h.wavelength for h in book.reservations[rid].hops
                          if h.wavelength) or "within its site"
    return ([f"reservation {rid}: {why}; placed again on this fabric ({where(rid)}), "
             f"{book.reservations[rid].state.value}" for rid, why in placed_again.items()]
            + [f"reservation {rid} moved aside to {where(rid)} to place {whom} again"
               for rid, whom in moved_aside.items()])


class ControllerService:
    def __init__(self, core: FabricController, store=None, observer: Observer | None = None,
                 clock: Callable[[], float] = time.time, history_s: float | None = None,
                 drop_unfit: bool = False, max_live: int = DEFAULT_MAX_LIVE,
                 repath_unfit: bool = False):
        """`history_s`: keep ended reservations in the store this long (None: forever).
        A stored live reservation that no longer fits the fabric (edited since) stops the
        start, or with `drop_unfit` is ended RELEASED, saying why (--state-discard); with
        `repath_unfit`, one whose path the fabric no longer has is placed again first, as
        admission would (--state-repath).
        `max_live`: new reservations are refused while this many are live (those restored
        all stay, however many)."""
        self.core = core
        self.max_live = max_live
        self.history_s = history_s
        self._pruned_at = -1e18
        self.store = store
        self.observer = observer or _NoObserver()
        self.clock = clock
        self.lock = threading.RLock()
        self._send: Callable[[Outbox], int] = lambda outbox: 0
        self._commits = GroupCommit(store) if store is not None else None
        self._outgoing: deque[_Change] = deque()          # in the order the core made them
        self._unsaved: dict[str, _Change] = {}            # booked, creation not yet durable
        self._saved_as: dict[str, Reservation] = {}       # changed, not yet durable: as saved
        self._ended: dict[str, Reservation] = {}          # the history, when there is no store
        self._ended_requests: dict[str, str] = {}         # request_id -> id, of those
        self._ended_counts: Counter[State] = Counter()    # the whole history
        self._failing = ""            # the store's last error, said once until a commit works
        # seconds spent so far computing failures whose placements wait for the next tick:
        # one restoration, observed once they are placed
        self._restoring: float | None = None
        self._expiry_failing = ""
        self._watches: list[Watch] = []
        self._ends = 0                # reservations ended so far (a request_id's look-up)
        # Reads of the state file wait for its disk, each in a gRPC worker: at most this
        # many at once, the rest refused (a re-tester froze the disk, and 12 reservations
        # looking up their request_id took every worker: no call answered).
        self._reads = threading.BoundedSemaphore(STORE_READERS)
        self._reading_since: dict[int, float] = {}      # thread -> when its read began
        self._durable_reserved: dict = {}     # book.reserved when no save was in flight
        self._want_durable = False            # a reader found one in flight: copy when none
        # wavelength -> margin its transceivers report (the controller's gNMI reader, when
        # it has one); `link_loads` shows the plan's margin for the others
        self.reported_margins: Callable[[], dict[str, float]] = dict
        # OpenFlow events waiting for the app (its event queue, when there is one)
        self.openflow_backlog: Callable[[], int] = int
        if store is not None:
            live, lapsed, now = [], [], self.clock()
            latest = store.latest_created()
            if latest is not None:
                core.book.created_after(latest)
            stored = store.load_live()
            if len(stored) > 1000:          # a restore of many takes a while: say why
                log.info("restoring %d live reservations from %s", len(stored),
                         getattr(store, "path", "the store"))
            if len(stored) > max_live:
                log.warning("%d live reservations on record, more than --max-reservations "
                            "%d: all are kept, and new ones are refused until fewer are live",
                            len(stored), max_live)
            for res in stored:
                # Over while no controller ran: expired, not checked against a fabric that
                # may have changed since (it refused a start, though over).
                (lapsed if res.expires_at is not None and res.expires_at <= now
                 else live).append(res)
            problems, unfit, amended, unpathed = [], [], [], []
            # logged once the start is sure (a refused start runs and saves nothing);
            # oldest first, each beside those before it
            said: list[str] = []
            for res in live:
                # as this fabric makes its paths, if the file was edited since
                res, notes = core.book.as_on_this_fabric(saved := res)
                problem = core.book.restore_problem(res)
                if problem and repath_unfit and res.state.live and core.book.path_gone(res):
                    unpathed.append((res, problem))    # placed again below
                elif problem:
                    problems.append(problem)
                    unfit.append(saved.with_state(State.RELEASED,
                                                  f"dropped at start: {problem}"[:500]))
                else:
                    said += [f"reservation {res.reservation_id}: {note}" for note in notes]
                    if res != saved:
                        amended.append(res)
                    core.restore(res)
                    if lacks_standby(saved):
                        # A failure left it none (the book then takes a path without):
                        # restored, not refused, but not silently either.
                        said.append(f"reservation {res.reservation_id} is PROTECTED but was "
                                    f"saved without a standby path: it runs unprotected")
            # Asked for: paths this fabric no longer has are placed again, once every
            # record that fits is booked (their meters known). Not unasked: a record
            # edited behind the store's back is refused.
            placed_again, moved_aside = _place_again(core, unpathed, problems, unfit, amended)
            # An aid for a same-fabric file (on another fabric's, --state-discard drops all)
            migrating = bool(getattr(store, "previous_fabric", None))
            repathable = bool(problems) and not repath_unfit and any(
                core.book.path_gone(r) for r in unfit)
            if problems and drop_unfit:
                store.save_many(unfit)
                log.warning("dropped %d reservations that no longer fit fabric %r, as asked "
                            "(kept as RELEASED, with why)%s: %s", len(unfit), core.fabric.name,
                            " (--state-repath would have placed again those whose path it "
                            "no longer has, where there is room)" if repathable else "",
                            "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))
            elif problems:
                # On another fabric's file --state-discard drops every record, not the unfit.
                hints = (["--state-discard instead of --state-migrate drops every reservation "
                          "of the file"] if migrating
                         else ["--state-discard drops those that do not fit"])
                if repathable:
                    hints.append("--state-repath places again those whose path it no longer "
                                 "has")
                raise StoreError(
                    f"state file {getattr(store, 'path', '')}: {len(problems)} reservation(s) "
                    f"do not fit fabric {core.fabric.name!r}; refusing to start rather than "
                    f"drop them silently ({', '.join(hints)}): "
                    + "; ".join(problems[:5])
                    + (" ..." if len(problems) > 5 else ""))
            for line in said + _placed_again_lines(core.book, placed_again, moved_aside):
                log.warning("%s", line)
            if amended:
                store.save_many(amended)
                log.info("%d reservations changed to match the edited fabric file (their "
                         "paths, latency or standby)", len({r.reservation_id for r in amended}))
            getattr(store, "confirm_fabric", lambda: None)()
            if lapsed:
                store.save_many([r.with_state(State.EXPIRED) for r in lapsed])
                log.info("%d reservations expired while no controller ran", len(lapsed))
            self._ended_counts.update(store.count_ended())
            if getattr(store, "created", False):
                core.new_state_file = str(store.path)
                log.info("state file %s is new: no reservations to restore", store.path)
            if live or self._ended_counts:
                log.info("restored %d live reservations (%d ended on record) from %s",
                         len(live) - len(unfit), sum(self._ended_counts.values()),
                         getattr(store, "path", "the store"))
        self.expire()

    @classmethod
    def standalone(cls, fabric: Fabric, state_path: Path | None = None, observer=None,
                   reservable_fraction: float = DEFAULT_RESERVABLE_FRACTION,
                   repath_unfit: bool = False) -> "ControllerService":
        """A service with no switch connected (yet); reservations persist at `state_path`."""
        store = (ReservationStore(state_path, fabric=fabric.name)
                 if state_path is not None else None)
        try:
            return cls(FabricController(fabric, reservable_fraction), store=store,
                       observer=observer, repath_unfit=repath_unfit)
        except BaseException:
            if store is not None:
                store.close()
            raise

    @property
    def fabric(self) -> Fabric:
        return self.core.fabric

    def attach(self, send: Callable[[Outbox], int]) -> None:
        """Give the service its way to the switches (the app's send; returns msgs sent)."""
        self._send = send

    def apply(self, event: Callable[[FabricController], Outbox | None]) -> None:
        """Run one core event under the lock; send what it returns, and persist what
        changed (a reservation gone ACTIVE), before returning."""
        with self.lock:
            change = self._run(event)
        if change is not None:
            try:
                self._settle(change)
            except StoreError as exc:
                log.error("%s; the change was taken back", exc)

    def _run(self, event: Callable[[FabricController], Outbox | None]) -> _Change | None:
        """Run one core event and queue what it returns (caller holds the lock)."""
        started = time.perf_counter()
        with self.core.book.recording() as before:
            outbox = event(self.core)
        if outbox is None:
            return None
        if outbox.faults or (outbox.restored and self._restoring is not None):
            self._restoring = (self._restoring or 0.0) + time.perf_counter() - started
            if not self.core.placements_pending:
                self.observer.restoration(self._restoring)
                self._restoring = None
        if outbox.placements:     # placements are counted once durable
            self.observer.path_compute(time.perf_counter() - started)
        return self._deliver(outbox, self._previous(outbox, before))

    def _deliver(self, outbox: Outbox, previous: dict[str, Reservation | None] | None = None
                 ) -> _Change:
        """Queue what the core returned: its changes for the store, its messages for when
        they are durable (caller holds the lock). `previous`: each changed reservation as
        last saved (None: a new one)."""
        change = _Change(outbox, previous=previous or {})
        if any(not r.state.live for r in outbox.changed):
            self._ends += 1          # the book forgot them: a request_id looked up is looked again
        if self._commits is not None and outbox.changed:
            change.pending = self._commits.submit(outbox.changed)
            for res in outbox.changed:
                if previous.get(res.reservation_id) is None:
                    self._unsaved[res.reservation_id] = change
                else:
                    self._saved_as.setdefault(res.reservation_id, previous[res.reservation_id])
        self._outgoing.append(change)
        self._flush()
        return change

    def _previous(self, outbox: Outbox, before: dict[str, Reservation | None]
                  ) -> dict[str, Reservation | None]:
        """Each changed reservation as last saved (caller holds the lock): as a change
        still being saved found it, else as the book held it before this event (its path,
        standby and state: a move is taken back whole); None for one never saved."""
        return {r.reservation_id: None if r.reservation_id in self._unsaved
                else self._saved_as.get(r.reservation_id, before.get(r.reservation_id))
                for r in outbox.changed}

    def _settle(self, change: _Change) -> None:
        """Wait for `change` to be durable, then send what is due; raise its StoreError
        (after it was taken back) if the commit failed."""
        if change.pending is not None:
            try:
                change.pending.wait()
            except StoreError:
                pass
        with self.lock:
            self._flush()
        if change.failed is not None:
            raise change.failed

    def _flush(self) -> None:
        """Send, in order, every queued outbox whose commit is settled; take back the
        changes of those that failed (caller holds the lock)."""
        while self._outgoing and self._outgoing[0].settled:
            run = []
            while self._outgoing and self._outgoing[0].settled:
                run.append(self._outgoing.popleft())
            undo = Outbox()
            for i in reversed(range(len(run))):     # newest first: undo in reverse
                change = run[i]
                if change.failed is not None:
                    for res in reversed(change.outbox.changed):
                        rid = res.reservation_id
                        if any(rid in c.previous for c in run[i + 1:]) or any(
                                rid in c.previous for c in self._outgoing):
                            # A later change carries it (moved again): that one's outcome
                            # is its own, and undoes it to the saved state if it fails.
                            continue
                        back = self.core.undo(res, change.previous.get(rid))
                        for dpid, msgs in back.messages.items():
                            undo.add(dpid, msgs)
                    self.core.lost(change.outbox)
                    say = log.error if str(change.failed) != self._failing else log.debug
                    say("%s; taking back %d change(s): %s", change.failed,
                        len(change.outbox.changed),
                        ", ".join(r.reservation_id for r in change.outbox.changed[:5]))
                    self._failing = str(change.failed)
            for change in run:
                ok = change.failed is None
                for res in change.outbox.changed:
                    rid = res.reservation_id
                    # saved now (even if a later change, moving it again, took it over)
                    if self._unsaved.get(rid) is change or (ok and rid in self._unsaved):
                        del self._unsaved[rid]
                    if change.pending is None:
                        continue
                    later = [c for c in self._outgoing if rid in c.previous]
                    if not later:
                        self._saved_as.pop(rid, None)
                    elif ok:                        # now the saved state the later ones undo to
                        self._saved_as[rid] = res
                        for c in later:
                            c.previous[rid] = res
                if ok:
                    if change.pending is not None and self._failing:
                        log.info("the state file takes changes again")
                        self._failing = ""
                    self._durable(change.outbox)
                    self._transmit(change.outbox)
                else:
                    self._transmit(_barriers_only(change.outbox))
                change.flushed.set()
            if any(c.failed is not None for c in run):
                back = self.core.resend()     # routing, programs, pins it had counted sent
                for dpid, msgs in back.messages.items():
                    undo.add(dpid, msgs)
            if undo.messages:                       # after everything made before it
                self._outgoing.append(_Change(undo))
        if self._want_durable and not self._in_flight():
            self._durable_reserved = dict(self.core.book.reserved)
            self._want_durable = False

    def _transmit(self, outbox: Outbox) -> None:
        if outbox.messages:
            sent = self._send(outbox)
            if sent:
                self.observer.openflow_sent(sent)

    def _durable(self, outbox: Outbox) -> None:
        """What follows a durable change: failures and elephants placed are counted,
        watchers hear of every change, and an ended reservation is counted, and forgotten
        (the store answers for it) unless there is no store."""
        for kind, name in outbox.faults:
            if kind != RESUMED:                   # no failure ended
                self.observer.failure(kind, name)
        for _ in range(outbox.placements):
            self.observer.placement(self.core.policy)
        if outbox.changed:
            for watch in self._watches:
                watch.offer(outbox.changed)
        for res in outbox.changed:
            if not res.state.live:
                log.info("reservation %s %s", res.reservation_id, res.state.value.lower())
                self._ended_counts[res.state] += 1
                if self.store is None:
                    self._ended[res.reservation_id] = res
                    if res.request.request_id:
                        self._ended_requests[res.request.request_id] = res.reservation_id

    @contextlib.contextmanager
    def watch(self, reservation_id: str = ""):
        """A Watch on one reservation (or all), for as long as the `with` lasts."""
        # An ended one's record is read from the state file outside the lock (a slow disk
        # must not hold every call); it changes no more. A live one is taken again under
        # the lock, as the watch starts: no change between the two is missed.
        while True:
            found = self.get(reservation_id) if reservation_id else None
            with self.lock:
                if reservation_id:
                    now = self._remembered(reservation_id)
                    if now is None and found.state.live:
                        continue            # ended since: read its record again, unlocked
                    current = [now or found]
                else:
                    # as last saved, as GetReservation and the stream's changes show them
                    current = sorted((self._saved_as.get(rid, r)
                                      for rid, r in self.core.book.reservations.items()
                                      if rid not in self._unsaved),
                                     key=lambda r: (r.created_at, r.reservation_id))
                watch = Watch(reservation_id, current)
                self._watches.append(watch)
                break
        try:
            yield watch
        finally:
            with self.lock:
                self._watches.remove(watch)

    # -- reservations ------------------------------------------------------------------

    def reserve(self, request: ReservationRequest,
                wanted: Callable[[], bool] | None = None) -> Reservation:
        """Admit `request`, durable before it returns. `wanted`: whether the caller still
        waits (its deadline not passed), asked under the lock just before a new booking;
        no: nothing is booked (a client that gave up would leave room held that it never
        heard of). Past that point a booking stands: a client whose deadline passes while
        it is saved finds it by retrying with the same request_id."""
        started = time.perf_counter()
        result = "invalid"
        computed: float | None = None        # how long admission took (an idempotent retry: none)
        rested = False                       # a refusal waited for the saves it rested on
        looked_up = None                     # (ends counted then, its ended reservation)
        placed: list[_Change] = []           # what a failure displaced, placed first
        try:
            while True:
                book = self.core.book
                if request.request_id and request.request_id not in book.by_request_id \
                        and (looked_up is None or looked_up[0] != self._ends):
                    # Not live: perhaps over. Looked up in the state file before the lock
                    # is taken: a read waits for the disk (a hung one, for good), and
                    # under the lock every call, event and scrape would wait with it.
                    ends = self._ends
                    looked_up = (ends, self._ended_request(request.request_id))
                with self.lock:
                    book.validate(request)
                    first = book.by_request_id.get(request.request_id) if request.request_id \
                        else None
                    waiting = self._unsaved.get(first) if first is not None else None
                    if waiting is None:
                        if first is None and request.request_id:
                            if looked_up is None or looked_up[0] != self._ends:
                                continue      # it ended since it was looked for: again
                            retried = looked_up[1]
                            if retried is not None:   # the same request, already over
                                if not same_request(retried.request, request):
                                    raise reused_request_id(request, retried)
                                result = "retried"
                                return retried
                        if first is None and len(book.reservations) >= self.max_live:
                            # a request no retry gets says so first: refused as "at the
                            # limit", a client retried it for good (a hostile tester's);
                            # but "ask once links are back" would send it the wrong way
                            try:
                                book.check_ever(request)
                            except AdmissionError as exc:
                                if exc.code == AdmissionError.PRECONDITION:
                                    raise
                            raise AdmissionError(
                                AdmissionError.EXHAUSTED,
                                f"this controller holds {len(book.reservations)} live "
                                f"reservations, its limit (--max-reservations "
                                f"{self.max_live}): release some first")
                        if first is None and wanted is not None and not wanted():
                            raise AdmissionError(AdmissionError.ABANDONED,
                                                 "the call's deadline passed (or it was "
                                                 "cancelled) before it was booked: nothing "
                                                 "was booked")
                        if self.core.placements_pending:
                            # Placed now, not at the next tick: a request in between
                            # would take their room for good, whatever their class and
                            # priority (a reviewer's). Saved ahead of this request.
                            done = self._run(lambda core: core.place_displaced())
                            if done is not None:
                                placed.append(done)
                        rid = f"r-{secrets.token_hex(6)}"     # 48 random bits, as uuid4 gave
                        try:
                            computing = time.perf_counter()
                            with book.recording() as before:
                                outbox = self.core.reserve(request, rid, self.clock())
                            computed = time.perf_counter() - computing
                        except AdmissionError as exc:
                            behind = self._in_flight() if exc.code == AdmissionError.EXHAUSTED \
                                and not rested else []
                            if not behind:
                                raise
                            refusal = exc
                        else:
                            res = book.reservations[first or rid]
                            res = self._saved_as.get(res.reservation_id, res)
                            change = self._deliver(
                                outbox, self._previous(outbox, before)) \
                                if outbox.changed else None
                            break
                if waiting is None:
                    # Refused for want of room while other changes were being saved: the
                    # refusal stands once they are durable; one taken back may have left
                    # room, so then it is asked again (once).
                    rested = True
                    self._settle_all(placed)
                    for c in behind:
                        c.flushed.wait(REFUSAL_WAIT_S)
                    if all(c.failed is None for c in behind):
                        raise refusal
                    continue
                # The first attempt of this request_id is still being saved (its owner
                # waits for the commit): its outcome decides this one's.
                waiting.flushed.wait(30)
            self._settle_all(placed)
            if change is not None:
                self._settle(change)             # durable before the client hears of it
            # A request_id's retry answers the reservation its first attempt made: counted
            # apart, or retries would show as admissions (a client writer's find).
            result = "retried" if first is not None else "admitted"
            return res
        except AdmissionError as exc:
            # refused: no room now (a retry may fit); precondition: it can never fit as
            # asked (beyond the widest path, no disjoint standby, an unreachable bound);
            # conflict: a request_id reused with other parameters.
            result = {AdmissionError.EXHAUSTED: "refused",
                      AdmissionError.PRECONDITION: "precondition",
                      AdmissionError.ALREADY_EXISTS: "conflict",
                      AdmissionError.ABANDONED: "abandoned"}.get(exc.code, "invalid")
            raise
        except StoreError as exc:
            # A save, or a read of a request_id's earlier outcome, failed: the state file's
            # fault, never the client's (an ops tester's: counted as "invalid").
            result = exc.code
            raise
        finally:
            self._settle_all(placed)             # a refusal's, an error's: saved all the same
            self.observer.reservation_request(result, time.perf_counter() - started)
            if result == "admitted" and computed is not None:
                self.observer.path_compute(computed)    # the path, not the fsync or waits

    def _settle_all(self, changes: list[_Change]) -> None:
        """Settle (once each) changes a call made beside its own. Every change saved must
        be waited for by someone: a save no one waits for, named to lead the next commit,
        stalled every save behind it (a soak tester's wedge: the controller stopped)."""
        while changes:
            change = changes.pop(0)
            try:
                self._settle(change)
            except StoreError as exc:
                log.error("%s; what a failure displaced is placed again at the next tick",
                          exc)

    def release(self, reservation_id: str) -> Reservation:
        """End a live reservation; one already over is returned as it ended. A release
        retried while the first is still being saved answers with that one's outcome
        (the record as it stood before would say it is still live)."""
        result = "internal"          # an exception no case below names
        try:
            res, ended_here = self._release(reservation_id)
            result = "released" if ended_here else "retried"
            return res
        except AdmissionError as exc:
            if exc.code == AdmissionError.NOT_FOUND:
                result = "not_found"
            raise
        except StoreError as exc:
            result = exc.code
            raise
        finally:
            self.observer.release_request(result)

    def _release(self, reservation_id: str) -> tuple[Reservation, bool]:
        """The reservation as it ended, and whether this call ended it."""
        change = None
        for attempt in range(2):
            with self.lock:
                book = self.core.book
                if reservation_id in book.reservations and reservation_id not in self._unsaved:
                    with book.recording() as before:
                        outbox = self.core.place_degraded(
                            self.core.end(reservation_id, State.RELEASED))
                    change = self._deliver(outbox, self._previous(outbox, before))
                    break
                ending = next((c for c in self._outgoing if any(
                    r.reservation_id == reservation_id and not r.state.live
                    for r in c.outbox.changed)), None)
                if ending is None or attempt:
                    break
            ending.flushed.wait(REFUSAL_WAIT_S)     # taken back, it is live: ended here
        if change is None:
            # Over, or never booked: as on record, read outside the lock (the state
            # file's answer waits for the disk).
            return self.get(reservation_id), False
        self._settle(change)
        return next(r for r in outbox.changed if r.reservation_id == reservation_id), True

    def expire(self) -> None:
        """End every reservation whose duration is over (the app calls this each second)."""
        self._prune()
        self._probe()
        with self.lock:
            book, now = self.core.book, self.clock()
            due = book.due(now)
            if not due:
                return
            with book.recording() as before:
                outbox = self.core.expire(now)
            change = self._deliver(outbox, self._previous(outbox, before))
        try:
            self._settle(change)
        except StoreError as exc:
            # Retried every second: said once per cause, not every second of a full disk.
            if str(exc) != self._expiry_failing:
                log.error("could not record expired reservations (they keep their bandwidth "
                          "until it can; retried every second): %s", exc)
            self._expiry_failing = str(exc)
        else:
            if self._expiry_failing:
                log.info("expired reservations recorded again")
            self._expiry_failing = ""

    def _probe(self) -> None:
        """While the last commit failed and nothing is waiting for one, try a write: a
        refused booking is not retried, and the file mended would show failing (and page)
        until the next change."""
        with self.lock:
            if not self._failing or self._outgoing or self.store is None:
                return
        try:
            self.store.probe()
        except StoreError:
            return
        with self.lock:
            if self._failing and not self._outgoing:
                log.info("the state file takes changes again")
                self._failing = ""

    def _ended_request(self, request_id: str) -> Reservation | None:
        """The ended reservation admitted for `request_id`, if any (read from the store:
        never under the lock)."""
        rid = self._ended_requests.get(request_id)
        if rid is not None:
            return self._ended[rid]
        if self.store is None:
            return None
        with self._store_read():
            return self.store.find_request(request_id)

    @contextlib.contextmanager
    def _store_read(self):
        """One read of the state file, among at most STORE_READERS at once: past that,
        refused (UNAVAILABLE) after STORE_READ_WAIT_S rather than hold a worker too."""
        if not self._reads.acquire(timeout=STORE_READ_WAIT_S):
            raise StoreError(f"the state file {getattr(self.store, 'path', '')} is not "
                             f"answering reads ({STORE_READERS} wait for it: a hung disk?); "
                             f"try again later", UNAVAILABLE)
        me = threading.get_ident()
        self._reading_since[me] = time.monotonic()
        try:
            yield
        finally:
            self._reading_since.pop(me, None)
            self._reads.release()

    def _visible(self, res: Reservation | None) -> Reservation | None:
        """`res` as its durable record says (caller holds the lock)."""
        if res is None or res.reservation_id in self._unsaved:
            return None
        return self._saved_as.get(res.reservation_id, res)

    def get(self, reservation_id: str) -> Reservation:
        """The reservation as last saved; NOT_FOUND (counted in metrics) if none."""
        with self.lock:
            res = self._remembered(reservation_id)
        if res is None and self.store is not None:
            with self._store_read():                # ended, committed, then forgotten here
                res = self.store.get(reservation_id)
        if res is None:
            self.observer.request_refused("not_found")
            raise not_found(reservation_id)
        return res

    def _remembered(self, reservation_id: str) -> Reservation | None:
        """The reservation as last saved, where memory has it (caller holds the lock):
        live ones, and ended ones where there is no state file."""
        if reservation_id in self._unsaved:
            return None
        return (self._saved_as.get(reservation_id)
                or self.core.book.reservations.get(reservation_id)
                or self._ended.get(reservation_id))

    def _live(self, state: State | None = None) -> list[Reservation]:
        """Live reservations as saved, of `state` (caller holds the lock)."""
        out = []
        for res in self.core.book.reservations.values():
            res = self._visible(res)
            if res is not None and (state is None or res.state == state):
                out.append(res)
        for rid, res in self._saved_as.items():       # being ended: still live on disk
            if rid not in self.core.book.reservations and rid not in self._unsaved \
                    and res.state.live \
                    and (state is None or res.state == state):
                out.append(res)
        return out

    def list(self, state: State | None = None) -> list[Reservation]:
        """Reservations (of `state`), oldest first, the whole history (unbounded: for
        tests and tools; the API pages with `page`)."""
        with self.lock:
            live = self._live(state)
            ended = {rid: r for rid, r in self._ended.items() if state is None or r.state == state}
        if self.store is not None and (state is None or not state.live):
            live_ids = {r.reservation_id for r in live}
            with self._store_read():
                history = self.store.ended(state)
            for res in history:
                if res.reservation_id not in live_ids:
                    ended.setdefault(res.reservation_id, res)
        return sorted([*live, *ended.values()], key=_list_key)

    def page(self, states: tuple[State, ...], after: tuple[float, str] | None,
             limit: int) -> list[Reservation]:
        """Up to `limit` reservations in `states`, in list order (created_at, id), after
        the list key `after`: one page of ListReservations."""
        with self.lock:
            found = {r.reservation_id: r for r in self._live() if r.state in states}
            found.update((rid, r) for rid, r in self._ended.items() if r.state in states)
        ended_states = tuple(s for s in states if not s.live)
        if self.store is not None and ended_states:
            with self._store_read():
                rows = self.store.page(ended_states, after, limit)
            for res in rows:
                found[res.reservation_id] = res    # the store's is the newer record
        picked = [r for r in found.values() if after is None or _list_key(r) > after]
        picked.sort(key=_list_key)
        return picked[:limit]

    def _prune(self) -> None:
        """Forget the history older than `history_s`: at most once a minute, or as often
        as called when that is shorter (`--history-days 0` keeps none, not a minute's)."""
        now = self.clock()
        if (self.store is None or self.history_s is None
                or now - self._pruned_at < min(60.0, self.history_s)):
            return
        self._pruned_at = now
        try:
            gone = self.store.prune(now - self.history_s)
        except StoreError as exc:
            log.error("could not prune the history: %s", exc)
            return
        if gone:
            with self.lock:                          # the counts are of the history kept
                self._ended_counts.subtract(gone)
                self._ended_counts = +self._ended_counts
            log.info("forgot %d reservations that ended over %g days ago",
                     sum(gone.values()), self.history_s / 86400)

    def live_count(self) -> int:
        """Reservations live now (booked, saves in flight included)."""
        with self.lock:
            return len(self.core.book.reservations)

    def reservation_counts(self) -> dict[State, int]:
        """How many reservations are in each state, over the whole history."""
        with self.lock:
            counts = Counter(r.state for r in self._live())
            counts.update(self._ended_counts)
        return {state: counts.get(state, 0) for state in State}

    def protection_counts(self) -> dict[Protection, int]:
        """Live reservations by protection class, as saved."""
        with self.lock:
            return dict(Counter(r.request.protection for r in self._live()))

    def unprotected_count(self) -> int:
        """PROTECTED reservations holding bandwidth without a standby, as saved."""
        with self.lock:
            return sum(1 for r in self._live() if lacks_standby(r))

    # -- state for the API and metrics --------------------------------------------------

    def link_loads(self, kinds: frozenset[str] | None = None) -> list[LinkLoad]:
        """Both directions of every link (of `kinds`: host, fabric, dci), in file order,
        with the bandwidth reserved as the state file has it."""
        # The book holds changes still being saved (so that no two admissions overbook):
        # the reserved bandwidth is copied when none is in flight, waiting a little for
        # the newest that was; else the last copy stands (a save blocked for seconds must
        # not show bandwidth it may never hold). One wait, not one per newer save: under
        # a stream of bookings there always is one, and readers waiting out 0.1 s each
        # held most of the server's threads while ReservePaths queued (an outside
        # tester's ten ListLinks at once: p99 150 ms). Only the copy is made under the
        # lock: the snapshot of every link takes milliseconds, which a reservation must
        # not wait behind. The tracker it reads is only ever updated in place.
        for last_try in (False, True):
            with self.lock:
                newest = self._in_flight()[-1:]
                # with the links held down or drained (a re-tester's `train` took them
                # for capacity, ListLinks having said nothing: one builder for both now)
                state = self.core.link_state()
                if not newest:
                    self._durable_reserved = dict(self.core.book.reserved)
                    break
            if last_try or not newest[0].flushed.wait(SETTLE_WAIT_S):
                # Copied at the next moment none is in flight (`_flush`), for the next
                # reader: the last copy may be from before a long stream of bookings.
                self._want_durable = True
                break
        return self.core.link_loads(self._durable_reserved, kinds, self.reported_margins(),
                                    state)

    def _in_flight(self) -> list[_Change]:
        """Changes whose save has not settled, oldest first (caller holds the lock)."""
        return [c for c in self._outgoing if c.pending is not None and not c.flushed.is_set()]

    def state_file_busy(self) -> bool:
        """Whether the disk has a commit or a read of the state file now."""
        return bool(self._reading_since) or (self._commits is not None
                                             and self._commits.running_since is not None)

    def state_file_failing(self) -> bool:
        """Whether the last commit of the state file failed (none has succeeded since)."""
        return bool(self._failing)

    def state_file_wait(self) -> float:
        """Seconds the oldest change still queued has waited for its commit, or for one
        ahead of it, or the oldest read of the file has waited (0: none waits). A change's
        switch messages, and all behind them, wait too."""
        with self.lock:
            oldest = [self._outgoing[0].created] if self._outgoing else []
        oldest += list(self._reading_since.values())
        return max(0.0, time.monotonic() - min(oldest)) if oldest else 0.0

    def switch_status(self) -> dict[str, bool]:
        with self.lock:
            return {s.name: s.connected for s in self.core.switches.values()}

    def elephant_count(self) -> int:
        with self.lock:
            return self.core.steering.elephant_count

    def elephants(self) -> tuple[str, list[ElephantView]]:
        """The steering policy, and every elephant with where it is pinned."""
        with self.lock:
            return self.core.policy, self.core.elephants()

    def wavelength_modes(self) -> dict[str, tuple[str | None, float]]:
        """Every wavelength's link name -> (mode, rate Gb/s) it runs now, as the controller
        knows it (its plan's until rate adaptation or its transceivers say otherwise)."""
        with self.lock:
            engine = self.core.engine
            return {link.name: (engine.mode(link), engine.rate_gbps(link))
                    for link in self.fabric.wavelengths()}

    def wiring_problems(self) -> dict[str, list[str]]:
        with self.lock:
            return self.core.wiring_problems()

    def held_down_count(self) -> int:
        with self.lock:
            return len(self.core.held_down())

    def close(self) -> None:
        if self._commits is not None:
            self._commits.close()
        if self.store is not None:
            self.store.close()


def _list_key(res: Reservation) -> tuple[float, str]:
    return (res.created_at, res.reservation_id)
