"""ControllerService: the locked door into the core, with a fake clock, observer and store.

The fabric has a single 400ZR wavelength between its two sites: 400 x 0.9 = 360 Gb/s
reservable, i.e. exactly ten 36 Gb/s reservations each way. Host links are 4000 Gb/s so
only the wavelength limits.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from dcilab.app.service import ControllerService, _list_key
from dcilab.core.errors import StoreError
from dcilab.core.controller import FabricController
from dcilab.fabric import parse_fabric
from dcilab.store.sqlite import ReservationStore
from dcilab.te.load import Direction
from dcilab.te.reservations import AdmissionError, ReservationRequest, State

FABRIC = """
name: one-wave
scale: 1.0e-4
sites:
  - {name: dca, spines: 1, leaves: 1, hosts_per_leaf: 12, gateways: 1, fabric_gbps: 4000}
  - {name: dcb, spines: 1, leaves: 1, hosts_per_leaf: 12, gateways: 1, fabric_gbps: 4000}
dci_links:
  - {name: ab, a: dca, b: dcb, fiber_km: 80, module: 400ZR, wavelengths: 1}
"""
WAVE_AB = Direction("ab.w1", "dca-gw1", "dcb-gw1")


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Observer:
    """Records what the service reports (list.append is atomic under the GIL)."""

    def __init__(self):
        self.events: list[tuple] = []

    def reservation_request(self, result, seconds):
        assert seconds >= 0
        self.events.append(("request", result))

    def request_refused(self, result):
        self.events.append(("request", result))

    def release_request(self, result):
        self.events.append(("release", result))

    def placement(self, policy):
        self.events.append(("placement", policy))

    def path_compute(self, seconds):
        self.events.append(("path_compute",))

    def openflow_sent(self, count):
        self.events.append(("sent", count))

    def openflow_error(self):
        self.events.append(("error",))

    def results(self) -> Counter:
        return Counter(e[1] for e in self.events if e[0] == "request")


class Store:
    def __init__(self, stored=()):
        self.stored = list(stored)
        self.saved = []

    def _latest(self):
        return {r.reservation_id: r for r in [*self.stored, *self.saved]}

    def load_live(self):
        return [r for r in self.stored if r.state.live]

    def get(self, reservation_id):
        return self._latest().get(reservation_id)

    def find_request(self, request_id):
        return next((r for r in self._latest().values() if r.request.request_id == request_id),
                    None)

    def ended(self, state=None):
        return [r for r in self._latest().values()
                if not r.state.live and (state is None or r.state == state)]

    def count_ended(self):
        return Counter(r.state for r in self.ended())

    def latest_created(self):
        return max((r.created_at for r in self._latest().values()), default=None)

    def save(self, res):
        self.saved.append(res)

    def save_many(self, reservations):
        self.saved.extend(reservations)

    def close(self):
        pass


@pytest.fixture
def fabric():
    return parse_fabric(FABRIC)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def observer():
    return Observer()


@pytest.fixture
def service(fabric, clock, observer):
    return ControllerService(FabricController(fabric), observer=observer, clock=clock)


def req(i: int, gbps: float = 36.0, **kw) -> ReservationRequest:
    n = i % 12 + 1
    return ReservationRequest(f"dca-h{n}", f"dcb-h{n}", gbps, **kw)


def test_64_concurrent_requests_admit_exactly_ten(service, observer):
    threads_n = 64
    start = threading.Barrier(threads_n)
    admitted, refused, other = [], [], []
    lock = threading.Lock()

    def worker(i):
        start.wait()
        try:
            res = service.reserve(req(i))
        except AdmissionError as exc:
            with lock:
                (refused if exc.code == AdmissionError.EXHAUSTED else other).append(exc)
        except Exception as exc:          # anything else is a failure of the service
            with lock:
                other.append(exc)
        else:
            with lock:
                admitted.append(res)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert other == []
    assert len(admitted) == 10
    assert len(refused) == 54
    assert all("ab.w1" in e.message for e in refused)
    assert len({r.reservation_id for r in admitted}) == 10
    book = service.core.book
    assert book.reserved[WAVE_AB] == pytest.approx(360e9)
    assert book.reserved[WAVE_AB] <= book.capacity_bps(WAVE_AB)
    assert len(service.list()) == 10
    assert observer.results() == Counter({"admitted": 10, "refused": 54})


def test_release_then_reserve(service, clock):
    held = [service.reserve(req(i)) for i in range(10)]
    with pytest.raises(AdmissionError) as info:
        service.reserve(req(10))
    assert info.value.code == AdmissionError.EXHAUSTED
    released = service.release(held[3].reservation_id)
    assert released.state is State.RELEASED
    assert service.get(held[3].reservation_id).state is State.RELEASED
    again = service.reserve(req(10))
    assert again.state is State.PENDING
    with pytest.raises(AdmissionError):
        service.reserve(req(11))
    assert {r.reservation_id for r in service.list(State.RELEASED)} == {held[3].reservation_id}
    assert len(service.list(State.PENDING)) == 10
    assert len(service.list()) == 11


def test_expire_with_the_clock_advanced(service, clock):
    timed = service.reserve(req(0, 360, duration_s=60))
    assert timed.created_at == 1000.0 and timed.expires_at == 1060.0
    with pytest.raises(AdmissionError):
        service.reserve(req(1, 1))
    clock.now = 1059.9
    service.expire()
    assert service.get(timed.reservation_id).state is State.PENDING
    clock.now = 1060.0
    service.expire()
    assert service.get(timed.reservation_id).state is State.EXPIRED
    assert [r.reservation_id for r in service.list(State.EXPIRED)] == [timed.reservation_id]
    assert service.reserve(req(1, 360)).state is State.PENDING


def test_idempotent_request_id(service, observer):
    """A retry answers the first reservation and counts as a retry, not an admission (a
    dashboard would overstate admissions); a reuse with other parameters is a conflict."""
    first = service.reserve(req(0, request_id="job-7"))
    second = service.reserve(req(0, request_id="job-7"))
    assert second.reservation_id == first.reservation_id
    assert service.core.book.reserved[WAVE_AB] == pytest.approx(36e9)
    with pytest.raises(AdmissionError) as info:
        service.reserve(req(0, 37, request_id="job-7"))
    assert info.value.code == AdmissionError.ALREADY_EXISTS
    service.release(first.reservation_id)
    assert service.reserve(req(0, request_id="job-7")).state is State.RELEASED
    assert observer.results() == Counter({"admitted": 1, "retried": 2, "conflict": 1})


def test_invalid_and_not_found_are_reported(service, observer):
    with pytest.raises(AdmissionError) as info:
        service.reserve(ReservationRequest("dca-h1", "dca-h1", 1))
    assert info.value.code == AdmissionError.INVALID
    for call in (service.release, service.get):
        with pytest.raises(AdmissionError) as info:
            call("r-missing")
        assert info.value.code == AdmissionError.NOT_FOUND
    assert observer.results() == Counter({"invalid": 1, "not_found": 2})
    assert ("release", "not_found") in observer.events


def test_changes_are_saved_and_restored(fabric, clock):
    store = Store()
    service = ControllerService(FabricController(fabric), store=store, clock=clock)
    res = service.reserve(req(0, 100, duration_s=10))
    assert [(r.reservation_id, r.state) for r in store.saved] == [(res.reservation_id,
                                                                    State.PENDING)]
    service.release(res.reservation_id)
    assert [r.state for r in store.saved] == [State.PENDING, State.RELEASED]
    kept = service.reserve(req(1, 200, duration_s=10))

    # A new service over the same store gets the live reservation back, and its bandwidth.
    clock.now = 1005.0
    store2 = Store(stored=[store.saved[1], kept])
    service2 = ControllerService(FabricController(fabric), store=store2, clock=clock)
    assert service2.get(kept.reservation_id).state is State.PENDING
    assert service2.get(res.reservation_id).state is State.RELEASED
    assert service2.core.book.reserved[WAVE_AB] == pytest.approx(200e9)
    with pytest.raises(AdmissionError):
        service2.reserve(req(2, 161))
    # Past its end, the restored one expires when the service starts.
    clock.now = 1010.0
    store3 = Store(stored=[kept])
    service3 = ControllerService(FabricController(fabric), store=store3, clock=clock)
    assert service3.get(kept.reservation_id).state is State.EXPIRED
    assert [r.state for r in store3.saved] == [State.EXPIRED]
    assert service3.core.book.reserved.get(WAVE_AB, 0.0) == pytest.approx(0.0, abs=1.0)
    # ... also one that no longer fits the fabric (a lifecycle tester's: a smaller
    # reservable share refused the start for a reservation over long since).
    small = ControllerService(FabricController(fabric, 0.25), store=Store(stored=[kept]),
                              clock=clock)
    assert small.get(kept.reservation_id).state is State.EXPIRED
    with pytest.raises(StoreError, match="do not fit"):
        clock.now = 1005.0
        ControllerService(FabricController(fabric, 0.25), store=Store(stored=[kept]),
                          clock=clock)


def test_apply_runs_events_and_sends_what_they_return(fabric, clock, observer):
    service = ControllerService(FabricController(fabric), observer=observer, clock=clock)
    sent = []

    def send(outbox):
        assert service.lock._is_owned()          # sent while holding the lock
        sent.append(outbox)
        return sum(len(m) for m in outbox.messages.values())

    service.attach(send)
    leaf = fabric.switches["dca-leaf1"]
    service.apply(lambda core: core.switch_connected(leaf.dpid))
    assert list(sent[-1].messages) == [leaf.dpid]
    assert ("sent", 1) in observer.events
    service.apply(lambda core: None)             # an event with nothing to send
    assert service.switch_status()["dca-leaf1"] is True
    assert service.switch_status()["dcb-leaf1"] is False
    loads = service.link_loads()
    assert len(loads) == 2 * len(fabric.links)


class FailingStore(Store):
    """A store whose commits fail while `full` is set, as a full disk makes them."""

    def __init__(self):
        super().__init__()
        self.full = False
        self.path = "state.db"

    def save_many(self, reservations):
        from dcilab.store.sqlite import StoreError
        if self.full:
            raise StoreError("cannot save to state file state.db: disk full", "unavailable")
        super().save_many(reservations)


def test_a_failed_save_is_taken_back_and_nothing_reaches_the_switches(fabric, clock, observer):
    from dcilab.store.sqlite import StoreError
    store = FailingStore()
    service = ControllerService(FabricController(fabric), store=store, observer=observer,
                                clock=clock)
    sent = []
    service.attach(lambda outbox: sent.append(outbox) or 0)
    for sw in fabric.switches.values():           # every switch programmed
        service.apply(lambda core, sw=sw: core.switch_connected(sw.dpid))
        service.apply(lambda core, sw=sw: core.ports_described(
            sw.dpid, {p: f"p{p}" for p in fabric.ports(sw.name)}))
    sent.clear()
    kept = service.reserve(req(0, 100, request_id="kept"))
    assert any(type(m).__name__ == "OFPFlowMod" for o in sent for ms in o.messages.values()
               for m in ms)
    sent.clear()
    store.full = True
    for _ in range(2):                            # a retry is refused too, never "OK"
        with pytest.raises(StoreError, match="disk full") as err:
            service.reserve(req(1, 200, request_id="job"))
        assert err.value.code == "unavailable"
    # Nothing of it went out but the barriers that keep the numbering.
    kinds = {type(m).__name__ for o in sent for ms in o.messages.values() for m in ms}
    assert kinds <= {"OFPBarrierRequest"}, kinds
    assert set(service.core.book.reservations) == {kept.reservation_id}
    assert service.core.book.reserved[WAVE_AB] == pytest.approx(100e9)
    with pytest.raises(StoreError):
        service.release(kept.reservation_id)
    assert service.get(kept.reservation_id).state is State.PENDING   # as on disk
    assert service.core.book.reserved[WAVE_AB] == pytest.approx(100e9)
    assert observer.results()["unavailable"] == 2
    assert [r.reservation_id for r in store.saved] == [kept.reservation_id]
    store.full = False                            # room again: it all works
    again = service.reserve(req(1, 200, request_id="job"))
    assert service.core.book.reserved[WAVE_AB] == pytest.approx(300e9)
    assert service.release(kept.reservation_id).state is State.RELEASED
    assert [e[1] for e in observer.events if e[0] == "release"] == ["unavailable", "released"]
    assert [r.reservation_id for r in store.saved] == [kept.reservation_id,
                                                       again.reservation_id,
                                                       kept.reservation_id]


class GatedStore(FailingStore):
    """A store whose commits wait for `gate`; with `fail_once`, the next one fails."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.fail_once = False

    def save_many(self, reservations):
        from dcilab.store.sqlite import StoreError
        assert self.gate.wait(30)
        if self.fail_once:
            self.fail_once = False
            raise StoreError("cannot save to state file state.db: disk full", "unavailable")
        super().save_many(reservations)


def _wait_for(condition, timeout_s: float = 10.0) -> None:
    import time
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_a_change_not_yet_durable_is_neither_shown_nor_the_cause_of_a_refusal(fabric, clock):
    """300 Gb/s being saved on the one wavelength (360 reservable): link loads and the
    counts by protection class show nothing of it; a 100 Gb/s request, refused for want
    of room while it is in flight, waits for its save, and is admitted when that fails."""
    from dcilab.store.sqlite import StoreError
    store = GatedStore()
    service = ControllerService(FabricController(fabric), store=store, clock=clock)

    def reserved() -> float:
        return sum(load.reserved_bps for load in service.link_loads(frozenset({"dci"}))
                   if load.wavelength == "ab.w1")
    outcome = {}

    def ask(name, request):
        try:
            outcome[name] = service.reserve(request)
        except (StoreError, AdmissionError) as exc:
            outcome[name] = exc
    first = threading.Thread(target=ask, args=("first", req(0, 300)))
    first.start()
    _wait_for(lambda: service._in_flight())
    assert service.core.book.reserved[WAVE_AB] == pytest.approx(300e9)   # held meanwhile
    assert reserved() == 0 and service.protection_counts() == {}
    second = threading.Thread(target=ask, args=("second", req(1, 100)))
    second.start()
    second.join(0.3)
    assert second.is_alive() and "second" not in outcome     # waits on the first's save
    store.fail_once = True
    store.gate.set()
    first.join(30)
    assert isinstance(outcome["first"], StoreError)
    second.join(30)
    assert outcome["second"].state is State.PENDING
    assert reserved() == pytest.approx(100e9)


def test_a_refusal_resting_on_a_durable_change_stands(fabric, clock):
    """The same, but the first save succeeds: the second is refused for want of room."""
    store = GatedStore()
    service = ControllerService(FabricController(fabric), store=store, clock=clock)
    refused = []

    def first():
        service.reserve(req(0, 300))
    t = threading.Thread(target=first)
    t.start()
    _wait_for(lambda: service._in_flight())
    threading.Timer(0.2, store.gate.set).start()
    with pytest.raises(AdmissionError) as err:
        service.reserve(req(1, 100))
    refused.append(err.value)
    t.join(30)
    assert refused[0].code == AdmissionError.EXHAUSTED
    assert service.core.book.reserved[WAVE_AB] == pytest.approx(300e9)


def test_a_wall_clock_step_back_skips_no_reservation_of_a_listing(fabric, clock):
    # Lists page by (created_at, id): a reservation made after the clock stepped back, or
    # in the same tick with a smaller random id, must still come after the page a client
    # holds. Its expiry still counts from the clock: it lives as long as it asked.
    service = ControllerService(FabricController(fabric), store=Store(), clock=clock)
    first = [service.reserve(req(i, 1.0)) for i in range(3)]        # one tick: 1000.0
    page = service.page((State.PENDING,), None, 2)
    clock.now = 990.0                                                 # NTP stepped back
    later = service.reserve(req(3, 1.0, duration_s=60))
    rest = service.page((State.PENDING,), _list_key(page[-1]), 10)
    assert [r.reservation_id for r in (*page, *rest)] == \
        [r.reservation_id for r in (*first, later)]
    made = [r.created_at for r in (*first, later)]
    assert made == sorted(set(made)) and made[-1] < 1000.0 + 1e-9
    assert later.expires_at == 1050.0
    clock.now = 1050.0
    service.expire()
    assert service.get(later.reservation_id).state is State.EXPIRED


def test_a_clock_stepped_back_across_a_restart_skips_no_reservation_either(fabric, clock,
                                                                           tmp_path):
    """The floor of creation times outlives the controller: the latest on record, live or
    ended, when the state file is opened again."""
    path = tmp_path / "state.db"
    every = tuple(State)
    store = ReservationStore(path, fabric=fabric.name)
    service = ControllerService(FabricController(fabric), store=store, clock=clock)
    made = [service.reserve(req(i, 1.0)) for i in range(2)]
    clock.now += 1
    service.release(service.reserve(req(2, 1.0)).reservation_id)   # the latest, ended
    seen = service.page(every, None, 10)
    store.close()
    clock.now -= 3600                                  # an hour back, across the restart
    store = ReservationStore(path, fabric=fabric.name)
    try:
        again = ControllerService(FabricController(fabric), store=store, clock=clock)
        later = again.reserve(req(3, 1.0))
        assert later.created_at > max(r.created_at for r in seen)
        assert [r.reservation_id for r in again.page(every, _list_key(seen[-1]), 10)] == \
            [later.reservation_id]
        assert len(seen) == 3 and made[0].reservation_id == seen[0].reservation_id
    finally:
        store.close()


def test_new_reservations_are_refused_while_the_limit_is_live(fabric, clock, tmp_path, caplog):
    """An outside tester's client booked 52 578 reservations of 0.001 Gb/s within minutes,
    and the restart took 74 s. New ones are refused at --max-reservations; a retry of a
    booked one is still answered; those on record are all restored, however many."""
    path = tmp_path / "state.db"
    store = ReservationStore(path, fabric=fabric.name)
    service = ControllerService(FabricController(fabric), store=store, clock=clock, max_live=3)
    made = [service.reserve(req(i, 0.001, request_id=f"job-{i}")) for i in range(3)]
    with pytest.raises(AdmissionError) as refused:
        service.reserve(req(3, 0.001))
    assert refused.value.code == AdmissionError.EXHAUSTED
    assert refused.value.message == ("this controller holds 3 live reservations, its limit "
                                     "(--max-reservations 3): release some first")
    # what no retry gets says so first, not "at the limit" (a hostile tester's client
    # retried such a refusal for good)
    with pytest.raises(AdmissionError) as refused:
        service.reserve(req(3, 0.001)._replace(max_latency_ms=0.001))
    assert refused.value.code == AdmissionError.PRECONDITION
    again = service.reserve(req(0, 0.001, request_id="job-0"))       # a retry: answered
    assert again.reservation_id == made[0].reservation_id
    service.release(made[0].reservation_id)
    service.reserve(req(3, 0.001))                                    # room again
    store.close()
    store = ReservationStore(path, fabric=fabric.name)
    try:
        with caplog.at_level("WARNING", logger="dcilab.service"):
            smaller = ControllerService(FabricController(fabric), store=store, clock=clock,
                                        max_live=2)
        assert len(smaller.core.book.reservations) == 3
        assert "3 live reservations on record, more than --max-reservations 2" in caplog.text
    finally:
        store.close()


def test_a_start_on_a_new_state_file_says_so_and_names_it_at_a_leaf_with_meters(
        fabric, clock, tmp_path, caplog):
    """An ops tester moved the state file away and restarted: the switches' reservations
    went with only a warning about meters, and nothing said the file was new."""
    import logging

    from os_ken.ofproto import ofproto_v1_3 as ofp

    from test_core import bring_up
    caplog.set_level(logging.INFO)
    path = tmp_path / "state.db"
    first = ControllerService(FabricController(fabric), store=ReservationStore(
        path, fabric=fabric.name), clock=clock)
    assert first.core.new_state_file == str(path)
    assert f"state file {path} is new: no reservations to restore" in caplog.text
    first.store.close()
    caplog.clear()
    again = ControllerService(FabricController(fabric), store=ReservationStore(
        path, fabric=fabric.name), clock=clock)
    assert again.core.new_state_file is None and "is new" not in caplog.text
    again.store.close()
    # a leaf still carrying a reservation's meter, under a controller on a new file
    path.unlink()
    fresh = ControllerService(FabricController(fabric), store=ReservationStore(
        path, fabric=fabric.name), clock=clock)
    core = fresh.core
    for name in fabric.switches:
        bring_up(core, fabric, name)
    leaf = fabric.switches["dca-leaf1"].dpid
    caplog.clear()
    out = core.meters_listed(leaf, {7, ofp.OFPM_CONTROLLER})
    assert [m.meter_id for m in out.messages[leaf]] == [7]
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.startswith(f"switch dca-leaf1 carries reservation meters 7, but state file "
                            f"{path} is new, made by this start")
    assert f"put that file at {path} and start it again" in error
    fresh.store.close()
