"""Reservations in SQLite, so a controller that crashes comes back with every reservation.

One row per reservation, upserted on every change (the caller saves after each admission,
release, expiry or state change). The database runs in WAL mode: readers never block the
writer, and a commit is one append to the log.

`synchronous=FULL`: every commit fsyncs the log before `save` returns. With WAL, NORMAL
already survives a killed process (kill -9), but a power cut or kernel crash could roll
back the last commits: a client would hold a reservation id the restarted controller has
forgotten and whose bandwidth it may give to someone else. An acknowledged reservation is
a promise, so we pay the fsync (about 0.5 ms on the development machines; see
`dcilab bench --api`).

The schema is versioned with `PRAGMA user_version`: a newer file than this code knows is
refused rather than misread; older versions are migrated step by step in `_MIGRATIONS`.

A state file has one owner and one fabric. The controller holds an exclusive lock on it
(flock on the file itself, which SQLite's own POSIX locks leave alone) for as long as it
runs, and writes its PID and fabric into it; a second controller on the same file is
refused with that PID. A file that is not a dcilab state file is refused before anything
is written to it, and so is a file another fabric's controller wrote (unless told to
migrate or discard it).

Every failure says which file and why, in the words of the cause ("disk full",
"read-only") with `StoreError.code` telling the client whether to retry (unavailable) or
not (internal).
"""

from __future__ import annotations

from collections import Counter
import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
from pathlib import Path

from ..files import not_regular
from .location import default_state_path  # noqa: F401 (re-exported)
from ..core.errors import INTERNAL, UNAVAILABLE, StoreError  # noqa: F401 (re-exported)
from ..te.reservations import (MAX_BANDWIDTH_GBPS, MAX_DURATION_S, MAX_LATENCY_MS,
                               MAX_NAME_CHARS, MAX_REQUEST_ID_CHARS, Protection, Reservation,
                               ReservationRequest, ReservedHop, Selector, State,
                               shown)

log = logging.getLogger("dcilab.store")

SCHEMA_VERSION = 5
# PRAGMA application_id of the files dcilab makes ("DCIL"): what says a file is ours.
APPLICATION_ID = 0x4443494C
_SQLITE_MAGIC = b"SQLite format 3\x00"
WAL_HEADER_BYTES = 32                 # a log of no frames: nothing to replay

# _MIGRATIONS[n] takes a database at version n to version n + 1.
_MIGRATIONS = [
    """
    CREATE TABLE reservations (
        reservation_id  TEXT PRIMARY KEY,
        request_id      TEXT NOT NULL,
        state           TEXT NOT NULL,
        src_host        TEXT NOT NULL,
        dst_host        TEXT NOT NULL,
        bandwidth_gbps  REAL NOT NULL,
        max_latency_ms  REAL,
        duration_s      REAL NOT NULL,
        hops            TEXT NOT NULL,     -- JSON: [[switch, out_port, link, wavelength], ...]
        latency_ms      REAL NOT NULL,
        created_at      REAL NOT NULL,     -- unix seconds
        expires_at      REAL,
        meter_id        INTEGER NOT NULL
    );
    CREATE INDEX reservations_state ON reservations (state);
    """,
    # 2: the controller keeps only live reservations in memory and asks the store for
    # ended ones, by id or by request_id (a retried request must find its reservation).
    """
    CREATE INDEX reservations_request ON reservations (request_id) WHERE request_id != '';
    """,
    # 3: who owns the file (fabric, pid), when each reservation ended (history is kept for
    # a retention), and an index to page through a state's reservations in list order.
    """
    CREATE TABLE dcilab_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    ALTER TABLE reservations ADD COLUMN ended_at REAL;
    UPDATE reservations SET ended_at = COALESCE(expires_at, created_at)
        WHERE state IN ('RELEASED', 'EXPIRED');
    CREATE INDEX reservations_listing ON reservations (state, created_at, reservation_id);
    """,
    # 4: failures. A reservation has a priority (restored highest first) and, while
    # DEGRADED, the reason; restoration decisions (new path, DEGRADED) survive a restart.
    """
    ALTER TABLE reservations ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE reservations ADD COLUMN reason TEXT NOT NULL DEFAULT '';
    """,
    # 5: a reservation may name its traffic (selector, JSON [ip_proto, port_min, port_max,
    # dscp]; '' for the pair's aggregate), has a protection class, and, PROTECTED, a
    # standby path (JSON hops as `hops`).
    """
    ALTER TABLE reservations ADD COLUMN selector TEXT NOT NULL DEFAULT '';
    ALTER TABLE reservations ADD COLUMN protection TEXT NOT NULL DEFAULT 'RESTORABLE';
    ALTER TABLE reservations ADD COLUMN standby TEXT NOT NULL DEFAULT '[]';
    """,
]
assert len(_MIGRATIONS) == SCHEMA_VERSION

_COLUMNS = ("reservation_id", "request_id", "state", "src_host", "dst_host", "bandwidth_gbps",
            "max_latency_ms", "duration_s", "hops", "latency_ms", "created_at", "expires_at",
            "meter_id", "priority", "reason", "selector", "protection", "standby")


_CREATED_AT = _COLUMNS.index("created_at")


def _list_key(row: tuple) -> tuple[float, str]:
    return row[_CREATED_AT], row[0]


# Insert or replace; an ended one keeps the time it first ended (for the history's retention).
_UPSERT = (f"INSERT INTO reservations ({', '.join(_COLUMNS)}, ended_at) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)}, ?) "
           f"ON CONFLICT(reservation_id) DO UPDATE SET "
           f"{', '.join(f'{c}=excluded.{c}' for c in _COLUMNS[1:])}, "
           f"ended_at = COALESCE(reservations.ended_at, excluded.ended_at)")

_LIVE = (State.PENDING.value, State.ACTIVE.value, State.DEGRADED.value)
_ENDED = (State.RELEASED.value, State.EXPIRED.value)

# What the API can carry: a protobuf Timestamp holds 0001-01-01 to 9999-12-31; meter ids
# are counted up from 1 and stay under OpenFlow's OFPM_MAX (above it are its virtual
# meters; the API's is a uint32); a priority is the API's int32.
MIN_TIME_S, MAX_TIME_S = -62135596800, 253402300799
MAX_METER_ID = 0xFFFF0000
MIN_PRIORITY, MAX_PRIORITY = -2**31, 2**31 - 1
MAX_REASON_CHARS = 4096      # a DEGRADED reason is one sentence; a listing stays small
MAX_PORT = 2**32 - 1         # a hop's out_port is the API's uint32
# A path crosses at most every switch once (4 096), each hop under 200 characters.
MAX_HOPS_JSON_CHARS = 1 << 20


def _number(col: str, low: float, high: float) -> str:
    # typeof first: SQLite compares text with numbers without complaint ('abc' > 5).
    return f"typeof({col}) IN ('integer', 'real') AND {col} BETWEEN {low!r} AND {high!r}"


def _text(col: str, low: int, high: int) -> str:
    return f"typeof({col}) = 'text' AND length({col}) BETWEEN {low} AND {high}"


def _json_hops(col: str) -> str:
    """A JSON list of [switch, out_port, link, wavelength or null] (as `_hops_json`)."""
    bad_hop = ("h.type != 'array' OR json_array_length(h.value) != 4 "
               "OR json_type(h.value, '$[0]') != 'text' "
               "OR json_type(h.value, '$[1]') != 'integer' "
               f"OR json_extract(h.value, '$[1]') NOT BETWEEN 0 AND {MAX_PORT} "
               "OR json_type(h.value, '$[2]') != 'text' "
               "OR json_type(h.value, '$[3]') NOT IN ('text', 'null')")
    # Nested CASEs: json_each() raises on text that is not JSON, so it runs only on JSON,
    # and only on a path of sane length (a 6 MB list of hops filled memory in json_each).
    return (f"CASE WHEN typeof({col}) = 'text' AND length({col}) <= {MAX_HOPS_JSON_CHARS} "
            f"THEN CASE WHEN json_valid({col}) THEN "
            f"json_type({col}) = 'array' AND NOT EXISTS "
            f"(SELECT 1 FROM json_each({col}) AS h WHERE {bad_hop}) END END")


def _json_selector(col: str) -> str:
    """'' or [ip_proto, port_min, port_max, dscp or null], each within the API's fields."""
    parts = " AND ".join(f"json_type({col}, '$[{i}]') = 'integer' AND "
                         f"json_extract({col}, '$[{i}]') BETWEEN 0 AND {high}"
                         for i, high in ((0, 255), (1, 65535), (2, 65535)))
    return (f"CASE WHEN typeof({col}) = 'text' THEN {col} = '' OR CASE WHEN json_valid({col}) "
            f"THEN json_type({col}) = 'array' AND json_array_length({col}) = 4 AND {parts} "
            f"AND (json_type({col}, '$[3]') = 'null' OR (json_type({col}, '$[3]') = 'integer' "
            f"AND json_extract({col}, '$[3]') BETWEEN 0 AND 63)) END END")


def _one_of(col: str, values) -> str:
    return f"{col} IN ({', '.join(repr(v) for v in values)})"


# Every column of a record, the SQL that holds when its value can be served (by the API,
# to the switches) and what it must be: checked on every row, live or ended, at start.
# JSON columns are checked once per distinct value `v` (a pair's records share their path).
_VALID = (
    ("reservation_id", _text("reservation_id", 1, MAX_NAME_CHARS),
     f"text of 1 to {MAX_NAME_CHARS} characters"),
    ("request_id", _text("request_id", 0, MAX_REQUEST_ID_CHARS),
     f"text of at most {MAX_REQUEST_ID_CHARS} characters"),
    ("state", _one_of("state", [s.value for s in State]),
     f"one of {', '.join(s.value for s in State)}"),
    ("src_host", _text("src_host", 1, MAX_NAME_CHARS),
     f"a host name of 1 to {MAX_NAME_CHARS} characters"),
    ("dst_host", _text("dst_host", 1, MAX_NAME_CHARS),
     f"a host name of 1 to {MAX_NAME_CHARS} characters"),
    ("bandwidth_gbps", _number("bandwidth_gbps", 1e-300, MAX_BANDWIDTH_GBPS),
     f"a number above 0 and at most {MAX_BANDWIDTH_GBPS:g}"),
    ("max_latency_ms", "max_latency_ms IS NULL OR " + _number("max_latency_ms", 1e-300,
                                                              MAX_LATENCY_MS),
     f"null or a number above 0 and at most {MAX_LATENCY_MS:g}"),
    ("duration_s", _number("duration_s", 0.0, MAX_DURATION_S),
     f"a number of seconds from 0 to {MAX_DURATION_S:g}"),
    ("hops", _json_hops("v"), "a JSON list of [switch, out_port, link, wavelength] of at "
                              f"most {MAX_HOPS_JSON_CHARS} characters"),
    ("latency_ms", _number("latency_ms", 0.0, MAX_LATENCY_MS),
     f"a number from 0 to {MAX_LATENCY_MS:g}"),
    ("created_at", _number("created_at", MIN_TIME_S, MAX_TIME_S),
     "a time from 0001-01-01 to 9999-12-31 (unix seconds)"),
    ("expires_at", "expires_at IS NULL OR " + _number("expires_at", MIN_TIME_S, MAX_TIME_S),
     "null or a time from 0001-01-01 to 9999-12-31 (unix seconds)"),
    ("meter_id", f"typeof(meter_id) = 'integer' AND meter_id BETWEEN 1 AND {MAX_METER_ID}",
     f"an integer from 1 to {MAX_METER_ID} (OpenFlow's last meter)"),
    ("priority", f"typeof(priority) = 'integer' AND priority BETWEEN {MIN_PRIORITY} AND "
                 f"{MAX_PRIORITY}", f"an integer from {MIN_PRIORITY} to {MAX_PRIORITY}"),
    ("reason", _text("reason", 0, MAX_REASON_CHARS),
     f"text of at most {MAX_REASON_CHARS} characters"),
    ("selector", _json_selector("v"),
     "'' or a JSON list [ip_protocol, dst_port_min, dst_port_max, dscp]"),
    ("protection", _one_of("protection", [p.value for p in Protection]),
     f"one of {', '.join(p.value for p in Protection)}"),
    ("standby", _json_hops("v"), "a JSON list of [switch, out_port, link, wavelength] of at "
                                 f"most {MAX_HOPS_JSON_CHARS} characters"),
)
assert [c for c, _, _ in _VALID] == list(_COLUMNS)
_MUST = {col: must for col, _, must in _VALID}
# Columns whose values are read back as text (those checked against a fixed set are not).
_TEXT_COLUMNS = ("reservation_id", "request_id", "src_host", "dst_host", "hops", "reason",
                 "selector", "standby")

_BY_VALUE = ("hops", "selector", "standby")


def _invalid_rows() -> str:
    """SELECT rowid, reservation_id, the first column that fails its check, of each row
    that has one: one pass in SQLite, no Python object per row (the history can be long)."""
    bad_values = ", ".join(f"bad_{col}(v) AS (SELECT v FROM (SELECT DISTINCT {col} AS v FROM "
                           f"reservations) WHERE NOT coalesce({sql}, 0))"
                           for col, sql, _ in _VALID if col in _BY_VALUE)
    checks = " ".join(f"WHEN NOT coalesce({f'{col} NOT IN bad_{col}' if col in _BY_VALUE else sql}"
                      f", 0) THEN '{col}'" for col, sql, _ in _VALID)
    # The id as bytes: it may not be UTF-8 either.
    return (f"WITH {bad_values} SELECT rowid, CAST(reservation_id AS BLOB), bad FROM (SELECT "
            f"rowid, reservation_id, CASE {checks} END AS bad FROM reservations) "
            f"WHERE bad IS NOT NULL")


_INVALID = _invalid_rows()


# SQLite's primary result codes, in words a operator acts on; these are worth a retry once
# the operator has acted (UNAVAILABLE), anything else is a bug or a damaged file (INTERNAL).
_CAUSES = {"SQLITE_FULL": "disk full", "SQLITE_READONLY": "read-only",
           "SQLITE_IOERR": "I/O error", "SQLITE_BUSY": "busy (another writer)",
           "SQLITE_LOCKED": "locked", "SQLITE_CANTOPEN": "cannot open",
           "SQLITE_PERM": "permission denied", "SQLITE_CORRUPT": "corrupt",
           "SQLITE_NOTADB": "not a database"}
_TRANSIENT = {"SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_BUSY",
              "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_PERM"}
# A full disk is not always SQLITE_FULL: SQLite reports the -shm file it cannot extend as
# an I/O error (SHMSIZE), and some writes' ENOSPC as IOERR_WRITE.
_FULL_IOERRS = {"SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_WRITE", "SQLITE_IOERR_TRUNCATE",
                "SQLITE_IOERR_FSYNC"}
_LOW_SPACE_BYTES = 1 << 20


def sqlite_cause(exc: BaseException, path: Path | str | None = None) -> tuple[str, str]:
    """(the cause in words, UNAVAILABLE or INTERNAL) of an sqlite3 error; with the state
    file's `path`, an I/O error on a disk with no room left is said to be "disk full"."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    primary = name.split("_")[0] + "_" + name.split("_")[1] if name.count("_") >= 1 else name
    if primary == "SQLITE_IOERR" and name in _FULL_IOERRS and path is not None \
            and _read_only(Path(path)):
        primary = "SQLITE_READONLY"       # remounted read-only under it (errors=remount-ro)
    elif primary == "SQLITE_IOERR" and (name == "SQLITE_IOERR_SHMSIZE" or (
            name in _FULL_IOERRS and path is not None and _no_room(Path(path)))):
        primary = "SQLITE_FULL"
    words = _CAUSES.get(primary)
    text = f"{words} ({exc})" if words and words not in str(exc) else str(exc)
    return text, UNAVAILABLE if primary in _TRANSIENT else INTERNAL


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _no_room(path: Path) -> bool:
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < _LOW_SPACE_BYTES


@contextlib.contextmanager
def _memory_bound(path: Path):
    """A record too large to check in memory is a damaged file, said so, not a traceback."""
    try:
        yield
    except MemoryError:
        raise StoreError(f"state file {path}: a record is too large to check in memory; "
                         f"refusing to start", INTERNAL) from None


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _identity_text(identity: tuple[int, int]) -> str:
    """As the state file records its own (dcilab_meta 'file'): device:inode."""
    return f"{identity[0]}:{identity[1]}"


def _read_only_uri(path: Path) -> str:
    return f"file:{urllib.parse.quote(str(path))}?mode=ro"


def _flock_holder(fd: int) -> str:
    """' (pid N)' of the process holding the flock on `fd`'s file, from /proc/locks (Linux):
    found by the file itself, so also through a hard link, and without opening it."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode \
                        and fields[4].isdigit():
                    return f" (pid {fields[4]})"
    except OSError:
        pass
    return ""


def _layout(db: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """Each table's column names; a view or trigger as a name of its own (none of ours
    has one)."""
    out = {}
    for kind, name in db.execute("SELECT type, name FROM sqlite_master WHERE type != 'index' "
                                 "AND name NOT LIKE 'sqlite!_%' ESCAPE '!'"):
        if kind == "table":
            out[name] = tuple(c[1] for c in db.execute(f"PRAGMA table_info({_quoted(name)})"))
        else:
            out[f"{kind} {name}"] = ()
    return out


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=None)
def _schema_layout(version: int) -> dict[str, tuple[str, ...]]:
    """The tables a dcilab file of schema `version` has."""
    db = sqlite3.connect(":memory:")
    try:
        for step in range(version):
            db.executescript(_MIGRATIONS[step])
        return _layout(db)
    finally:
        db.close()


def _objects_of(path: Path) -> str:
    """What a database holds, for a refusal: its tables (and views, triggers)."""
    try:
        db = sqlite3.connect(_read_only_uri(path), uri=True, timeout=1)
        try:
            return ", ".join(sorted(_layout(db))) or "no tables"
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"nothing readable ({exc})"


def _shown(value) -> str:
    """A stored value in a message, cut: a damaged field may be a megabyte."""
    if isinstance(value, str):
        return shown(value)
    text = "null" if value is None else repr(value)
    return text if len(text) <= MAX_NAME_CHARS else f"{text[:MAX_NAME_CHARS]}..."


# What a controller told about another fabric's state file does with it.
REFUSE, MIGRATE, DISCARD = "refuse", "migrate", "discard"


WAL_LIMIT_BYTES = 16 * 1024 * 1024


class ReservationStore:
    """Every reservation ever admitted, by id. Safe to call from any thread."""

    def __init__(self, path: Path | str, synchronous: str = "FULL", fabric: str | None = None,
                 other_fabric: str = REFUSE, lock: bool = True):
        """Open (or create) the state file at `path` for `fabric`. With `lock`, hold it
        exclusively until close (a second holder gets StoreError naming our PID). A file
        written for another fabric is refused, or (other_fabric=MIGRATE) adopted with its
        records, or (DISCARD) emptied (of our fabric, the service ends those that no
        longer fit it, see ControllerService). Either way it is checked to be ours first,
        and its records to be servable."""
        self.path = Path(path)
        self.fabric = fabric
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._read_failing = ""                 # the last read failure logged
        self._identity: tuple[int, int] | None = None     # the file opened, once opened
        self._db = self._reader = None
        self._lock_fd: int | None = None
        self._created = False             # by us, in this start: removed if it fails
        # SQLite's files beside it that were there before this start: never removed by it
        self._found = {suffix for suffix in ("-wal", "-shm", "-journal")
                       if os.path.lexists(f"{path}{suffix}")}
        self.previous_fabric: str | None = None
        self.discarded = 0                # another fabric's records dropped (DISCARD)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of state file {self.path}: "
                             f"{exc.strerror}", UNAVAILABLE) from None
        try:
            self._open(synchronous, other_fabric, lock)
        except sqlite3.Error as exc:
            self._abandon()
            cause, code = sqlite_cause(exc, self.path)
            if "unable to open database file" in str(exc):
                cause += (f"; SQLite keeps {Path(self.path).name}-wal and -shm beside the "
                          f"state file: is {Path(self.path).resolve().parent} writable?")
            raise StoreError(f"cannot open state file {self.path}: {cause}", code) from None
        except UnicodeDecodeError:
            # SQLite's message about a damaged schema quotes its bytes, which Python then
            # cannot decode: the message itself is lost, not the fact.
            self._abandon()
            raise StoreError(f"cannot open state file {self.path}: its schema is damaged "
                             f"(names in it are not text); restore it from a backup, or move "
                             f"it aside to start with no reservations") from None
        except BaseException:
            self._abandon()
            raise

    @property
    def created(self) -> bool:
        """Whether this start made the file (it was not there): nothing was restored."""
        return self._created

    def _open(self, synchronous: str, other_fabric: str, lock: bool) -> None:
        self._refuse_special()              # /dev/null, a FIFO, a directory: never opened
        if lock:
            self._take_lock()
        else:
            self._created = not self.path.exists()
        self._check_log()                   # before SQLite replays a log into it
        marked = self._check_ours()         # reads only: nothing is written to a stranger
        self._db = sqlite3.connect(self.path, check_same_thread=False,
                                   isolation_level=None)   # explicit transactions
        self._check_version()
        if not marked:                      # before anything else: a crash leaves it ours
            self._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"{self.path}: cannot use write-ahead logging (got {mode})")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        # The log keeps the size of its busiest stretch unless told: cut back after each
        # checkpoint (a soak tester's grew to 13 MB and stayed).
        self._db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        self._check_records()               # before our PID goes in: a refusal writes nothing
        self._claim(other_fabric)           # proves the file can be written (or confirm_fabric)
        # Reads have a connection (and a lock) of their own: in WAL mode they see the
        # last commit and never wait for the one being written, nor it for them.
        self._reader = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None)
        self._reader.execute("PRAGMA query_only=1")
        self._reader.execute("PRAGMA busy_timeout=5000")
        self._identity = _identity(os.fstat(self._lock_fd) if self._lock_fd is not None
                                   else os.stat(self.path))

    def _here(self) -> bool:
        """Whether the path still names the file opened (yes while it is being opened)."""
        if self._identity is None:
            return True
        try:
            return _identity(os.stat(self.path)) == self._identity
        except OSError:
            return False

    def _still_ours(self, doing: str = "save to") -> None:
        """StoreError unless the path still names the file opened: renamed over or
        removed (its directory too) while in use, a commit would go to a file no restart
        reads, and report success; a read would show what no restart will."""
        if not self._here():
            raise StoreError(f"cannot {doing} state file {self.path}: it was removed or "
                             f"replaced while this controller used it; nothing more is "
                             f"saved: stop the controller, put its state file back at "
                             f"{self.path} and start it again (a start on a missing file "
                             f"begins an empty one, without these reservations)", INTERNAL)

    @contextlib.contextmanager
    def _reading(self):
        """A read of the file opened, under the read lock; a failure is a StoreError, and
        logged once for each cause in a row (a read's failure reaches only its client; a
        save's is logged by the service)."""
        with self._read_lock:
            try:
                self._still_ours("read")
                with self._failing("read"):
                    yield
            except StoreError as exc:
                if str(exc) != self._read_failing:
                    log.error("%s", exc)
                    self._read_failing = str(exc)
                raise
            self._read_failing = ""

    def _abandon(self) -> None:
        """After a failed start: close, remove the file if this start created it (a
        refused start on a full disk leaves no empty database behind), unlock."""
        for db in (self._reader, self._db):
            if db is not None:
                db.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            if (suffix and suffix not in self._found) or (not suffix and self._created):
                with contextlib.suppress(OSError):
                    os.unlink(f"{self.path}{suffix}")
        self._drop_lock()

    def _not_ours(self, why: str) -> StoreError:
        return StoreError(f"cannot open state file {self.path}: it is not a dcilab state file "
                          f"({why}); it was left untouched: give --state another file")

    def _refuse_special(self) -> None:
        """Only a regular file (or a new one) can be a state file: SQLite on /dev/null or
        a FIFO would fail late, with its journal created beside it."""
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            if os.path.islink(self.path):   # creating through it would leave a stray file
                raise self._not_ours(f"it is a symlink to {os.readlink(self.path)}, which "
                                     f"does not exist") from None
            return
        except OSError as exc:
            raise StoreError(f"cannot open state file {self.path}: {exc.strerror}",
                             UNAVAILABLE) from None
        if not stat.S_ISREG(mode):
            raise self._not_ours(f"it is {not_regular(mode)}, not a regular file")

    def _take_lock(self) -> None:
        try:
            fd = self._open_fd()
        except OSError as exc:
            code = UNAVAILABLE
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                try:                        # a read-only file: say so, not "cannot lock"
                    fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                    os.close(fd)
                    raise StoreError(f"state file {self.path} cannot be written: "
                                     f"{exc.strerror} (read-only)", code) from None
                except OSError:
                    pass
            raise StoreError(f"cannot open state file {self.path}: {exc.strerror}", code) \
                from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _flock_holder(fd) or self._holder()
            os.close(fd)
            raise StoreError(f"state file {self.path} is in use by another controller"
                             f"{holder}; stop it or give this one another --state file",
                             UNAVAILABLE) from None
        self._lock_fd = fd
        if not stat.S_ISREG(os.fstat(fd).st_mode):     # replaced since it was looked at
            raise self._not_ours("it is not a regular file")

    def _open_fd(self) -> int:
        """The file, read-write; `_created` says whether this call made it."""
        flags = os.O_RDWR | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            self._created = True
            return fd
        except FileExistsError:
            return os.open(self.path, flags | os.O_CREAT, 0o600)

    def _holder(self) -> str:
        """' (pid N)' as the holder recorded it, if it can be read. Only by the name the
        holder opened (SQLite follows a symlink, not a hard link): else the read would
        miss its log and leave a -wal and -shm of its own beside the link."""
        try:
            if os.stat(self.path).st_nlink != 1:
                return ""
            db = sqlite3.connect(_read_only_uri(self.path), uri=True, timeout=1)
            try:
                row = db.execute("SELECT value FROM dcilab_meta WHERE key = 'pid'").fetchone()
            finally:
                db.close()
        except (OSError, sqlite3.Error):
            return ""
        return f" (pid {row[0]})" if row else ""

    def _drop_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)           # closing the descriptor releases the flock
            self._lock_fd = None

    def _check_ours(self) -> bool:
        """Refuse, with reads only and before anything is written, a file that is not a
        dcilab state file. Ours: a new or empty file (False: not marked yet), one marked
        with our application_id (True), or one an earlier dcilab made before it marked
        them, known by its tables (False)."""
        try:
            with open(self.path, "rb") as f:
                header = f.read(100)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot open state file {self.path}: {exc.strerror}",
                             UNAVAILABLE) from None
        if not header:
            if os.path.islink(self.path):       # someone else's empty file, say a config
                raise self._not_ours("it is an empty file reached through a symlink; an "
                                     "empty file is adopted only by its own path")
            return False
        if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
            raise self._not_ours("it is not an SQLite database")
        app_id = int.from_bytes(header[68:72], "big")
        if app_id == APPLICATION_ID:
            return True
        if app_id:
            raise self._not_ours(f"it is another program's SQLite database, application_id "
                                 f"{app_id:#x}")
        wal = header[18] == 2
        if not wal and int.from_bytes(header[60:64], "big") == 0:
            raise self._not_ours(f"it holds {_objects_of(self.path)}, user_version 0")
        return self._check_layout()

    def _check_log(self) -> None:
        """Refuse a write-ahead log left beside the path by another file. SQLite replays
        the log it finds beside a file into it, whatever file it was written for: a backup
        renamed over a state file a controller used (running, or killed) would get that
        controller's records instead of its own. Every start records, in the log, the
        identities (device:inode) of the file and of its log: a file that changed while
        its log did not is another file beside this log (a file and log copied or moved
        together both change, and are one). Read-only: nothing is written."""
        wal = Path(f"{self.path}-wal")
        try:
            wal_st = wal.stat()
        except FileNotFoundError:
            return
        if wal_st.st_size <= WAL_HEADER_BYTES:                  # no frame: nothing to replay
            return
        try:
            st = os.fstat(self._lock_fd) if self._lock_fd is not None else os.stat(self.path)
        except FileNotFoundError:
            st = None
        meta: dict[str, str] = {}
        # New or emptied: the log is another's. Not read then: SQLite, reading an empty
        # file through a log, may remove the log when it closes.
        foreign = st is None or st.st_size == 0
        if not foreign:
            try:
                db = sqlite3.connect(_read_only_uri(self.path), uri=True, timeout=5)
                try:
                    if db.execute("SELECT count(*) FROM sqlite_master "
                                  "WHERE name = 'dcilab_meta'").fetchone()[0]:
                        meta = dict(db.execute("SELECT key, value FROM dcilab_meta WHERE "
                                               "key IN ('file', 'log', 'pid')").fetchall())
                finally:
                    db.close()
            except sqlite3.DatabaseError:             # the log does not fit this file
                foreign = True
        if not foreign and "file" in meta and "log" in meta:
            foreign = (meta["file"] != _identity_text(_identity(st))
                       and meta["log"] == _identity_text(_identity(wal_st)))
        if not foreign:
            return
        by = f" (the controller of pid {meta['pid']} wrote it)" if meta.get("pid") else ""
        raise StoreError(
            f"cannot open state file {self.path}: {wal} was written for the file that was "
            f"at this path before{by}, not for this one, and SQLite would replay it into "
            f"this one. Stop that controller if it still runs. If you put a backup here, "
            f"remove {wal} and its -shm: they hold the replaced file's changes. If you "
            f"moved the state file here without them, put back its own -wal instead. "
            f"(A backup is taken safely with the controller stopped, or with `sqlite3 "
            f"STATE \".backup COPY\"`.)", UNAVAILABLE)

    def _check_layout(self) -> bool:
        """A file without our application_id is ours if it has the tables of a dcilab
        schema version (read on a read-only connection: it may be a stranger's)."""
        uri = _read_only_uri(self.path)
        if not Path(f"{self.path}-wal").exists():
            # No log to read: immutable, or SQLite would create the -wal and -shm of a
            # WAL-mode stranger beside it even to read it (an outside tester's find).
            uri += "&immutable=1"
        db = sqlite3.connect(uri, uri=True, timeout=5)
        try:
            if db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
                return True                     # marked, in a log not yet checkpointed
            version = db.execute("PRAGMA user_version").fetchone()[0]
            layout = _layout(db)
        finally:
            db.close()
        if not 1 <= version <= SCHEMA_VERSION or layout != _schema_layout(version):
            tables = ", ".join(sorted(layout)) or "no tables"
            raise self._not_ours(f"it holds {tables}, user_version {version}")
        return False

    def _check_version(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"state file {self.path} has schema version {version}, newer than "
                             f"this dcilab's {SCHEMA_VERSION}; use a newer dcilab or another "
                             f"--state file")

    def _check_records(self) -> None:
        """Refuse a file holding a record the API could not serialize (or the switches
        not take): every row, live or ended, in one pass; each named with the field."""
        problems, count = [], 0
        with self._failing("read"), _memory_bound(self.path):
            # A damaged page (an index, say) would start cleanly and then fail every
            # booking that reads it: found here instead (an outside tester's).
            damage = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
            if damage != ["ok"]:
                raise StoreError(f"state file {self.path} is damaged (SQLite's quick_check: "
                                 f"{'; '.join(damage)[:300]}): restore it from a backup, or "
                                 f"move it aside to start with no reservations")
            reported = set()
            for rowid, rid, column in self._db.execute(_INVALID):
                count += 1
                reported.add(rowid)
                rid = bytes(rid or b"").decode("utf-8", "replace")
                if len(problems) < 5:
                    # Text as bytes: it may not be UTF-8 as well.
                    value = self._db.execute(f"SELECT CASE WHEN typeof({column}) = 'text' "
                                             f"THEN CAST({column} AS BLOB) ELSE {column} END "
                                             f"FROM reservations WHERE rowid = ?",
                                             (rowid,)).fetchone()[0]
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    problems.append(f"reservation {_shown(rid)}: {column} {_shown(value)} "
                                    f"is not {_MUST[column]}")
            for rowid, rid, column in self._not_utf8(reported):
                count += 1
                if len(problems) < 5:
                    problems.append(f"reservation {_shown(rid)}: {column} holds bytes that "
                                    f"are not UTF-8 text")
            # A retry of one would be answered with either (only an edit makes two). Read
            # once every value is known to be text that decodes.
            duplicates = [] if problems else self._db.execute(
                "SELECT request_id, group_concat(reservation_id, ', ') FROM reservations "
                "WHERE request_id != '' AND state IN (?, ?, ?) GROUP BY request_id "
                "HAVING count(*) > 1", _LIVE)
            for request_id, ids in duplicates:
                count += 1
                if len(problems) < 5:
                    problems.append(f"reservations {_shown(ids)} are live with one "
                                    f"request_id {_shown(request_id)}")
        if problems:
            raise StoreError(
                f"state file {self.path}: {count} reservation(s) hold values that cannot be "
                f"served; refusing to start rather than answer for them with errors: "
                + "; ".join(problems) + (" ..." if count > len(problems) else ""))

    def _not_utf8(self, skip: set[int]):
        """(rowid, reservation id, column) of each row (but those in `skip`) with a text
        value that is not UTF-8: SQLite stores any bytes as text, and such a value fails
        every read that decodes it (an ended record's broke every listing of the history).
        Only rows with a byte beyond ASCII in some text column are decoded one by one."""
        joined = " || ".join(f"coalesce({col}, '')" for col in _TEXT_COLUMNS)
        blobs = ", ".join(f"CAST({col} AS BLOB)" for col in _TEXT_COLUMNS)
        rows = self._db.execute(f"SELECT rowid, CAST({joined} AS BLOB) FROM reservations")
        for rowid, text in rows:
            if isinstance(text, bytes) and not text.isascii() and rowid not in skip:
                values = self._db.execute(f"SELECT {blobs} FROM reservations WHERE rowid = ?",
                                          (rowid,)).fetchone()
                rid = bytes(values[0] or b"").decode("utf-8", "replace")
                for col, value in zip(_TEXT_COLUMNS, values):
                    try:
                        bytes(value or b"").decode("utf-8")
                    except UnicodeDecodeError:
                        yield rowid, rid, col
                        break

    def _claim(self, other_fabric: str) -> None:
        """Record (or check) the fabric, and our PID, in one write. A file of our fabric
        that holds reservations, or one migrated, is written nothing yet: its records are
        checked against our fabric first, and a refused start leaves the file as it was
        (`confirm_fabric` records us)."""
        recorded = self._db.execute("SELECT value FROM dcilab_meta WHERE key = 'fabric'"
                                    ).fetchone()
        recorded = recorded[0] if recorded else None
        if self.fabric and recorded and recorded != self.fabric:
            if other_fabric == REFUSE:
                raise StoreError(
                    f"state file {self.path} belongs to fabric {recorded!r}, not "
                    f"{self.fabric!r}: give --state another file, or --state-migrate to "
                    f"keep its reservations for {self.fabric!r} (each is checked "
                    f"against it), or --state-discard to drop them")
            self.previous_fabric = recorded
            if other_fabric == MIGRATE:
                return
        elif self.fabric and recorded == self.fabric and self._has_records():
            return          # ours: recorded once its records fit the fabric (confirm_fabric)
        with self._transaction():
            if self.previous_fabric:
                self.discarded = self._db.execute("DELETE FROM reservations").rowcount
            self._record_owner()

    def _has_records(self) -> bool:
        return self._db.execute("SELECT 1 FROM reservations LIMIT 1").fetchone() is not None

    def _record_owner(self) -> None:
        if self.fabric:
            self._db.execute("INSERT INTO dcilab_meta VALUES ('fabric', ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                             (self.fabric,))
        here = os.fstat(self._lock_fd) if self._lock_fd is not None else os.stat(self.path)
        owned = [("pid", str(os.getpid())), ("file", _identity_text(_identity(here)))]
        with contextlib.suppress(FileNotFoundError):      # WAL mode made it: it is ours
            owned.append(("log", _identity_text(_identity(os.stat(f"{self.path}-wal")))))
        for key, value in owned:
            self._db.execute("INSERT INTO dcilab_meta VALUES (?, ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                             (key, value))

    def probe(self) -> None:
        """A durable write of nothing that matters (when it was made): whether the file
        takes changes again, where no change is waiting to find out. StoreError if not,
        as for a save: a file replaced at its path is not one that takes them."""
        with self._lock:
            self._still_ours()
        with self._lock, self._failing("write to"), self._transaction():
            self._db.execute("INSERT INTO dcilab_meta VALUES ('probed', ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                             (repr(time.time()),))

    def confirm_fabric(self) -> None:
        """Record our fabric (and PID) as the file's, once its records were checked
        against it (what a migration waits for)."""
        with self._lock, self._failing("write"), self._transaction():
            self._record_owner()

    @property
    def recorded_fabric(self) -> str | None:
        with self._lock, self._failing("read"):
            row = self._db.execute("SELECT value FROM dcilab_meta WHERE key = 'fabric'"
                                   ).fetchone()
        return row[0] if row else None

    @contextlib.contextmanager
    def _transaction(self):
        """BEGIN IMMEDIATE .. COMMIT around the block, rolled back if anything in it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    @contextlib.contextmanager
    def _failing(self, doing: str):
        """An SQLite error in the block becomes a StoreError naming the file and the cause."""
        try:
            yield
        except sqlite3.Error as exc:
            cause, code = sqlite_cause(exc, self.path)
            raise StoreError(f"cannot {doing} state file {self.path}: {cause}", code) \
                from None

    def _rollback(self) -> None:
        # SQLite may already have rolled back (a full disk does): a second ROLLBACK would
        # fail with "no transaction is active" and hide the real cause.
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for step in range(version, SCHEMA_VERSION):
            with self._transaction():
                for statement in _MIGRATIONS[step].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={step + 1}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    def save(self, res: Reservation) -> None:
        """Insert or replace `res`; durable when this returns."""
        self.save_many([res])

    def save_many(self, reservations: list[Reservation]) -> None:
        """Insert or replace each, in order, in one transaction: one fsync for all.
        Raises StoreError naming the cause; nothing of the batch is then saved."""
        now = time.time()
        rows = [(*_row(r), None if r.state.live else now) for r in reservations]
        with self._lock:
            self._still_ours()
            with self._failing("save to"), self._transaction():
                self._db.executemany(_UPSERT, rows)

    def prune(self, ended_before: float) -> dict[State, int]:
        """Forget reservations that ended before `ended_before` (unix s); how many of each
        state (the history's counts keep to what it holds)."""
        with self._lock:
            self._still_ours()
            with self._failing("prune"), self._transaction():
                rows = self._db.execute("DELETE FROM reservations WHERE ended_at < ? "
                                        "RETURNING state", (ended_before,)).fetchall()
        return dict(Counter(State(state) for state, in rows))

    def page(self, states: tuple[State, ...], after: tuple[float, str] | None,
             limit: int) -> list[Reservation]:
        """Up to `limit` reservations in `states`, in list order (created_at,
        reservation_id), after the key `after` (exclusive). One index seek per state,
        merged here: `state IN (...)` would sort the whole history for every page. Only
        the rows of the page are turned into reservations."""
        rows: list[tuple] = []
        for state in states:
            where, params = "WHERE state = ?", (state.value,)
            if after is not None:
                where += " AND (created_at, reservation_id) > (?, ?)"
                params += tuple(after)
            rows += self._rows(where, params, limit)
        rows.sort(key=_list_key)
        return self._reservations(rows[:limit])

    def _rows(self, where: str = "", params: tuple = (), limit: int | None = None
              ) -> list[tuple]:
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        with self._reading():
            return self._reader.execute(f"SELECT {', '.join(_COLUMNS)} FROM reservations "
                                        f"{where} ORDER BY created_at, reservation_id{tail}",
                                        params).fetchall()

    def _select(self, where: str = "", params: tuple = (), limit: int | None = None
                ) -> list[Reservation]:
        return self._reservations(self._rows(where, params, limit))

    def _reservations(self, rows: list[tuple]) -> list[Reservation]:
        out = []
        for row in rows:
            try:
                out.append(_reservation(row))
            except (ValueError, TypeError, KeyError) as exc:
                raise StoreError(f"state file {self.path}: reservation {str(row[0])[:80]!r} "
                                 f"cannot be read ({exc})") from None
        return out

    def load_all(self) -> list[Reservation]:
        """Every stored reservation, oldest first."""
        return self._select()

    def load_live(self) -> list[Reservation]:
        """The reservations that were live (PENDING, ACTIVE, DEGRADED) when last saved,
        oldest first."""
        return self._select("WHERE state IN (?, ?, ?)", _LIVE)

    def ended(self, state: State | None = None) -> list[Reservation]:
        """RELEASED and EXPIRED reservations (or those of `state`), oldest first."""
        states = (state.value,) if state is not None else _ENDED
        return self._select(f"WHERE state IN ({', '.join('?' for _ in states)})", states)

    def get(self, reservation_id: str) -> Reservation | None:
        found = self._select("WHERE reservation_id = ?", (reservation_id,))
        return found[0] if found else None

    def find_request(self, request_id: str) -> Reservation | None:
        """The reservation admitted for `request_id`, if any."""
        found = self._select("WHERE request_id = ? AND request_id != ''", (request_id,))
        return found[-1] if found else None

    def count_ended(self) -> dict[State, int]:
        with self._reading():
            rows = self._reader.execute("SELECT state, COUNT(*) FROM reservations WHERE state IN "
                                        "(?, ?) GROUP BY state", _ENDED).fetchall()
        return {State(state): n for state, n in rows}

    def latest_created(self) -> float | None:
        """The latest creation time on record, live or ended (one index seek per state)."""
        with self._reading():
            times = [self._reader.execute("SELECT MAX(created_at) FROM reservations WHERE "
                                          "state = ?", (state.value,)).fetchone()[0]
                     for state in State]
        return max((t for t in times if t is not None), default=None)

    def close(self) -> None:
        with self._lock, self._read_lock:
            moved = not self._here()
            if self._reader is not None:
                self._reader.close()
            self._db.close()
            if moved:
                # SQLite keeps the log of a file that was renamed over or removed: left
                # beside the path, the next program to open what is there now would
                # replay our records into it. Its content belonged to the file gone.
                for suffix in ("-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.unlink(f"{self.path}{suffix}")
            self._drop_lock()

    def __enter__(self) -> "ReservationStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GroupCommit:
    """Saves from many threads, committed together (group commit, leader and followers).

    A caller submits what changed while it holds the controller's lock, so saves queue in
    the order the controller made them, then waits for durability after releasing it.
    A waiter that finds no commit running leads: it commits everything queued in one
    transaction (one fsync) while other threads go on admitting and queueing. When that
    commit ends, its savers are woken, and the oldest saver still queued is woken to lead
    the next one. With one client nothing is handed to another thread; with many, one
    fsync covers every save that queued during the previous one, and each thread is woken
    only when it has something to do (the GIL makes needless wake-ups expensive).
    """

    def __init__(self, store: ReservationStore):
        self.store = store
        self._queue: list[tuple[list[Reservation], "_Pending"]] = []
        self._lock = threading.Lock()
        self._committing = False          # a leader is committing, or has been named
        self.running_since: float | None = None     # when the commit running now began
        self._closed = False

    def submit(self, reservations: list[Reservation]) -> "_Pending":
        pending = _Pending(self)
        with self._lock:
            if self._closed:
                raise StoreError("the state store is closed")
            self._queue.append((list(reservations), pending))
        return pending

    def _wait(self, pending: "_Pending") -> None:
        # No timeout: the only thing waited for is a commit in this process, which SQLite's
        # busy timeout bounds; a waiter that gave up could be named leader and stall others.
        with self._lock:
            lead = not pending.done and not self._committing
            if lead:
                self._committing = True
            else:
                pending.waiting = True   # may be named the next leader
        if not lead:
            pending.wake.acquire()
            lead = not pending.done      # woken to lead the commit of its own save
        if lead:
            self._lead()
        if pending.error is not None:
            raise pending.error

    def _lead(self) -> None:
        """Commit everything queued, wake its savers, and name the next leader (if any)."""
        with self._lock:
            batch, self._queue = self._queue, []
        error = None
        self.running_since = time.monotonic()
        try:
            self.store.save_many([r for rs, _ in batch for r in rs])
        except StoreError as exc:
            error = exc
        except sqlite3.Error as exc:
            cause, code = sqlite_cause(exc, self.store.path)
            error = StoreError(f"could not save reservations to {self.store.path}: {cause}",
                               code)
        except BaseException:
            error = StoreError("the commit was interrupted")
            raise
        finally:
            self.running_since = None
            for _, pending in batch:
                pending.finish(error)
            with self._lock:
                # The oldest saver that waits leads next (_committing stays). One that
                # has not come to wait yet (or never will) is not named: it would stall
                # every save behind it (a soak tester's wedge); it leads once it waits,
                # or its save goes with the next leader's.
                after = next((p for _, p in self._queue if p.waiting), None)
                if after is not None:
                    after.wake.release()
                else:
                    self._committing = False

    def close(self, timeout_s: float = 10.0) -> None:
        """Commit what is queued, also behind a commit running now (its leader hands the
        rest to their savers; waited for up to `timeout_s`); later submits are refused."""
        with self._lock:
            self._closed = True
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._queue and not self._committing:
                    return                      # all committed, none running
                lead = bool(self._queue) and not self._committing
                if lead:
                    self._committing = True
            if lead:
                self._lead()
            else:
                time.sleep(0.005)


class _Pending:
    """One submitted save; `wait()` returns once it is durable."""

    def __init__(self, commits: GroupCommit):
        self._commits = commits
        self.done = False
        self.waiting = False              # its saver waits in `wait` (GroupCommit's lock)
        self.error: Exception | None = None
        self.wake = threading.Lock()
        self.wake.acquire()               # released once: durable, or "lead the next commit"

    def finish(self, error: Exception | None) -> None:
        self.error, self.done = error, True
        if self.wake.locked():
            self.wake.release()

    def wait(self) -> None:
        """Until durable; raises StoreError if the commit failed."""
        self._commits._wait(self)


@functools.lru_cache(maxsize=4096)
def _hops_json(hops: tuple[ReservedHop, ...]) -> str:
    # A host pair's reservations share one hops tuple, and a release rewrites the row.
    return json.dumps([[h.switch, h.out_port, h.link, h.wavelength] for h in hops])


def _row(res: Reservation) -> tuple:
    req = res.request
    return (res.reservation_id, req.request_id, res.state.value, req.src_host, req.dst_host,
            req.bandwidth_gbps, req.max_latency_ms, req.duration_s, _hops_json(res.hops),
            res.latency_ms, res.created_at, res.expires_at, res.meter_id, req.priority,
            res.reason, json.dumps(list(req.selector)) if req.selector else "",
            req.protection.value, _hops_json(res.standby))


def _reservation(row: tuple) -> Reservation:
    (rid, request_id, state, src, dst, gbps, max_latency, duration, hops, latency, created,
     expires, meter, priority, reason, selector, protection, standby) = row
    request = ReservationRequest(src, dst, gbps, max_latency, duration, request_id, priority,
                                 Selector(*json.loads(selector)) if selector else None,
                                 Protection(protection))
    return Reservation(rid, request, State(state), _hops(hops), latency, created, expires,
                       meter, reason, _hops(standby))


@functools.lru_cache(maxsize=4096)
def _hops(text: str) -> tuple[ReservedHop, ...]:
    # Immutable, and a host pair's reservations share their hops: parsed once per path.
    return tuple(ReservedHop(s, p, l, w) for s, p, l, w in json.loads(text))
