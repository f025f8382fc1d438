"""ControllerService: the one door into the controller core for every thread.

The os-ken app (OpenFlow events, stats timer), the gRPC servicers and the metrics
collector all call the core through here. It adds what the pure core leaves out: a lock
(so concurrent requests are admitted one at a time and can never together overbook a
link), the clock, reservation ids, persistence, and sending what the core returns.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Protocol

from ..core import FabricController, Outbox
from ..fabric import Fabric
from ..te.load import LinkLoad
from ..store.sqlite import GroupCommit, ReservationStore
from ..te.reservations import (DEFAULT_RESERVABLE_FRACTION, AdmissionError, Reservation,
                               ReservationRequest, State)

log = logging.getLogger("dcilab.service")


class Observer(Protocol):
    """What the service reports as it works (metrics implement it)."""

    def reservation_request(self, result: str, seconds: float) -> None: ...
    def placement(self, policy: str) -> None: ...
    def path_compute(self, seconds: float) -> None: ...
    def openflow_sent(self, count: int) -> None: ...
    def openflow_error(self) -> None: ...


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
        if store is not None:
            restored = store.load_all()
            for res in restored:
                core.restore(res)
            live = sum(r.state.live for r in restored)
            if restored:
                log.info("restored %d reservations (%d live) from %s", len(restored), live,
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
        """Run one core event under the lock, persist what changed, send what it returns."""
        with self.lock:
            started = time.perf_counter()
            outbox = event(self.core)
            if outbox is not None:
                if outbox.placements:
                    self.observer.path_compute(time.perf_counter() - started)
                    for _ in range(outbox.placements):
                        self.observer.placement(self.core.policy)
                self._deliver(outbox)

    def _deliver(self, outbox: Outbox):
        """Send what the core returned; queue what changed for the store. Returns what to
        wait on (outside the lock) before telling a client it is durable."""
        pending = None
        if self._commits is not None and outbox.changed:
            pending = self._commits.submit(outbox.changed)
        sent = self._send(outbox)
        if sent:
            self.observer.openflow_sent(sent)
        return pending

    # -- reservations ------------------------------------------------------------------

    def reserve(self, request: ReservationRequest) -> Reservation:
        started = time.perf_counter()
        result = "invalid"
        try:
            with self.lock:
                rid = f"r-{uuid.uuid4().hex[:12]}"
                outbox = self.core.reserve(request, rid, self.clock())
                pending = self._deliver(outbox)
                if request.request_id:
                    res = self.core.book.reservations[self.core.book.by_request_id[
                        request.request_id]]
                else:
                    res = self.core.book.reservations[rid]
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
        with self.lock:
            outbox = self.core.end(reservation_id, State.RELEASED)
            pending = self._deliver(outbox)
            res = self.core.book.get(reservation_id)
        if pending is not None:
            pending.wait()
        return res

    def get(self, reservation_id: str) -> Reservation:
        with self.lock:
            return self.core.book.get(reservation_id)

    def list(self, state: State | None = None) -> list[Reservation]:
        with self.lock:
            return [r for r in self.core.book.reservations.values()
                    if state is None or r.state == state]

    def expire(self) -> None:
        """End every reservation whose duration is over (the app calls this each second)."""
        with self.lock:
            pending = self._deliver(self.core.expire(self.clock()))
        if pending is not None:
            pending.wait()

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
