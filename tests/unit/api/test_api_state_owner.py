"""A state file has one owner and one fabric: a lock naming the holder's PID, the fabric
recorded and checked, other programs' files left untouched, and every restored record
checked against the fabric and its capacity."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sqlite3
import subprocess
import sys
import time

import pytest
from api_helpers import RACE_FABRIC
from test_api_persistence import _start, controllers  # noqa: F401 (fixture)

from dcilab.app.service import ControllerService
from dcilab.core import FabricController
from dcilab.fabric import load_fabric, parse_fabric
from dcilab.sockets import free_port
from dcilab.store.sqlite import DISCARD, MIGRATE, ReservationStore, StoreError
from dcilab.te.reservations import AdmissionError, ReservationRequest, ReservedHop, State


def _controller(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "dcilab", "controller", "--grpc",
                           "127.0.0.1:0", "--openflow", "127.0.0.1:0", "--metrics",
                           "127.0.0.1:0", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_second_controller_on_the_same_file_is_refused_naming_the_pid(
        fabric_file, tmp_path, controllers):  # noqa: F811
    state = tmp_path / "state.db"
    first = _start(fabric_file, state, free_port(), tmp_path / "first.log")
    controllers.append(first)
    second = _controller("--topology", fabric_file, "--state", state)
    assert second.returncode == 2, second.stderr
    assert f"in use by another controller (pid {first.pid})" in second.stderr
    assert "Traceback" not in second.stderr
    with pytest.raises(StoreError, match=f"pid {first.pid}"):   # in-process too
        ReservationStore(state, fabric="race")


def test_the_lock_is_released_on_close(tmp_path):
    store = ReservationStore(tmp_path / "s.db", fabric="race")
    store.close()
    ReservationStore(tmp_path / "s.db", fabric="race").close()


OTHER_FABRIC = RACE_FABRIC.replace("name: race", "name: elsewhere")


def test_another_fabrics_file_is_refused_unless_migrated_or_discarded(fabric_file, tmp_path):
    race = load_fabric(fabric_file)
    other = parse_fabric(OTHER_FABRIC)
    state = tmp_path / "state.db"
    first = ControllerService.standalone(race, state)
    kept = first.reserve(ReservationRequest("dc1-h1", "dc2-h1", 100))
    first.close()
    before = _digest(state)
    with pytest.raises(StoreError) as err:
        ReservationStore(state, fabric="elsewhere")
    assert "'race'" in str(err.value) and "'elsewhere'" in str(err.value)
    assert "--state-migrate" in str(err.value) and "--state-discard" in str(err.value)
    assert _digest(state) == before                     # refused: not touched
    proc = _controller("--topology", _write(tmp_path, OTHER_FABRIC), "--state", state)
    assert proc.returncode == 2 and "belongs to fabric 'race'" in proc.stderr, proc.stderr
    # Migrate: the records are checked against the new fabric and kept.
    store = ReservationStore(state, fabric="elsewhere", other_fabric=MIGRATE)
    migrated = ControllerService(FabricController(other), store=store)
    assert migrated.get(kept.reservation_id) == kept
    assert store.recorded_fabric == "elsewhere"
    migrated.close()
    # Discard: a fresh start for race again.
    with pytest.raises(StoreError, match="belongs to fabric 'elsewhere'"):
        ControllerService.standalone(race, state)
    store = ReservationStore(state, fabric="race", other_fabric=DISCARD)
    assert store.load_all() == [] and store.recorded_fabric == "race"
    store.close()
    # Of our fabric, edited since so that a record no longer fits: refused, naming the
    # way out, which works (a lifecycle tester found it silently ignored), and ends only
    # what does not fit (a later tester: it emptied a file that fitted, at every start).
    again = ControllerService.standalone(race, state)
    big = again.reserve(ReservationRequest("dc1-h1", "dc2-h1", 300))
    small = again.reserve(ReservationRequest("dc1-h2", "dc2-h2", 10))
    again.close()
    store = ReservationStore(state, fabric="race")
    with pytest.raises(StoreError, match="do not fit.*--state-discard"):
        ControllerService(FabricController(race, 0.5), store=store)
    store.close()
    store = ReservationStore(state, fabric="race", other_fabric=DISCARD)
    assert store.discarded == 0
    kept = ControllerService(FabricController(race, 0.5), store=store, drop_unfit=True)
    assert kept.get(small.reservation_id).state.live
    dropped = kept.get(big.reservation_id)
    assert dropped.state is State.RELEASED and dropped.reason.startswith("dropped at start:")
    kept.close()


def test_a_migration_that_does_not_fit_names_the_way_out(fabric_file, tmp_path):
    """On another fabric's file --state-discard drops every record: said so, not an
    empty list of ways out (an outside tester's)."""
    state = tmp_path / "state.db"
    first = ControllerService.standalone(load_fabric(fabric_file), state)
    first.reserve(ReservationRequest("dc1-h8", "dc2-h1", 100))
    first.close()
    smaller = parse_fabric(OTHER_FABRIC.replace("hosts_per_leaf: 4", "hosts_per_leaf: 2"))
    store = ReservationStore(state, fabric="elsewhere", other_fabric=MIGRATE)
    with pytest.raises(StoreError) as err:
        ControllerService(FabricController(smaller), store=store)
    store.close()
    assert "()" not in str(err.value)
    assert "--state-discard instead of --state-migrate drops every reservation" in \
        str(err.value), str(err.value)


def _write(directory, text, name="fabric.yaml"):
    path = directory / name
    path.write_text(text)
    return path


def test_a_file_that_is_not_ours_is_never_modified(tmp_path, fabric_file):
    other = tmp_path / "app.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE users (name TEXT)")
    db.execute("INSERT INTO users VALUES ('alice')")
    db.commit()
    db.close()
    before = _digest(other)
    with pytest.raises(StoreError, match="is not a dcilab state file.*users.*untouched"):
        ReservationStore(other, fabric="race")
    proc = _controller("--topology", fabric_file, "--state", other)
    assert proc.returncode == 2 and "not a dcilab state file" in proc.stderr
    assert _digest(other) == before
    assert not (tmp_path / "app.db-wal").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bad row"])
def test_a_corrupt_state_file_is_a_clear_error_not_a_traceback(tmp_path, fabric_file, damage):
    state = tmp_path / "state.db"
    service = ControllerService.standalone(load_fabric(fabric_file), state)
    service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 1))
    service.close()
    if damage == "garbage":
        state.write_bytes(b"\x00\xff" * 5000)
    elif damage == "truncated":
        state.write_bytes(state.read_bytes()[:5000])
    else:
        db = sqlite3.connect(state)
        db.execute("UPDATE reservations SET hops = '{not json', state = 'ACTIVE'")
        db.commit()
        db.close()
    proc = _controller("--topology", fabric_file, "--state", state)
    assert proc.returncode == 2, proc.stderr
    assert str(state) in proc.stderr and "Traceback" not in proc.stderr


def test_a_damaged_schema_is_a_clear_error_not_a_traceback(tmp_path, fabric_file):
    """SQLite's message about it quotes bytes that are not text (an outside tester's
    UnicodeDecodeError)."""
    state = tmp_path / "state.db"
    ControllerService.standalone(load_fabric(fabric_file), state).close()
    db = sqlite3.connect(state)
    db.execute("PRAGMA writable_schema=ON")
    db.execute("UPDATE sqlite_master SET name = CAST(X'78BF79' AS TEXT), sql = 'CREATE TABLE' "
               "WHERE name = 'dcilab_meta'")
    db.commit()
    db.close()
    proc = _controller("--topology", fabric_file, "--state", state)
    assert proc.returncode == 2, proc.stderr
    assert "schema is damaged" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("column", ["reason", "src_host", "hops", "reservation_id"])
def test_an_ended_record_that_is_not_utf8_is_refused_at_start_by_name(fabric_file, tmp_path,
                                                                      column):
    """Not at the first listing of the history, for every caller from then on."""
    fabric = load_fabric(fabric_file)
    state = tmp_path / "state.db"
    service = ControllerService.standalone(fabric, state)
    ended = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 10))
    service.release(ended.reservation_id)
    service.reserve(ReservationRequest("dc1-h2", "dc2-h2", 10, request_id="r\u00e9sum\u00e9"))
    service.close()
    db = sqlite3.connect(state)
    # (a bad id beside another bad value: the values' check names it too)
    db.execute(f"UPDATE reservations SET {column} = CAST(X'74FFFE' AS TEXT)"
               + (", meter_id = -1" if column == "reservation_id" else "")
               + " WHERE reservation_id = ?", (ended.reservation_id,))
    db.commit()
    db.close()
    with pytest.raises(StoreError) as err:
        ControllerService.standalone(fabric, state)
    named = "'t\ufffd\ufffd'" if column == "reservation_id" else f"'{ended.reservation_id}'"
    assert f"reservation {named}: " in str(err.value), str(err.value)
    assert "1 reservation(s)" in str(err.value)        # the valid accented one is not
    assert "Could not decode" not in str(err.value)


def test_two_live_records_of_one_request_id_are_refused_at_start(fabric_file, tmp_path):
    """Only an edit makes them, and a retry would be answered with either."""
    fabric = load_fabric(fabric_file)
    state = tmp_path / "state.db"
    service = ControllerService.standalone(fabric, state)
    one = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 10, request_id="job-1"))
    two = service.reserve(ReservationRequest("dc1-h2", "dc2-h2", 10, request_id="job-2"))
    service.close()
    db = sqlite3.connect(state)
    db.execute("UPDATE reservations SET request_id = 'job-1'")
    db.commit()
    db.close()
    with pytest.raises(StoreError) as err:
        ControllerService.standalone(fabric, state)
    assert "live with one request_id 'job-1'" in str(err.value), str(err.value)
    assert one.reservation_id in str(err.value) and two.reservation_id in str(err.value)


def _poison(state, **changes):
    """The one reservation in `state`, rewritten with `changes` behind the store's back."""
    db = sqlite3.connect(state)
    sets = ", ".join(f"{k} = ?" for k in changes)
    db.execute(f"UPDATE reservations SET {sets}", tuple(changes.values()))
    db.commit()
    db.close()


@pytest.mark.parametrize("changes, words", [
    ({"src_host": "dc9-h1"}, ["unknown host"]),
    ({"bandwidth_gbps": -3.0}, ["bandwidth_gbps"]),
    ({"hops": '[["dc1-leaf1", 3, "no-such-link", null]]'}, ["no link 'no-such-link'"]),
    ({"hops": '[["dc2-leaf1", 3, "dc1-h1", null]]'}, ["hop 0"]),
    ({"duration_s": 1e300}, ["duration"]),
])
def test_a_restored_record_that_does_not_fit_is_refused_by_name(fabric_file, tmp_path,
                                                                changes, words):
    fabric = load_fabric(fabric_file)
    state = tmp_path / "state.db"
    service = ControllerService.standalone(fabric, state)
    res = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 10))
    service.close()
    _poison(state, **changes)
    with pytest.raises(StoreError) as err:
        ControllerService.standalone(fabric, state)
    assert res.reservation_id in str(err.value)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_a_record_below_todays_lower_limits_is_still_restored(fabric_file, tmp_path):
    """1 b/s for 1 ns was admitted before the lower limits: such a record loads, and only
    new requests are held to them."""
    fabric = load_fabric(fabric_file)
    state = tmp_path / "state.db"
    service = ControllerService.standalone(fabric, state)
    res = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 10))
    service.close()
    _poison(state, bandwidth_gbps=1e-9)
    service = ControllerService.standalone(fabric, state)
    try:
        assert service.get(res.reservation_id).request.bandwidth_gbps == 1e-9
        with pytest.raises(AdmissionError, match="at least"):
            service.reserve(ReservationRequest("dc1-h2", "dc2-h2", 1e-9))
    finally:
        service.close()


def test_two_files_merged_beyond_capacity_are_refused(fabric_file, tmp_path):
    """What two controllers on one file used to make: 2 x 300 G on a 360 G wavelength."""
    fabric = load_fabric(fabric_file)
    state = tmp_path / "state.db"
    service = ControllerService.standalone(fabric, state)
    a = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 300))
    service.close()
    with ReservationStore(state, fabric="race") as store:
        twin = dataclasses.replace(
            a, reservation_id="r-twin", meter_id=99,
            request=a.request._replace(src_host="dc1-h2", dst_host="dc2-h2"),
            hops=_hops_for(fabric, "dc2-h2", a.hops))
        store.save(twin)
    with pytest.raises(StoreError) as err:
        ControllerService.standalone(fabric, state)
    assert "r-twin" in str(err.value) and "dc1-dc2.w1" in str(err.value)
    assert "Gb/s free" in str(err.value)
    # A refused start (another process) writes nothing, not even its PID as the owner's.
    refused = _controller("--topology", fabric_file, "--state", state)
    assert refused.returncode == 2 and "r-twin" in refused.stderr, refused.stderr
    db = sqlite3.connect(state)
    try:
        assert db.execute("SELECT value FROM dcilab_meta WHERE key = 'pid'").fetchone() == (
            str(os.getpid()),)
    finally:
        db.close()


def _hops_for(fabric, dst, template):
    """`template`'s path, ending at host `dst` (on the same leaf) instead."""
    last = template[-1]
    d = fabric.hosts[dst]
    return template[:-1] + (ReservedHop(last.switch, d.port, d.name, None),)


def test_the_default_state_file_is_per_fabric(tmp_path, fabric_file):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen([sys.executable, "-m", "dcilab", "controller", "--topology",
                             str(fabric_file), "--grpc", "127.0.0.1:0", "--openflow",
                             "127.0.0.1:0", "--metrics", "127.0.0.1:0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        expected = tmp_path / "xdg" / "dcilab" / "race.db"
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if expected.exists():
                try:
                    db = sqlite3.connect(f"file:{expected}?mode=ro", uri=True)
                    row = db.execute("SELECT value FROM dcilab_meta WHERE key = 'fabric'"
                                     ).fetchone()
                    db.close()
                except sqlite3.Error:
                    row = None
                if row:
                    break
            time.sleep(0.1)
        assert row == ("race",)
    finally:
        proc.kill()
        proc.wait(10)
