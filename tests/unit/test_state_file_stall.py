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
