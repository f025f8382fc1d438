"""Errors that cross from one adapter to another through the service: defined here, below
them all, so the gRPC adapter can map a failed save without importing the store."""

from __future__ import annotations

UNAVAILABLE = "unavailable"     # the cause lies outside: disk full, read-only, I/O
INTERNAL = "internal"


class StoreError(Exception):
    """The state file cannot be used; the message says which file and why. `code` is
    UNAVAILABLE when the cause lies outside (disk full, read-only, I/O), INTERNAL else."""

    def __init__(self, message: str, code: str = INTERNAL):
        super().__init__(message)
        self.code = code
