"""GNPy's import on the other core: a helper process that propagates for a command.

Importing GNPy (numpy, scipy, its YANG models) takes over a second of one CPU, more than
`dcilab plan` spends on everything else. The plan command starts this helper first: the
forked child imports GNPy while the parent imports and reads the rest, then answers the
parent's propagations (`optics._gnpy.delegate`) over a pipe. Every figure is still
GNPy's, computed by the same function. The child ignores Ctrl-C (the parent's to handle)
and ends when the parent closes its end or exits.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import sys
import threading

from .optics import _gnpy


class _Helper:
    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, self.conn),
                                       name="dcilab-gnpy", daemon=True)
        self.process.start()
        theirs.close()
        self.lock = threading.Lock()

    def __call__(self, line, carriers, launch_power_dbm):
        with self.lock:
            try:
                self.conn.send((line, carriers, launch_power_dbm))
                ok, value = self.conn.recv()
            except (EOFError, OSError):           # it died: propagate here from now on
                _gnpy.delegate = None
                self.conn.close()
                self.process.join(timeout=1.0)
                return None
        if not ok:
            raise value
        return value


def start() -> bool:
    """Start the helper, unless GNPy is loaded already or this process runs threads
    (forking a threaded process is unsafe); True if started."""
    if (_gnpy.delegate is not None or _gnpy.loaded() or "gnpy" in sys.modules
            or threading.active_count() > 1):
        return False
    _gnpy.delegate = _Helper()
    return True


def _serve(conn, parents_end) -> None:
    parents_end.close()                    # the parent's exit then reaches us as end of file
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _gnpy.delegate = None
    try:
        _gnpy.preload()
    except BaseException:                  # the parent, computing itself, says what is wrong
        return
    while True:
        try:
            args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((True, _gnpy.propagate(*args)))
        except Exception as exc:           # raised again in the parent, as its own
            conn.send((False, exc if _picklable(exc) else RuntimeError(repr(exc))))


def _picklable(exc: Exception) -> bool:
    try:
        pickle.dumps(exc)
    except Exception:
        return False
    return True
