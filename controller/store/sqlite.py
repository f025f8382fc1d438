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

import contextlib
import errno
import fcntl
import functools
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from ..core.errors import INTERNAL, UNAVAILABLE, StoreError  # noqa: F401 (re-exported)
from ..te.reservations import (Protection, Reservation, ReservationRequest, ReservedHop,
                               Selector, State)

SCHEMA_VERSION = 5

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


# SQLite's primary result codes, in words a operator acts on; these are worth a retry once
# the operator has acted (UNAVAILABLE), anything else is a bug or a damaged file (INTERNAL).
_CAUSES = {"SQLITE_FULL": "disk full", "SQLITE_READONLY": "read-only",
           "SQLITE_IOERR": "I/O error", "SQLITE_BUSY": "busy (another writer)",
           "SQLITE_LOCKED": "locked", "SQLITE_CANTOPEN": "cannot open",
           "SQLITE_PERM": "permission denied", "SQLITE_CORRUPT": "corrupt",
           "SQLITE_NOTADB": "not a database"}
_TRANSIENT = {"SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_BUSY",
              "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_PERM"}



def sqlite_cause(exc: BaseException) -> tuple[str, str]:
    """(the cause in words, UNAVAILABLE or INTERNAL) of an sqlite3 error."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    primary = name.split("_")[0] + "_" + name.split("_")[1] if name.count("_") >= 1 else name
    words = _CAUSES.get(primary)
    text = f"{words} ({exc})" if words and words not in str(exc) else str(exc)
    return text, UNAVAILABLE if primary in _TRANSIENT else INTERNAL


def default_state_path(fabric: str | None = None) -> Path:
    """$XDG_DATA_HOME/dcilab/<fabric>.db, or ~/.local/share/dcilab/<fabric>.db: one file
    per fabric, so two fabrics' controllers never meet in one by default. Without a fabric
    name, state.db."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "dcilab" / (f"{fabric}.db" if fabric else "state.db")


# What a controller told about another fabric's state file does with it.
REFUSE, MIGRATE, DISCARD = "refuse", "migrate", "discard"


class ReservationStore:
    """Every reservation ever admitted, by id. Safe to call from any thread."""

    def __init__(self, path: Path | str, synchronous: str = "FULL", fabric: str | None = None,
                 other_fabric: str = REFUSE, lock: bool = True):
        """Open (or create) the state file at `path` for `fabric`. With `lock`, hold it
        exclusively until close (a second holder gets StoreError naming our PID). A file
        written for another fabric is refused, or (other_fabric=MIGRATE) adopted with its
        records, or (DISCARD) emptied; either way it is checked to be ours first."""
        self.path = Path(path)
        self.fabric = fabric
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._reader = None
        self._lock_fd: int | None = None
        self.previous_fabric: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of state file {self.path}: "
                             f"{exc.strerror}", UNAVAILABLE) from None
        try:
            if lock:
                self._take_lock()
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None)   # explicit transactions
        except sqlite3.Error as exc:
            self._drop_lock()
            raise StoreError(f"cannot open state file {self.path}: {sqlite_cause(exc)[0]}") \
                from None
        try:
            self._check_ours()              # reads only: nothing is written to a stranger
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: cannot use write-ahead logging (got {mode})")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
            self._claim(other_fabric)       # also proves the file can be written now
            # Reads have a connection (and a lock) of their own: in WAL mode they see the
            # last commit and never wait for the one being written, nor it for them.
            self._reader = sqlite3.connect(self.path, check_same_thread=False,
                                           isolation_level=None)
            self._reader.execute("PRAGMA query_only=1")
            self._reader.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:
            self._db.close()
            self._drop_lock()
            cause, code = sqlite_cause(exc)
            if "unable to open database file" in str(exc):
                cause += (f"; SQLite keeps {Path(self.path).name}-wal and -shm beside the "
                          f"state file: is {Path(self.path).resolve().parent} writable?")
            raise StoreError(f"cannot open state file {self.path}: {cause}", code) from None
        except BaseException:
            self._db.close()
            self._drop_lock()
            raise

    def _take_lock(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
            os.close(fd)
            raise StoreError(f"state file {self.path} is in use by another controller"
                             f"{self._holder()}; stop it or give this one another --state file",
                             UNAVAILABLE) from None
        self._lock_fd = fd

    def _holder(self) -> str:
        """' (pid N)' as the holder recorded it, if it can be read."""
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1)
            try:
                row = db.execute("SELECT value FROM dcilab_meta WHERE key = 'pid'").fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            return ""
        return f" (pid {row[0]})" if row else ""

    def _drop_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)           # closing the descriptor releases the flock
            self._lock_fd = None

    def _check_ours(self) -> None:
        """Refuse, before any write, a database that is not a dcilab state file."""
        tables = {name for (name,) in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if not tables and version == 0:
            return                            # new, or empty: ours to create
        if "reservations" not in tables or (version >= 3 and "dcilab_meta" not in tables):
            raise StoreError(f"{self.path} is not a dcilab state file (it holds "
                             f"{', '.join(sorted(tables)) or 'no tables'}, user_version "
                             f"{version}); it was left untouched: give --state another file")
        if version > SCHEMA_VERSION:
            raise StoreError(f"state file {self.path} has schema version {version}, newer than "
                             f"this dcilab's {SCHEMA_VERSION}; use a newer dcilab or another "
                             f"--state file")

    def _claim(self, other_fabric: str) -> None:
        """Record (or check) the fabric, and our PID, in one write."""
        recorded = self._db.execute("SELECT value FROM dcilab_meta WHERE key = 'fabric'"
                                    ).fetchone()
        recorded = recorded[0] if recorded else None
        with self._transaction():
            if self.fabric and recorded and recorded != self.fabric:
                if other_fabric == REFUSE:
                    raise StoreError(
                        f"state file {self.path} belongs to fabric {recorded!r}, not "
                        f"{self.fabric!r}: give --state another file, or --state-migrate to "
                        f"keep its reservations for {self.fabric!r} (each is checked "
                        f"against it), or --state-discard to drop them")
                self.previous_fabric = recorded
                if other_fabric == DISCARD:
                    self._db.execute("DELETE FROM reservations")
            # A migration is recorded once its reservations were found to fit
            # (`confirm_fabric`): a refused one leaves the file as it was.
            if self.fabric and not (self.previous_fabric and other_fabric == MIGRATE):
                self._db.execute("INSERT INTO dcilab_meta VALUES ('fabric', ?) "
                                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                 (self.fabric,))
            self._db.execute("INSERT INTO dcilab_meta VALUES ('pid', ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                             (str(os.getpid()),))

    def confirm_fabric(self) -> None:
        """Record our fabric as the file's (after a migration's records were checked)."""
        if not self.fabric:
            return
        with self._lock, self._failing("write"):
            self._db.execute("INSERT INTO dcilab_meta VALUES ('fabric', ?) ON CONFLICT(key) "
                             "DO UPDATE SET value = excluded.value", (self.fabric,))

    @property
    def recorded_fabric(self) -> str | None:
        with self._lock:
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
            cause, code = sqlite_cause(exc)
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
        with self._lock, self._failing("save to"), self._transaction():
            self._db.executemany(_UPSERT, rows)

    def prune(self, ended_before: float) -> int:
        """Forget reservations that ended before `ended_before` (unix s); how many."""
        with self._lock, self._failing("prune"), self._transaction():
            return self._db.execute("DELETE FROM reservations WHERE ended_at < ?",
                                    (ended_before,)).rowcount

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
        with self._read_lock, self._failing("read"):
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
        with self._read_lock:
            rows = self._reader.execute("SELECT state, COUNT(*) FROM reservations WHERE state IN "
                                    "(?, ?) GROUP BY state", _ENDED).fetchall()
        return {State(state): n for state, n in rows}

    def close(self) -> None:
        with self._lock, self._read_lock:
            if self._reader is not None:
                self._reader.close()
            self._db.close()
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
        try:
            self.store.save_many([r for rs, _ in batch for r in rs])
        except StoreError as exc:
            error = exc
        except sqlite3.Error as exc:
            cause, code = sqlite_cause(exc)
            error = StoreError(f"could not save reservations to {self.store.path}: {cause}",
                               code)
        except BaseException:
            error = StoreError("the commit was interrupted")
            raise
        finally:
            for _, pending in batch:
                pending.finish(error)
            with self._lock:
                if self._queue:
                    self._queue[0][1].wake.release()      # it leads; _committing stays
                else:
                    self._committing = False

    def close(self) -> None:
        """Commit what is queued; later submits are refused."""
        with self._lock:
            self._closed = True
            lead = not self._committing and bool(self._queue)
            if lead:
                self._committing = True
        if lead:
            self._lead()


class _Pending:
    """One submitted save; `wait()` returns once it is durable."""

    def __init__(self, commits: GroupCommit):
        self._commits = commits
        self.done = False
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
