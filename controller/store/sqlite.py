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

import json
import os
import sqlite3
import threading
from pathlib import Path

from ..te.reservations import Reservation, ReservationRequest, ReservedHop, State

SCHEMA_VERSION = 1

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
]
assert len(_MIGRATIONS) == SCHEMA_VERSION

_COLUMNS = ("reservation_id", "request_id", "state", "src_host", "dst_host", "bandwidth_gbps",
            "max_latency_ms", "duration_s", "hops", "latency_ms", "created_at", "expires_at",
            "meter_id")


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

    def load_all(self) -> list[Reservation]:
        """Every stored reservation, oldest first."""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM reservations "
                                    f"ORDER BY created_at, reservation_id").fetchall()
        return [_reservation(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "ReservationStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GroupCommit:
    """Saves from many threads, committed together by one writer thread (group commit).

    A caller submits what changed while it holds the controller's lock, then waits for the
    commit after releasing it: admissions go on while the log is fsynced, and one fsync
    covers every save that queued meanwhile. Saves commit in submission order.
    """

    def __init__(self, store: ReservationStore):
        self.store = store
        self._queue: list[tuple[list[Reservation], "_Pending"]] = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._write, name="dcilab-store", daemon=True)
        self._thread.start()

    def submit(self, reservations: list[Reservation]) -> "_Pending":
        pending = _Pending()
        with self._wake:
            if self._closed:
                raise StoreError("the state store is closed")
            self._queue.append((list(reservations), pending))
            self._wake.notify()
        return pending

    def _write(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                batch, self._queue = self._queue, []
                if not batch and self._closed:
                    return
            error = None
            try:
                self.store.save_many([r for rs, _ in batch for r in rs])
            except (sqlite3.Error, StoreError) as exc:
                error = StoreError(f"could not save reservations to {self.store.path}: {exc}")
            for _, pending in batch:
                pending.finish(error)

    def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=10)


class _Pending:
    def __init__(self):
        self._done = threading.Event()
        self._error: Exception | None = None

    def finish(self, error: Exception | None) -> None:
        self._error = error
        self._done.set()

    def wait(self, timeout: float | None = 30.0) -> None:
        """Until durable; raises StoreError if the commit failed or took too long."""
        if not self._done.wait(timeout):
            raise StoreError("the state store did not commit in time")
        if self._error is not None:
            raise self._error


def _row(res: Reservation) -> tuple:
    req = res.request
    hops = json.dumps([[h.switch, h.out_port, h.link, h.wavelength] for h in res.hops])
    return (res.reservation_id, req.request_id, res.state.value, req.src_host, req.dst_host,
            req.bandwidth_gbps, req.max_latency_ms, req.duration_s, hops, res.latency_ms,
            res.created_at, res.expires_at, res.meter_id)


def _reservation(row: tuple) -> Reservation:
    (rid, request_id, state, src, dst, gbps, max_latency, duration, hops, latency, created,
     expires, meter) = row
    request = ReservationRequest(src, dst, gbps, max_latency, duration, request_id)
    return Reservation(rid, request, State(state),
                       tuple(ReservedHop(s, p, l, w) for s, p, l, w in json.loads(hops)),
                       latency, created, expires, meter)
