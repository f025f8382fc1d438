"""ControllerService: the one door into the controller core for every thread.

The os-ken app (OpenFlow events, stats timer), the gRPC servicers and the metrics
collector all call the core through here. It adds what the pure core leaves out: a lock
(so concurrent requests are admitted one at a time and can never together overbook a
link), the clock, reservation ids, persistence, and sending what the core returns.

The core books live reservations only. An ended one is kept here until its final state
is committed, then forgotten: from there on the store answers for it (by id, by
request_id, in lists), so memory and the garbage collector's work follow what is
reserved now rather than the whole history. Without a store every ended one stays here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Callable, Protocol

from ..core import FabricController, Outbox
from ..fabric import Fabric
from ..te.load import LinkLoad
from ..store.sqlite import GroupCommit, ReservationStore
from ..te.reservations import (DEFAULT_RESERVABLE_FRACTION, AdmissionError, Reservation,
                               Protection, ReservationRequest, State, not_found)

log = logging.getLogger("dcilab.service")

WATCH_BACKLOG = 10_000        # changes a watcher may fall behind by before it is cut off


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
    def placement(self, policy: str) -> None: ...
    def path_compute(self, seconds: float) -> None: ...
    def openflow_sent(self, count: int) -> None: ...
    def openflow_error(self) -> None: ...
    def failure(self, kind: str, name: str) -> None: ...
    def restoration(self, seconds: float) -> None: ...


class _NoObserver:
    def __getattr__(self, _name):
        return lambda *args, **kwargs: None


class ControllerService:
    def __init__(self, core: FabricController, store=None, observer: Observer | None = None,
                 clock: Callable[[], float] = time.time):
        self.core = core
        self.store = store
        self.observer = observer or _NoObserver()
        self.clock = clock
        self.lock = threading.RLock()
        self._send: Callable[[Outbox], int] = lambda outbox: 0
        self._commits = GroupCommit(store) if store is not None else None
        self._ended: dict[str, Reservation] = {}         # not yet committed (or no store)
        self._ended_requests: dict[str, str] = {}        # request_id -> id, of those
        self._ended_counts: Counter[State] = Counter()   # the whole history
        self._watches: list[Watch] = []
        if store is not None:
            live = store.load_live()
            for res in live:
                core.restore(res)
            core.book.meters_from(store.max_meter_id() + 1)
            self._ended_counts.update(store.count_ended())
            if live or self._ended_counts:
                log.info("restored %d live reservations (%d ended on record) from %s",
                         len(live), sum(self._ended_counts.values()),
                         getattr(store, "path", "the store"))
        self.expire()

    @classmethod
    def standalone(cls, fabric: Fabric, state_path: Path | None = None, observer=None,
                   reservable_fraction: float = DEFAULT_RESERVABLE_FRACTION
                   ) -> "ControllerService":
        """A service with no switch connected (yet); reservations persist at `state_path`."""
        store = ReservationStore(state_path) if state_path is not None else None
        return cls(FabricController(fabric, reservable_fraction), store=store,
                   observer=observer)

    @property
    def fabric(self) -> Fabric:
        return self.core.fabric

    def attach(self, send: Callable[[Outbox], int]) -> None:
        """Give the service its way to the switches (the app's send; returns msgs sent)."""
        self._send = send

    def apply(self, event: Callable[[FabricController], Outbox | None]) -> None:
        """Run one core event under the lock, send what it returns, and persist what
        changed (a reservation gone ACTIVE) before returning."""
        pending = None
        with self.lock:
            started = time.perf_counter()
            outbox = event(self.core)
            if outbox is not None:
                if outbox.faults or (outbox.restored and outbox.changed):
                    self.observer.restoration(time.perf_counter() - started)
                if outbox.placements:
                    self.observer.path_compute(time.perf_counter() - started)
                    for _ in range(outbox.placements):
                        self.observer.placement(self.core.policy)
                pending = self._deliver(outbox)
        if pending is not None:
            pending.wait()

    def _deliver(self, outbox: Outbox):
        """Send what the core returned; queue what changed for the store. Returns what to
        wait on (outside the lock) before telling a client it is durable."""
        pending = None
        if self._commits is not None and outbox.changed:
            pending = self._commits.submit(outbox.changed)
        sent = self._send(outbox)
        if sent:
            self.observer.openflow_sent(sent)
        for kind, name in outbox.faults:
            self.observer.failure(kind, name)
        if outbox.changed:
            for watch in self._watches:
                watch.offer(outbox.changed)
        return pending

    @contextlib.contextmanager
    def watch(self, reservation_id: str = ""):
        """A Watch on one reservation (or all), for as long as the `with` lasts."""
        with self.lock:
            if reservation_id:
                current = [self.get(reservation_id)]
            else:
                current = sorted(self.core.book.reservations.values(),
                                 key=lambda r: (r.created_at, r.reservation_id))
            watch = Watch(reservation_id, current)
            self._watches.append(watch)
        try:
            yield watch
        finally:
            with self.lock:
                self._watches.remove(watch)

    # -- reservations ------------------------------------------------------------------

    def reserve(self, request: ReservationRequest) -> Reservation:
        started = time.perf_counter()
        result = "invalid"
        try:
            with self.lock:
                book = self.core.book
                retried = (request.request_id and request.request_id not in book.by_request_id
                           and self._ended_request(request.request_id))
                if retried:                  # the same request, already over: same answer
                    result = "admitted"
                    return retried
                rid = f"r-{uuid.uuid4().hex[:12]}"
                outbox = self.core.reserve(request, rid, self.clock())
                pending = self._deliver(outbox)
                res = book.reservations[book.by_request_id[request.request_id]
                                        if request.request_id else rid]
            if pending is not None:
                pending.wait()               # durable before the client hears of it
            result = "admitted"
            return res
        except AdmissionError as exc:
            result = {"resource_exhausted": "refused"}.get(exc.code, "invalid")
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.observer.reservation_request(result, elapsed)
            if result == "admitted":
                self.observer.path_compute(elapsed)

    def release(self, reservation_id: str) -> Reservation:
        """End a live reservation; one already over is returned as it ended."""
        with self.lock:
            if reservation_id not in self.core.book.reservations:
                return self.get(reservation_id)
            outbox = self.core.end(reservation_id, State.RELEASED)
            self._ending(outbox)
            pending = self._deliver(outbox)
        self._forget_when_durable(pending, outbox)
        return next(r for r in outbox.changed if r.reservation_id == reservation_id)

    def expire(self) -> None:
        """End every reservation whose duration is over (the app calls this each second)."""
        with self.lock:
            outbox = self.core.expire(self.clock())
            self._ending(outbox)
            pending = self._deliver(outbox)
        self._forget_when_durable(pending, outbox)

    def _ending(self, outbox: Outbox) -> None:
        """Keep the reservations `outbox` ends until their final state is committed."""
        for res in outbox.changed:
            if not res.state.live:
                self._ended[res.reservation_id] = res
                if res.request.request_id:
                    self._ended_requests[res.request.request_id] = res.reservation_id
                self._ended_counts[res.state] += 1

    def _forget_when_durable(self, pending, outbox: Outbox) -> None:
        if pending is None:
            return                           # no store: this is the only record
        pending.wait()
        with self.lock:
            for res in outbox.changed:
                if self._ended.pop(res.reservation_id, None) is not None:
                    self._ended_requests.pop(res.request.request_id, None)

    def _ended_request(self, request_id: str) -> Reservation | None:
        """The ended reservation admitted for `request_id`, if any (caller holds the lock)."""
        rid = self._ended_requests.get(request_id)
        if rid is not None:
            return self._ended[rid]
        return self.store.find_request(request_id) if self.store is not None else None

    def get(self, reservation_id: str) -> Reservation:
        with self.lock:
            res = (self.core.book.reservations.get(reservation_id)
                   or self._ended.get(reservation_id))
        if res is None and self.store is not None:
            res = self.store.get(reservation_id)   # ended, committed, then forgotten here
        if res is None:
            raise not_found(reservation_id)
        return res

    def list(self, state: State | None = None) -> list[Reservation]:
        """Reservations (of `state`), oldest first; ended ones come from the store."""
        with self.lock:
            live = [r for r in self.core.book.reservations.values()
                    if state is None or r.state == state]
            ended = {rid: r for rid, r in self._ended.items() if state is None or r.state == state}
        if self.store is not None and (state is None or not state.live):
            live_ids = {r.reservation_id for r in live}
            for res in self.store.ended(state):
                if res.reservation_id not in live_ids:
                    ended.setdefault(res.reservation_id, res)
        return sorted([*live, *ended.values()], key=lambda r: (r.created_at, r.reservation_id))

    def reservation_counts(self) -> dict[State, int]:
        """How many reservations are in each state, over the whole history."""
        with self.lock:
            counts = Counter(r.state for r in self.core.book.reservations.values())
            counts.update(self._ended_counts)
        return {state: counts.get(state, 0) for state in State}

    def protection_counts(self) -> dict[Protection, int]:
        """Live reservations by protection class."""
        with self.lock:
            return dict(Counter(r.request.protection
                                for r in self.core.book.reservations.values()))

    # -- state for the API and metrics --------------------------------------------------

    def link_loads(self) -> list[LinkLoad]:
        with self.lock:
            return self.core.link_loads()

    def switch_status(self) -> dict[str, bool]:
        with self.lock:
            return {s.name: s.connected for s in self.core.switches.values()}

    def elephant_count(self) -> int:
        with self.lock:
            return self.core.steering.elephant_count

    def close(self) -> None:
        if self._commits is not None:
            self._commits.close()
        if self.store is not None:
            self.store.close()
