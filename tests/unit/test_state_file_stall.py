"""A commit that does not end holds up every change behind it, switch messages included
(they go once durable): the controller measures how long (`state_file_wait`, exported as
dcilab_state_file_wait_seconds) and says so in its log (StallWatch)."""

from __future__ import annotations

import threading
import time

from test_failed_saves import TWO_WAVELENGTHS, _in_flight

from dcilab.app.service import ControllerService
from dcilab.app.stall import StallWatch
from dcilab.fabric import parse_fabric
from dcilab.te.reservations import ReservationRequest


def test_the_wait_grows_while_a_commit_hangs_and_is_zero_once_it_returns(tmp_path):
    service = ControllerService.standalone(parse_fabric(TWO_WAVELENGTHS), tmp_path / "s.db")
    assert service.state_file_wait() == 0.0
    store = service.store
    saved, gate = store.save_many, threading.Event()

    def hung(records):
        gate.wait(10)                      # an fsync that does not return
        return saved(records)
    store.save_many = hung
    out = []
    client = threading.Thread(target=lambda: out.append(service.reserve(
        ReservationRequest("dca-h1", "dcb-h1", 100))))
    client.start()
    try:
        _in_flight(service)
        first = service.state_file_wait()
        deadline = time.monotonic() + 10
        while service.state_file_wait() < first + 0.05:
            assert time.monotonic() < deadline, "the wait did not grow"
            time.sleep(0.01)
        # Timed against the clock that ran meanwhile: at least that long, not much more.
        started = time.monotonic()
        time.sleep(0.05)
        waited = service.state_file_wait()
        assert waited >= time.monotonic() - started
    finally:
        gate.set()
        client.join(10)
    assert out and service.state_file_wait() == 0.0
    service.close()


def test_a_stall_is_said_once_it_lasts_again_while_it_lasts_and_when_it_is_over():
    watch = StallWatch("/var/lib/dcilab/s.db", warn_s=5.0, repeat_s=30.0)
    assert watch.check(0.0, 100.0) is None
    assert watch.check(4.9, 101.0) is None                  # a slow commit: not yet
    level, text = watch.check(5.0, 102.0)
    assert level == "warning" and "/var/lib/dcilab/s.db" in text and "5 s" in text
    assert watch.check(6.0, 103.0) is None                  # said: not every second
    assert watch.check(35.0, 131.9) is None
    level, text = watch.check(36.0, 132.0)
    assert level == "warning" and "36 s" in text
    level, text = watch.check(0.0, 140.0)
    assert level == "info" and "up to 36 s" in text
    assert watch.check(0.0, 141.0) is None                  # over: said once
    assert watch.check(5.5, 150.0)[0] == "warning"          # a new stall is a new one


def _lock_free_while(service, slow_read: str, call) -> None:
    """While the store's `slow_read` waits for the disk inside `call`, the service's lock
    is free: other calls, events and scrapes go on (it was held: a hung disk under a
    ReservePath with a request_id stopped the whole controller, /metrics included)."""
    store = service.store
    read, entered, gate = getattr(store, slow_read), threading.Event(), threading.Event()

    def slow(*args):
        entered.set()
        gate.wait(10)
        return read(*args)
    setattr(store, slow_read, slow)
    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    try:
        assert entered.wait(10), f"{slow_read} was not read"
        free = []
        other = threading.Thread(target=lambda: free.append(service.switch_status()),
                                 daemon=True)
        other.start()
        other.join(2.0)
        assert free, f"the service's lock was held while {slow_read} waited for the disk"
    finally:
        gate.set()
        caller.join(10)
        setattr(store, slow_read, read)


def test_a_request_id_is_looked_up_in_the_state_file_outside_the_lock(tmp_path):
    service = ControllerService.standalone(parse_fabric(TWO_WAVELENGTHS), tmp_path / "s.db")
    out = []
    _lock_free_while(service, "find_request", lambda: out.append(service.reserve(
        ReservationRequest("dca-h1", "dcb-h1", 100, request_id="job-7"))))
    assert out and out[0].request.request_id == "job-7"
    again = service.reserve(ReservationRequest("dca-h1", "dcb-h1", 100, request_id="job-7"))
    assert again.reservation_id == out[0].reservation_id             # still idempotent
    service.release(again.reservation_id)
    over = service.reserve(ReservationRequest("dca-h1", "dcb-h1", 100, request_id="job-7"))
    assert over.reservation_id == again.reservation_id and not over.state.live
    service.close()


def test_a_release_of_an_id_not_live_reads_the_state_file_outside_the_lock(tmp_path):
    service = ControllerService.standalone(parse_fabric(TWO_WAVELENGTHS), tmp_path / "s.db")
    res = service.reserve(ReservationRequest("dca-h1", "dcb-h1", 100))
    service.release(res.reservation_id)
    service.core.book.reservations.pop(res.reservation_id, None)     # forgotten: on file
    out = []
    _lock_free_while(service, "get", lambda: out.append(service.release(res.reservation_id)))
    assert out and out[0].reservation_id == res.reservation_id and not out[0].state.live
    service.close()


def test_a_request_id_that_ends_between_its_look_up_and_the_lock_books_nothing_twice(
        tmp_path):
    """Looked up (nothing on file), then admitted and ended by another call before this
    one takes the lock: looked up again, and answered with that reservation."""
    service = ControllerService.standalone(parse_fabric(TWO_WAVELENGTHS), tmp_path / "s.db")
    store = service.store
    read, calls = store.find_request, []

    def racing(request_id):
        calls.append(request_id)
        found = read(request_id)
        if len(calls) == 1:                       # meanwhile: booked and ended elsewhere
            store.find_request = read
            other = service.reserve(ReservationRequest("dca-h1", "dcb-h1", 100,
                                                       request_id=request_id))
            service.release(other.reservation_id)
            store.find_request = racing
        return found
    store.find_request = racing
    res = service.reserve(ReservationRequest("dca-h1", "dcb-h1", 100, request_id="job-9"))
    store.find_request = read
    assert len(calls) == 2 and not res.state.live
    assert len(store.load_all()) == 1
    service.close()


def test_a_save_no_one_waits_for_stalls_no_save_behind_it():
    """A soak tester's wedge: the leader of a commit named the oldest queued save to lead
    the next, and that save's change had been dropped by its caller, so no thread ever
    led again: every reservation, event and switch message waited for good. Now only a
    saver that waits is named (and every change the service makes is waited for)."""
    from dcilab.store.sqlite import GroupCommit

    class SlowStore:                           # a commit that takes a while (fsync)
        path = "slow"

        def save_many(self, records):
            time.sleep(0.3)

    commits = GroupCommit(SlowStore())
    first = commits.submit(["a"])
    leading = threading.Thread(target=first.wait)
    leading.start()
    deadline = time.monotonic() + 5
    while not commits._committing:             # the first leads, and commits for 0.3 s
        assert time.monotonic() < deadline
        time.sleep(0.005)
    orphan = commits.submit(["o"])             # queued; its caller never waits
    later = commits.submit(["r"])
    waiter = threading.Thread(target=later.wait, daemon=True)
    waiter.start()
    waiter.join(5)
    leading.join(5)
    assert not waiter.is_alive() and later.done and orphan.done


def test_a_request_after_a_cut_saves_what_it_placed_and_nothing_waits_for_good(tmp_path):
    """The request that places what a cut displaced (before its own admission) saved
    that placing without waiting for it. Queued behind a commit in flight, that save was
    named to lead the next commit when it ended, and no thread ever did: the controller
    stopped (a soak tester's wedge). Now the request settles it too."""
    from controller_lab import ControllerLab
    from test_restoration_room import TWO_SITES, wavelength_of

    from dcilab.store.sqlite import ReservationStore

    fabric = parse_fabric(TWO_SITES.replace("wavelengths: 3", "wavelengths: 2"))
    lab = ControllerLab(fabric)
    store = ReservationStore(tmp_path / "s.db", fabric=fabric.name)
    service = ControllerService(lab.ctl, store=store)
    service.attach(lambda outbox: len(lab.send(outbox).messages))
    lab.bring_up_all()
    a = service.reserve(ReservationRequest("a-h1", "b-h1", 100, priority=9))
    lab.ack_all()
    saved, gate = store.save_many, threading.Event()

    def slow(records):
        gate.wait(10)                         # the first commit, in flight until let go
        return saved(records)
    store.save_many = slow
    out = []

    def reserve(n):
        out.append(service.reserve(ReservationRequest(f"a-h{n}", f"b-h{n}", 10)))
    first = threading.Thread(target=reserve, args=(2,), daemon=True)
    first.start()
    _in_flight(service)                        # its commit runs
    link = fabric.link(wavelength_of(lab, a.reservation_id))
    gw = fabric.switches[link.a.node]
    service.apply(lambda c: c.port_changed(gw.dpid, link.a.port, False, now=100.0))
    assert lab.ctl.placements_pending
    second = threading.Thread(target=reserve, args=(3,), daemon=True)
    second.start()                             # places A first, then itself, behind it
    deadline = time.monotonic() + 10
    while len(service._outgoing) < 3:
        assert time.monotonic() < deadline, "the second request did not queue"
        time.sleep(0.005)
    store.save_many = saved
    gate.set()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive(), "a reservation waits for good"
    assert len(out) == 2 and service.state_file_wait() == 0.0
    on_file = {r.reservation_id: r for r in store.load_live()}
    moved = wavelength_of(lab, a.reservation_id)
    assert moved != link.name
    assert [h.link for h in on_file[a.reservation_id].hops if h.wavelength] == [moved]
    service.close()


def test_changes_waiting_with_no_commit_running_are_said_as_a_stuck_controller():
    """A wedge with no commit under way was said as "a hung or very slow disk?": it sent
    the operator to the disk (a soak tester's)."""
    watch = StallWatch("/s.db", warn_s=5.0)
    level, text = watch.check(6.0, 10.0, running=False)
    assert level == "error" and "no commit runs" in text and "disk" not in text.split(":")[0]
    watch = StallWatch("/s.db", warn_s=5.0)
    assert watch.check(6.0, 10.0, running=True)[0] == "warning"


def test_reads_of_a_hung_state_file_hold_a_few_workers_and_are_counted(tmp_path):
    """A re-tester froze the disk: twelve reservations looking up their request_id each
    held a gRPC worker, and no call was answered; the wait read 0 meanwhile. Now at most
    STORE_READERS reads wait for the disk, the rest are refused UNAVAILABLE at once (after
    STORE_READ_WAIT_S), and the wait counts the reads."""
    from dcilab.app import service as service_module
    from dcilab.store.sqlite import StoreError

    service = ControllerService.standalone(parse_fabric(TWO_WAVELENGTHS), tmp_path / "s.db")
    store = service.store
    read, gate = store.find_request, threading.Event()

    def hung(request_id):
        gate.wait(20)
        return read(request_id)
    store.find_request = hung
    out = []

    def reserve(n):
        try:
            out.append(service.reserve(ReservationRequest(
                "dca-h1", "dcb-h1", 1, request_id=f"job-{n}")))
        except StoreError as exc:
            out.append(exc)
    readers = service_module.STORE_READERS
    threads = [threading.Thread(target=reserve, args=(n,), daemon=True)
               for n in range(readers + 3)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + service_module.STORE_READ_WAIT_S + 10
        while len(out) < 3:                         # the ones past the bound: refused
            assert time.monotonic() < deadline, "reads past the bound were not refused"
            time.sleep(0.01)
        assert all(isinstance(e, StoreError) and e.code == "unavailable" for e in out)
        assert "not answering reads" in str(out[0])
        assert service.state_file_wait() >= service_module.STORE_READ_WAIT_S
        assert service.state_file_busy()
    finally:
        gate.set()
        for t in threads:
            t.join(10)
    assert len(out) == readers + 3
    assert sum(not isinstance(r, StoreError) for r in out) == readers
    assert service.state_file_wait() == 0.0
    service.close()
