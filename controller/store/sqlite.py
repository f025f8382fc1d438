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
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
from pathlib import Path

from ..te.reservations import (Protection, Reservation, ReservationRequest, ReservedHop,
                               Selector, State)

SCHEMA_VERSION = 4

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
    # 3: failures. A reservation has a priority (restored highest first) and, while
    # DEGRADED, the reason; restoration decisions (new path, DEGRADED) survive a restart.
    """
    ALTER TABLE reservations ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE reservations ADD COLUMN reason TEXT NOT NULL DEFAULT '';
    """,
    # 4: a reservation may name its traffic (selector, JSON [ip_proto, port_min, port_max,
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


_LIVE = (State.PENDING.value, State.ACTIVE.value, State.DEGRADED.value)
_ENDED = (State.RELEASED.value, State.EXPIRED.value)


class StoreError(Exception):
    """The state file cannot be used; the message says which file and why."""


def default_state_path() -> Path:
    """$XDG_DATA_HOME/dcilab/state.db, or ~/.local/share/dcilab/state.db."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "dcilab" / "state.db"


class ReservationStore:
    """Every reservation ever admitted, by id. Safe to call from any thread."""

    def __init__(self, path: Path | str, synchronous: str = "FULL"):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None)   # explicit transactions
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: cannot use write-ahead logging (got {mode})")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open state file {self.path}: {exc}") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"state file {self.path} has schema version {version}, newer than "
                             f"this dcilab's {SCHEMA_VERSION}; use a newer dcilab or another "
                             f"--state file")
        for step in range(version, SCHEMA_VERSION):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _MIGRATIONS[step].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={step + 1}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    def save(self, res: Reservation) -> None:
        """Insert or replace `res`; durable when this returns."""
        self.save_many([res])

    def save_many(self, reservations: list[Reservation]) -> None:
        """Insert or replace each, in order, in one transaction: one fsync for all."""
        placeholders = ", ".join("?" for _ in _COLUMNS)
        updates = ", ".join(f"{c}=excluded.{c}" for c in _COLUMNS[1:])
        statement = (f"INSERT INTO reservations ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "
                     f"ON CONFLICT(reservation_id) DO UPDATE SET {updates}")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(statement, [_row(r) for r in reservations])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _select(self, where: str = "", params: tuple = ()) -> list[Reservation]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM reservations {where} "
                                    f"ORDER BY created_at, reservation_id", params).fetchall()
        return [_reservation(row) for row in rows]

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
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM reservations WHERE state IN "
                                    "(?, ?) GROUP BY state", _ENDED).fetchall()
        return {State(state): n for state, n in rows}

    def max_meter_id(self) -> int:
        """The highest meter id ever given (0 if none): later runs must not reuse it."""
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(meter_id), 0) FROM reservations"
                                    ).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

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
        except (sqlite3.Error, StoreError) as exc:
            error = StoreError(f"could not save reservations to {self.store.path}: {exc}")
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


def _hops(text: str) -> tuple[ReservedHop, ...]:
    return tuple(ReservedHop(s, p, l, w) for s, p, l, w in json.loads(text))
