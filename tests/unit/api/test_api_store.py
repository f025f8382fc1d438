"""The SQLite reservation store: round trip, upsert, WAL, schema versions, default path."""

from __future__ import annotations

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
    originals[1] = Reservation(**{**originals[1].__dict__, "expires_at": None,
                                  "created_at": 1_790_000_001.0})
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
