"""The SQLite reservation store: round trip, upsert, WAL, schema versions, default path."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading

import pytest

from dcilab.store.sqlite import (SCHEMA_VERSION, ReservationStore, StoreError,
                                 default_state_path)
from dcilab.te.reservations import Reservation, ReservationRequest, ReservedHop, State


def _reservation(rid="r-1", state=State.PENDING, request_id="job-1", **request) -> Reservation:
    req = ReservationRequest(**{"src_host": "dc1-h1", "dst_host": "dc2-h3",
                                "bandwidth_gbps": 36.5, "max_latency_ms": 2.5,
                                "duration_s": 30.0, "request_id": request_id, **request})
    hops = (ReservedHop("dc1-leaf1", 3, "dc1-leaf1~spine1", None),
            ReservedHop("dc1-gw1", 3, "dc1-dc2.w1", "dc1-dc2.w1"),
            ReservedHop("dc2-leaf2", 1, "dc2-h3", None))
    return Reservation(rid, req, state, hops, 0.4004, 1_790_000_000.123456, 1_790_000_030.123456,
                       7)


def test_round_trip_is_exact(tmp_path):
    originals = [_reservation("r-1"),
                 _reservation("r-2", State.ACTIVE, "", max_latency_ms=None, duration_s=0.0)]
    originals[1] = dataclasses.replace(originals[1], expires_at=None,
                                       created_at=1_790_000_001.0)
    with ReservationStore(tmp_path / "state.db") as store:
        for res in originals:
            store.save(res)
    with ReservationStore(tmp_path / "state.db") as store:
        assert store.load_all() == originals


def test_save_upserts(tmp_path):
    with ReservationStore(tmp_path / "s.db") as store:
        store.save(_reservation())
        store.save(_reservation().with_state(State.ACTIVE))
        store.save(_reservation().with_state(State.RELEASED))
        assert [r.state for r in store.load_all()] == [State.RELEASED]


def test_creates_its_directory_and_uses_wal_with_full_sync(tmp_path):
    path = tmp_path / "a" / "b" / "state.db"
    with ReservationStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2      # FULL
    assert path.exists()


def test_saves_from_many_threads(tmp_path):
    with ReservationStore(tmp_path / "s.db") as store:
        threads = [threading.Thread(target=lambda i=i: [
            store.save(_reservation(f"r-{i}-{k}", request_id=f"{i}-{k}")) for k in range(20)])
            for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.load_all()) == 160


def test_a_newer_schema_is_refused_not_misread(tmp_path):
    path = tmp_path / "state.db"
    ReservationStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this dcilab"):
        ReservationStore(path)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "state.db"
    path.write_text("this is not sqlite " * 100)
    with pytest.raises(StoreError, match=f"cannot open state file {path}"):
        ReservationStore(path)


def test_default_state_path(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_state_path() == tmp_path / "xdg" / "dcilab" / "state.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")      # the spec says: absolute only
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_path() == tmp_path / "home" / ".local" / "share" / "dcilab" / "state.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_state_path() == tmp_path / "home" / ".local" / "share" / "dcilab" / "state.db"
    assert default_state_path("two-dc") == (tmp_path / "home" / ".local" / "share" / "dcilab"
                                            / "two-dc.db")          # one file per fabric


def test_service_restores_what_it_saved(fabric_file, state_path):
    from dcilab.app.service import ControllerService
    from dcilab.fabric import load_fabric
    fabric = load_fabric(fabric_file)
    first = ControllerService.standalone(fabric, state_path)
    kept = first.reserve(ReservationRequest("dc1-h1", "dc2-h1", 300, request_id="a"))
    gone = first.reserve(ReservationRequest("dc1-h2", "dc2-h2", 50))
    first.release(gone.reservation_id)
    first.close()
    second = ControllerService.standalone(fabric, state_path)
    assert second.get(kept.reservation_id) == kept
    assert second.get(gone.reservation_id).state == State.RELEASED
    assert second.reserve(ReservationRequest("dc1-h1", "dc2-h1", 300, request_id="a")) == kept
    with pytest.raises(Exception, match="Gb/s free"):     # the restored one still holds 300
        second.reserve(ReservationRequest("dc1-h3", "dc2-h3", 100))
    second.close()


def test_ended_reservations_leave_memory_and_the_store_answers_for_them(fabric_file,
                                                                        state_path):
    from dcilab.app.service import ControllerService
    from dcilab.fabric import load_fabric
    fabric = load_fabric(fabric_file)
    service = ControllerService.standalone(fabric, state_path)
    gone = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 300, request_id="job-1"))
    kept = service.reserve(ReservationRequest("dc1-h2", "dc2-h2", 50))
    ended = service.release(gone.reservation_id)
    assert ended.state == State.RELEASED
    # Committed, so forgotten here: the book holds live ones, nothing else is kept.
    assert set(service.core.book.reservations) == {kept.reservation_id}
    assert service._ended == {} and service._ended_requests == {}
    # ... and still answered for, from the store.
    assert service.get(gone.reservation_id) == ended
    assert service.release(gone.reservation_id) == ended            # releasing again
    assert service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 300,
                                              request_id="job-1")) == ended
    assert set(service.core.book.reservations) == {kept.reservation_id}    # nothing booked
    assert [r.reservation_id for r in service.list()] == [gone.reservation_id,
                                                          kept.reservation_id]
    assert service.list(State.RELEASED) == [ended]
    assert service.list(State.PENDING) == [kept]
    assert service.reservation_counts() == {State.PENDING: 1, State.ACTIVE: 0, State.DEGRADED: 0,
                                            State.RELEASED: 1, State.EXPIRED: 0}
    service.close()
    # A restart loads the live one only, and counts the history from the store.
    again = ControllerService.standalone(fabric, state_path)
    assert set(again.core.book.reservations) == {kept.reservation_id}
    assert again.reservation_counts()[State.RELEASED] == 1
    assert again.get(gone.reservation_id) == ended
    fresh = again.reserve(ReservationRequest("dc1-h3", "dc2-h3", 1))
    assert fresh.meter_id > max(gone.meter_id, kept.meter_id)      # ids are never reused
    again.close()


def test_without_a_store_the_service_keeps_the_history(fabric_file):
    from dcilab.app.service import ControllerService
    from dcilab.fabric import load_fabric
    service = ControllerService.standalone(load_fabric(fabric_file))
    res = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 10, request_id="a"))
    ended = service.release(res.reservation_id)
    assert service.get(res.reservation_id) == ended
    assert service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 10, request_id="a")) == ended
    assert service.list() == [ended]


def test_store_queries_and_the_version_1_migration(tmp_path):
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)                     # a file written by schema version 1
    db.executescript(_V1_SCHEMA)
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with ReservationStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
        indexes = {row[1] for row in store._db.execute("PRAGMA index_list(reservations)")}
        assert "reservations_request" in indexes
        live = _reservation("r-1", State.ACTIVE, "job-1")
        released = dataclasses.replace(_reservation("r-2", State.RELEASED, "job-2"), meter_id=9)
        expired = _reservation("r-3", State.EXPIRED, "")
        for res in (live, released, expired):
            store.save(res)
        assert store.load_live() == [live]
        assert store.ended() == [released, expired]
        assert store.ended(State.EXPIRED) == [expired]
        assert store.get("r-2") == released and store.get("r-9") is None
        assert store.find_request("job-2") == released
        assert store.find_request("") is None and store.find_request("job-9") is None
        assert store.count_ended() == {State.RELEASED: 1, State.EXPIRED: 1}


_V1_SCHEMA = """
    CREATE TABLE reservations (
        reservation_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, state TEXT NOT NULL,
        src_host TEXT NOT NULL, dst_host TEXT NOT NULL, bandwidth_gbps REAL NOT NULL,
        max_latency_ms REAL, duration_s REAL NOT NULL, hops TEXT NOT NULL,
        latency_ms REAL NOT NULL, created_at REAL NOT NULL, expires_at REAL,
        meter_id INTEGER NOT NULL);
    CREATE INDEX reservations_state ON reservations (state);
"""


def test_group_commit_covers_every_save_queued_during_a_commit(tmp_path):
    """The first waiter commits alone; the 15 that queue meanwhile share the next commit;
    every one of them returns only once its row is on disk."""
    from dcilab.store.sqlite import GroupCommit
    with ReservationStore(tmp_path / "s.db") as store:
        batches, first_in, release_first = [], threading.Event(), threading.Event()
        save_many = store.save_many

        def slow_first(reservations):
            batches.append(len(reservations))
            if len(batches) == 1:
                first_in.set()
                release_first.wait(5)
            save_many(reservations)
        store.save_many = slow_first
        commits = GroupCommit(store)
        leader = threading.Thread(target=lambda: commits.submit([_reservation("r-0")]).wait())
        leader.start()
        assert first_in.wait(5)
        pending = [commits.submit([_reservation(f"r-{i}", request_id=f"j{i}")])
                   for i in range(1, 16)]
        followers = [threading.Thread(target=p.wait) for p in pending]
        for t in followers:
            t.start()
        release_first.set()
        for t in (leader, *followers):
            t.join(5)
        assert not any(t.is_alive() for t in (leader, *followers))
        assert batches == [1, 15]
        assert all(p.done and p.error is None for p in pending)
        assert len(store.load_all()) == 16


def test_a_failed_group_commit_fails_its_waiters_and_the_next_one_proceeds(tmp_path):
    from dcilab.store.sqlite import GroupCommit
    with ReservationStore(tmp_path / "s.db") as store:
        save_many, calls = store.save_many, []

        def failing_once(reservations):
            calls.append(len(reservations))
            if len(calls) == 1:
                raise sqlite3.OperationalError("disk I/O error")
            save_many(reservations)
        store.save_many = failing_once
        commits = GroupCommit(store)
        with pytest.raises(StoreError, match="could not save reservations.*disk I/O error"):
            commits.submit([_reservation("r-1")]).wait()
        commits.submit([_reservation("r-2", request_id="j2")]).wait()
        assert [r.reservation_id for r in store.load_all()] == ["r-2"]
        commits.close()
        with pytest.raises(StoreError, match="closed"):
            commits.submit([_reservation("r-3")])


def test_restoration_decisions_survive_a_restart(tmp_path):
    path = tmp_path / "state.db"
    degraded = _reservation("r-9", state=State.DEGRADED, priority=3).with_state(
        State.DEGRADED, "dc1-dc2-a.w1 is down and no other path has room")
    with ReservationStore(path) as store:
        store.save(degraded)
    with ReservationStore(path) as store:
        (back,) = store.load_live()
    assert back == degraded
    assert back.request.priority == 3 and back.reason.startswith("dc1-dc2-a.w1 is down")


def test_history_is_kept_for_its_retention_only(fabric_file, state_path):
    from dcilab.app.service import ControllerService
    from dcilab.fabric import load_fabric
    now = [2_000_000_000.0]
    service = ControllerService.standalone(load_fabric(fabric_file), state_path)
    service.clock = lambda: now[0]
    service.history_s = 3600.0
    old = service.release(service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 1))
                          .reservation_id)
    live = service.reserve(ReservationRequest("dc1-h2", "dc2-h2", 1))
    with sqlite3.connect(state_path) as db:      # it ended two hours ago
        db.execute("UPDATE reservations SET ended_at = ? WHERE reservation_id = ?",
                   (now[0] - 7200, old.reservation_id))
    service._pruned_at = -1e18
    service.expire()                             # the app's once-a-second call prunes
    assert [r.reservation_id for r in service.list()] == [live.reservation_id]
    with pytest.raises(Exception, match="no reservation"):
        service.get(old.reservation_id)
    # the gauge of ended ones counts the history kept, as a restart would count it (a
    # reviewer's: it kept the pruned ones until the next start, then fell)
    assert service.reservation_counts()[State.RELEASED] == 0
    service.close()


def test_no_history_keeps_none_not_a_minute_of_it(fabric_file, state_path):
    """`--history-days 0` kept what ended for up to a minute (an outside tester)."""
    from dcilab.app.service import ControllerService
    from dcilab.fabric import load_fabric
    now = [2_000_000_000.0]
    service = ControllerService.standalone(load_fabric(fabric_file), state_path)
    service.clock = lambda: now[0]
    service.history_s = 0.0
    service.expire()
    ended = service.release(service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 1))
                            .reservation_id)
    now[0] += 1.0
    service.expire()                             # a second later: gone
    with pytest.raises(Exception, match="no reservation"):
        service.get(ended.reservation_id)
    service.close()
