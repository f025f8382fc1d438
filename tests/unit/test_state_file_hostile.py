"""Hostile state files: a record edited behind the store's back is refused at start with
the file, the record and the field named; a file that is not ours (another program's
database, a view, /dev/null, a FIFO, a directory) is refused and left byte-identical; a
refused start writes nothing, and removes a file it created; what does restore can be
listed."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dcilab.api import convert
from dcilab.app.service import ControllerService
from dcilab.core import FabricController
from dcilab.fabric import load_fabric, parse_fabric
from dcilab.resources import topology_arg
from dcilab.store import sqlite as store_mod
from dcilab.store.sqlite import (APPLICATION_ID, MAX_METER_ID, MAX_PRIORITY, MAX_TIME_S,
                                 MIGRATE, MIN_PRIORITY, MIN_TIME_S, ReservationStore, StoreError,
                                 sqlite_cause)
from dcilab.te.reservations import Protection, ReservationRequest, State

TWO_DC = topology_arg("two-dc")


@pytest.fixture(scope="module")
def fabric():
    return load_fabric(TWO_DC)


@pytest.fixture
def made(fabric, tmp_path):
    """A state file the store made: one live reservation, one ended; (path, live, ended)."""
    path = tmp_path / "state.db"
    service = ControllerService.standalone(fabric, path)
    live = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 1, request_id="live1"))
    ended = service.reserve(ReservationRequest("dc1-h2", "dc2-h2", 1, request_id="ended1"))
    service.release(ended.reservation_id)
    service.close()
    return path, live.reservation_id, ended.reservation_id


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _edit(path: Path, sql: str, *args) -> None:
    """What an operator with sqlite3 does to the file."""
    db = sqlite3.connect(path)
    db.execute(sql, args)
    db.commit()
    db.close()


def _served(path: Path) -> list:
    """Every record the store returns, as the API sends it (a listing of all)."""
    with ReservationStore(path) as store:
        return [convert.reservation(r).SerializeToString() for r in store.load_all()]


@pytest.mark.parametrize("which, column, value", [
    ("live", "created_at", 1e300), ("live", "created_at", -1e20), ("live", "created_at", "abc"),
    ("live", "created_at", float("inf")), ("live", "expires_at", 1e18),
    ("live", "priority", 2**40), ("live", "meter_id", -1), ("live", "meter_id", 0),
    ("live", "meter_id", 2**40), ("live", "meter_id", 1.5), ("live", "state", "BOGUS"),
    ("live", "selector", "[6, 0, 0, null, 5]"), ("live", "protection", "GOLD"),
    ("live", "reason", "x" * 1_000_000), ("live", "latency_ms", float("inf")),
    ("ended", "created_at", 1e300), ("ended", "priority", 2**40), ("ended", "hops", "not json"),
    ("ended", "hops", '[["dc1-leaf1", -1, "l", null]]'), ("ended", "standby", "{}"),
    ("ended", "request_id", "r" * 100_000), ("ended", "reason", "y" * 1_000_000),
    ("ended", "state", "bogus"), ("ended", "bandwidth_gbps", "one"),
])
def test_a_field_no_api_can_serve_is_refused_naming_file_record_and_field(
        fabric, made, which, column, value):
    path, live, ended = made
    rid = live if which == "live" else ended
    _edit(path, f"UPDATE reservations SET {column} = ? WHERE reservation_id = ?", value, rid)
    before = _sha1(path)
    with pytest.raises(StoreError) as err:
        ControllerService.standalone(fabric, path)
    message = str(err.value)
    assert str(path) in message and rid in message and f"{column} " in message, message
    assert len(message) < 2000                      # a megabyte field is not echoed
    assert _sha1(path) == before                    # a refusal writes nothing (not our PID)


def test_values_at_the_edges_of_the_api_restore_and_list(fabric, made):
    path, live, ended = made
    _edit(path, "UPDATE reservations SET created_at = ?, priority = ?, meter_id = ? "
                "WHERE reservation_id = ?", MIN_TIME_S, MIN_PRIORITY, MAX_METER_ID, live)
    _edit(path, "UPDATE reservations SET created_at = ?, expires_at = ?, priority = ? "
                "WHERE reservation_id = ?", MAX_TIME_S, MAX_TIME_S, MAX_PRIORITY, ended)
    service = ControllerService.standalone(fabric, path)
    try:
        assert service.get(live).meter_id == MAX_METER_ID
    finally:
        service.close()
    assert len(_served(path)) == 2


def test_every_record_of_a_restored_file_converts(fabric, made):
    path, _, _ = made
    ControllerService.standalone(fabric, path).close()
    assert len(_served(path)) == 2


def test_two_pairs_sharing_a_meter_are_refused(fabric, made):
    path, live, _ = made
    service = ControllerService.standalone(fabric, path)
    other = service.reserve(ReservationRequest("dc1-h3", "dc2-h3", 1)).reservation_id
    meter = service.get(live).meter_id
    service.close()
    _edit(path, "UPDATE reservations SET meter_id = ? WHERE reservation_id = ?", meter, other)
    with pytest.raises(StoreError) as err:
        ControllerService.standalone(fabric, path)
    assert other in str(err.value) and f"meter_id {meter}" in str(err.value)
    assert live in str(err.value)                  # the one that has it


def test_one_aggregate_with_two_meters_is_refused(fabric, made):
    path, live, _ = made
    service = ControllerService.standalone(fabric, path)
    twin = service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 1)).reservation_id
    service.close()
    _edit(path, "UPDATE reservations SET meter_id = 4242 WHERE reservation_id = ?", twin)
    with pytest.raises(StoreError, match=f"{twin}.*meter_id 4242.*{live}"):
        ControllerService.standalone(fabric, path)


def test_a_standby_on_an_unprotected_record_is_refused(fabric, made):
    path, live, _ = made
    _edit(path, "UPDATE reservations SET standby = hops WHERE reservation_id = ?", live)
    with pytest.raises(StoreError, match=f"{live}.*protection RESTORABLE with a standby"):
        ControllerService.standalone(fabric, path)


def test_a_standby_that_goes_nowhere_is_refused(fabric, made):
    path, live, _ = made
    _edit(path, "UPDATE reservations SET protection = 'PROTECTED', standby = ? "
                "WHERE reservation_id = ?", '[["dc1-leaf1", 1, "no-such-link", null]]', live)
    with pytest.raises(StoreError, match=f"{live}.*standby hop 0.*no link 'no-such-link'"):
        ControllerService.standalone(fabric, path)


def test_a_protected_record_a_failure_left_without_standby_is_restored_and_named(
        fabric, made, caplog):
    """`_relocate(fallback=True)` saves exactly this after a line system fails: refusing
    it would keep a controller that crashed during the outage from coming back."""
    path, live, _ = made
    _edit(path, "UPDATE reservations SET protection = 'PROTECTED' WHERE reservation_id = ?",
          live)
    with caplog.at_level(logging.WARNING, logger="dcilab.service"):
        service = ControllerService.standalone(fabric, path)
    try:
        assert service.get(live).request.protection == Protection.PROTECTED
    finally:
        service.close()
    assert f"reservation {live} is PROTECTED but was saved without a standby" in caplog.text


# -- files that are not ours -----------------------------------------------------------

def _foreign(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


FOREIGN = {
    "hotel": ("CREATE TABLE reservations (id INTEGER PRIMARY KEY, guest TEXT, room INT)",),
    "hotel v1": ("CREATE TABLE reservations (id INTEGER PRIMARY KEY, guest TEXT, "
                 "request_id TEXT)", "PRAGMA user_version=1"),
    "view only": ("CREATE VIEW v AS SELECT 1",),
    "other app": ("PRAGMA application_id=1234", "CREATE TABLE t (x)"),
    "wal, v3": ("PRAGMA journal_mode=WAL", "CREATE TABLE reservations (x)",
                "CREATE TABLE dcilab_meta (key, value)", "PRAGMA user_version=3"),
    "ours plus a trigger": tuple(store_mod._MIGRATIONS[0].split(";")[:2])
    + ("CREATE TRIGGER t AFTER INSERT ON reservations BEGIN SELECT 1; END",
       "PRAGMA user_version=1"),
}


@pytest.mark.parametrize("name", FOREIGN)
def test_another_programs_database_is_refused_and_left_byte_identical(tmp_path, name):
    path = tmp_path / "app.db"
    _foreign(path, *FOREIGN[name])
    before = _sha1(path)
    with pytest.raises(StoreError, match="is not a dcilab state file.*untouched"):
        ReservationStore(path, fabric="two-dc")
    assert _sha1(path) == before
    assert not (tmp_path / "app.db-journal").exists()
    assert sorted(os.listdir(tmp_path)) == ["app.db"]     # no -wal or -shm beside it


@pytest.mark.parametrize("content", [b"hello", b"not sqlite " * 100, b"\x00\xff" * 5000])
def test_a_file_that_is_not_a_database_is_left_byte_identical(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not a dcilab state file.*not an SQLite database"):
        ReservationStore(path)
    assert path.read_bytes() == content and os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("kind", ["fifo", "directory", "/dev/null"])
def test_a_file_that_is_not_a_regular_file_is_refused_untouched(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    elif kind == "directory":
        path = tmp_path / "dir"
        path.mkdir()
    else:
        path = Path("/dev/null")
    listed = sorted(os.listdir(path.parent))
    with pytest.raises(StoreError, match="not a dcilab state file.*not a regular file"):
        ReservationStore(path)
    assert sorted(os.listdir(path.parent)) == listed       # no -journal beside it


def test_an_empty_file_is_adopted_and_marked(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    ReservationStore(path, fabric="two-dc").close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.close()


def test_a_file_an_earlier_dcilab_made_is_known_by_its_tables(fabric, made):
    path, live, _ = made
    _edit(path, "PRAGMA application_id=0")            # as files were before the mark
    service = ControllerService.standalone(fabric, path)
    service.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.close()


def test_a_refused_start_removes_the_file_it_created(tmp_path, monkeypatch):
    """A new file on a full disk: the start fails and leaves no empty database behind."""
    def full(self):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(ReservationStore, "_migrate", full)
    path = tmp_path / "new.db"
    with pytest.raises(StoreError, match=f"cannot open state file {path}"):
        ReservationStore(path)
    assert os.listdir(tmp_path) == []


def test_an_existing_file_is_kept_when_a_start_fails(made, monkeypatch):
    path, _, _ = made
    monkeypatch.setattr(ReservationStore, "_claim", lambda self, other: (_ for _ in ()).throw(
        sqlite3.OperationalError("disk I/O error")))
    with pytest.raises(StoreError):
        ReservationStore(path)
    assert path.exists()


class _IoError(sqlite3.OperationalError):
    def __init__(self, name):
        super().__init__("disk I/O error")
        self.sqlite_errorname = name


def test_a_full_disk_is_said_to_be_full(tmp_path, monkeypatch):
    assert sqlite_cause(_IoError("SQLITE_IOERR_SHMSIZE"))[0].startswith("disk full")
    assert "full" not in sqlite_cause(_IoError("SQLITE_IOERR_WRITE"), tmp_path / "s.db")[0]
    monkeypatch.setattr(store_mod.os, "statvfs",
                        lambda p: os.statvfs_result((4096, 4096, 10, 0, 0, 10, 0, 0, 0, 255)))
    text, code = sqlite_cause(_IoError("SQLITE_IOERR_WRITE"), tmp_path / "s.db")
    assert text.startswith("disk full") and code == "unavailable"


def test_a_file_system_gone_read_only_under_it_is_said_to_be_read_only(tmp_path, monkeypatch):
    """ext4's errors=remount-ro: SQLite's write fails as IOERR_WRITE, with room left (an
    outside tester saw "disk I/O error" where "read-only" was promised)."""
    monkeypatch.setattr(store_mod.os, "statvfs", lambda p: os.statvfs_result(
        (4096, 4096, 10**6, 10**6, 10**6, 10, 10, 10, os.ST_RDONLY, 255)))
    text, code = sqlite_cause(_IoError("SQLITE_IOERR_WRITE"), tmp_path / "s.db")
    assert text.startswith("read-only") and code == "unavailable"


def test_a_hard_link_to_a_held_file_is_refused_naming_the_holder(tmp_path):
    path = tmp_path / "held.db"
    with ReservationStore(path, fabric="two-dc"):
        os.link(path, tmp_path / "hard.db")
        with pytest.raises(StoreError, match=f"in use by another controller "
                                             f"\\(pid {os.getpid()}\\)"):
            ReservationStore(tmp_path / "hard.db", fabric="two-dc")
        assert not (tmp_path / "hard.db-wal").exists()
        assert not (tmp_path / "hard.db-shm").exists()


ELSEWHERE = """
name: elsewhere
sites:
  - {name: xa, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 1, fabric_gbps: 400}
  - {name: xb, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 1, fabric_gbps: 400}
dci_links:
  - {name: xab, a: xa, b: xb, fiber_km: 80, module: 400ZR, wavelengths: 1}
"""


def test_a_refused_migration_leaves_the_file_as_it_was(made):
    path, live, _ = made
    _edit(path, "UPDATE dcilab_meta SET value = '1' WHERE key = 'pid'")   # not this process
    before = _sha1(path)
    store = ReservationStore(path, fabric="elsewhere", other_fabric=MIGRATE)
    with pytest.raises(StoreError, match=f"{live}.*unknown host"):
        ControllerService(FabricController(parse_fabric(ELSEWHERE)), store=store)
    store.close()
    assert _sha1(path) == before
    with ReservationStore(path, fabric="two-dc") as again:
        assert again.recorded_fabric == "two-dc"


def test_the_controller_exits_2_naming_the_record_with_no_traceback(made, tmp_path):
    path, live, _ = made
    fabric_file = tmp_path / "elsewhere.yaml"
    fabric_file.write_text(ELSEWHERE)
    proc = subprocess.run([sys.executable, "-m", "dcilab", "controller", "--topology",
                           str(fabric_file), "--state", str(path), "--state-migrate",
                           "--grpc", "127.0.0.1:0", "--openflow", "127.0.0.1:0",
                           "--metrics", "127.0.0.1:0"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert live in proc.stderr and str(path) in proc.stderr
    assert "Traceback" not in proc.stderr and "kept the reservations" not in proc.stderr


def test_a_store_made_record_round_trips_through_the_checks(tmp_path, fabric, made):
    """Everything the code itself saves passes the checks (no false refusal)."""
    path, live, _ = made
    service = ControllerService.standalone(fabric, path)
    res = service.get(live)
    service.close()
    with ReservationStore(path) as store:
        store.save(dataclasses.replace(res, reason="r" * store_mod.MAX_REASON_CHARS))
    ControllerService.standalone(fabric, path).close()


@pytest.mark.parametrize("how", ["renamed over", "directory removed"])
def test_a_state_file_replaced_or_removed_in_use_takes_no_more_changes(fabric, tmp_path, how,
                                                                      caplog):
    """Renamed over (another program's file moved onto its path) or removed with its
    directory while the controller runs: a commit would go to a file no restart reads
    and report success. Refused instead (the change taken back), the foreign file left
    as it is."""
    path = tmp_path / "dir" / "state.db"
    path.parent.mkdir()
    service = ControllerService.standalone(fabric, path)
    try:
        service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 1))
        if how == "renamed over":
            foreign = tmp_path / "foreign.db"
            db = sqlite3.connect(foreign)
            db.execute("CREATE TABLE t (x)")
            db.commit()
            db.close()
            before = _sha1(foreign)
            os.replace(foreign, path)
        else:
            for name in os.listdir(path.parent):
                os.unlink(path.parent / name)
            path.parent.rmdir()
        with pytest.raises(StoreError, match="removed or replaced while this controller used"):
            service.reserve(ReservationRequest("dc1-h2", "dc2-h2", 1))
        assert len(service.core.book.reservations) == 1          # the change taken back
        # ... counted as the state file's failure, also where a request_id's earlier
        # outcome is looked up first (an ops tester's: counted as "invalid"); and its
        # advice is to put the file back before a restart, which would begin an empty one
        counted = []
        service.observer.reservation_request = lambda result, _s: counted.append(result)
        with pytest.raises(StoreError, match=f"put its state file back at {path} and start "
                                             f"it again") as failed:
            service.reserve(ReservationRequest("dc1-h3", "dc2-h3", 1, request_id="cli-1"))
        assert counted == [failed.value.code] and failed.value.code in ("internal",
                                                                         "unavailable")
        # It shows failing, and the probe each tick does not take the file left behind
        # (still open, writable) for one that takes changes again.
        assert service.state_file_failing()
        service.expire()
        assert service.state_file_failing()
        # Reads neither: a listing of the file gone showed what no restart would (an
        # outside tester's), and said nothing in the log.
        for _ in range(2):
            with pytest.raises(StoreError, match="cannot read state file .* removed or "
                                                 "replaced"):
                service.page(tuple(State), None, 10)
        said = [r for r in caplog.records if r.name == "dcilab.store"]
        assert len(said) == 1 and said[0].levelname == "ERROR"          # once, in a row
    finally:
        service.close()
    if how == "renamed over":
        assert _sha1(path) == before
        db = sqlite3.connect(path)                  # what the other program then reads
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["t"]
        db.close()


def test_an_empty_file_behind_a_symlink_is_not_adopted(tmp_path):
    """An empty file is adopted as a new state file by its own path only: behind a
    symlink it may be anyone's (a configuration file not yet written)."""
    target = tmp_path / "empty.conf"
    target.write_bytes(b"")
    link = tmp_path / "link.db"
    link.symlink_to(target)
    with pytest.raises(StoreError, match="empty file reached through a symlink"):
        ReservationStore(link, fabric="two-dc")
    assert target.read_bytes() == b"" and sorted(os.listdir(tmp_path)) == ["empty.conf",
                                                                          "link.db"]


def test_a_dangling_symlink_is_refused_and_leaves_no_file(tmp_path):
    """An outside tester: `--state` a symlink to a file that does not exist created that
    file, then said it left the path untouched."""
    link = tmp_path / "dangle.db"
    link.symlink_to(tmp_path / "nonexist.db")
    with pytest.raises(StoreError, match="symlink to .*nonexist.db, which does not exist"):
        ReservationStore(link, fabric="two-dc")
    assert sorted(os.listdir(tmp_path)) == ["dangle.db"]


# A controller's store that saves one reservation and waits to be killed (-9).
A_CONTROLLER = """
import sys, time
from dcilab.app.service import ControllerService
from dcilab.core import FabricController
from dcilab.fabric import load_fabric
from dcilab.resources import topology_arg
from dcilab.store.sqlite import ReservationStore
from dcilab.te.reservations import ReservationRequest
store = ReservationStore(sys.argv[1], fabric="two-dc")
service = ControllerService(FabricController(load_fabric(topology_arg("two-dc"))), store=store)
service.reserve(ReservationRequest("dc1-h1", "dc2-h1", 1.0))
print("saved", flush=True)
time.sleep(600)
"""


def _request(i: int) -> ReservationRequest:
    return ReservationRequest("dc1-h1", "dc2-h1", 1.0, request_id=f"q{i}")


def test_a_log_left_by_the_file_once_at_the_path_is_never_replayed_into_another(
        fabric, tmp_path):
    """An outside tester restored a backup over a state file while (or after) its controller
    ran: SQLite replayed that controller's write-ahead log into the backup, whose two
    reservations were lost for good. Now the start is refused and nothing is written."""
    import shutil
    backup = tmp_path / "backup.db"
    with ReservationStore(backup, fabric="two-dc") as store:
        service = ControllerService(FabricController(fabric), store=store)
        kept = service.reserve(_request(1)).reservation_id
    state = tmp_path / "r.db"
    controller_a = subprocess.Popen(            # a controller A, its file at the path
        [sys.executable, "-c", A_CONTROLLER, str(state)], stdout=subprocess.PIPE, text=True)
    try:
        assert controller_a.stdout.readline().strip() == "saved"
        assert Path(f"{state}-wal").stat().st_size > 0
        restored = tmp_path / "other.db"
        shutil.copy(backup, restored)
        os.replace(restored, state)                        # the backup put back at the path
        before = _sha1(state)
        with pytest.raises(StoreError, match=r"r\.db-wal was written for the file that was "
                                             r"at this path before \(the controller of pid "
                                             r"\d+ wrote it\)"):
            ReservationStore(state, fabric="two-dc")
        assert _sha1(state) == before
    finally:
        controller_a.kill()                                # killed: its log stays
        controller_a.wait(10)
    with pytest.raises(StoreError, match=r"If you put a backup here, remove .*r\.db-wal "
                                         r"and its -shm"):
        ReservationStore(state, fabric="two-dc")
    assert _sha1(state) == before
    for suffix in ("-wal", "-shm"):
        os.replace(f"{state}{suffix}", tmp_path / f"aside{suffix}")
    with ReservationStore(state, fabric="two-dc") as store:
        assert [r.reservation_id for r in store.load_live()] == [kept]


def test_a_start_on_a_removed_files_path_names_its_controller_and_keeps_its_log(tmp_path):
    """An outside tester removed a running controller's state file and started another on
    the path: 'disk I/O error', and the refused start deleted the first one's -wal and
    -shm, which it had not made."""
    state = tmp_path / "x.db"
    controller_a = subprocess.Popen(
        [sys.executable, "-c", A_CONTROLLER, str(state)], stdout=subprocess.PIPE, text=True)
    try:
        assert controller_a.stdout.readline().strip() == "saved"
        os.unlink(state)
        with pytest.raises(StoreError, match=r"x\.db-wal was written for the file that was "
                                             r"at this path before"):
            ReservationStore(state, fabric="two-dc")
        assert sorted(os.listdir(tmp_path)) == ["x.db-shm", "x.db-wal"]
    finally:
        controller_a.kill()
        controller_a.wait(10)


def test_a_file_copied_or_moved_with_its_log_is_one_and_opens_whole(tmp_path):
    """An outside tester copied a killed controller's file with its -wal and -shm (all its
    records still in the log) elsewhere: refused, and the advice given lost them all."""
    import shutil
    state = tmp_path / "a" / "f.db"
    state.parent.mkdir()
    controller_a = subprocess.Popen(
        [sys.executable, "-c", A_CONTROLLER, str(state)], stdout=subprocess.PIPE, text=True)
    try:
        assert controller_a.stdout.readline().strip() == "saved"
    finally:
        controller_a.kill()
        controller_a.wait(10)
    copy = tmp_path / "b"
    copy.mkdir()
    for suffix in ("", "-wal", "-shm"):
        shutil.copy(f"{state}{suffix}", f"{copy / 'f.db'}{suffix}")
    with ReservationStore(copy / "f.db", fabric="two-dc") as store:
        assert len(store.load_live()) == 1


def test_a_crashed_controllers_log_is_replayed_into_its_own_file(fabric, tmp_path):
    state = tmp_path / "r.db"
    store = ReservationStore(state, fabric="two-dc")
    service = ControllerService(FabricController(fabric), store=store)
    rid = service.reserve(_request(3)).reservation_id
    store._db.close()                                      # killed: the log holds it
    store._reader.close()
    store._drop_lock()
    with ReservationStore(state, fabric="two-dc") as again:
        assert [r.reservation_id for r in again.load_live()] == [rid]


def test_a_path_of_megabytes_is_refused_by_its_length_not_parsed(made):
    """A well-formed list of 150 000 hops (6 MB) filled memory when its JSON was walked:
    a path's text is bounded first."""
    path, live, _ = made
    hops = "[" + ",".join('["dc1-leaf1",1,"l",null]' for _ in range(150_000)) + "]"
    _edit(path, "UPDATE reservations SET hops = ? WHERE reservation_id = ?", hops, live)
    before = _sha1(path)
    with pytest.raises(StoreError, match=f"reservation '{live}': hops .* of at most "
                                         f"1048576 characters"):
        ReservationStore(path, fabric="two-dc")
    assert _sha1(path) == before


def test_a_damaged_page_is_found_at_start_not_at_the_first_booking(made, caplog):
    """An outside tester broke the listing index's page: the controller started cleanly,
    then every ReservePath answered INTERNAL "malformed" and the log said nothing."""
    path, *_ = made
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = "
                      "'reservations_listing'").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)
    with pytest.raises(StoreError, match=r"state file .* is damaged \(SQLite's quick_check: "):
        ReservationStore(path, fabric="two-dc")


def test_the_log_is_cut_back_after_a_checkpoint(tmp_path):
    """A soak tester's -wal grew to its busiest stretch's 13 MB and stayed: SQLite keeps
    it unless given a journal size limit."""
    from dcilab.store.sqlite import WAL_LIMIT_BYTES, ReservationStore
    store = ReservationStore(tmp_path / "s.db", fabric="f")
    try:
        assert store._db.execute("PRAGMA journal_size_limit").fetchone()[0] == WAL_LIMIT_BYTES
    finally:
        store.close()
