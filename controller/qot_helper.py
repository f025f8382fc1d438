"""GNPy's import on the other core: a helper process that propagates for a command.

Importing GNPy (numpy, scipy, its YANG models) takes over a second of one CPU, more than
`dcilab plan` spends on everything else. The plan command starts this helper first: the
forked child imports GNPy while the parent imports and reads the rest, then answers the
parent's propagations (`optics._gnpy.delegate`) over a pipe. Every figure is still
GNPy's, computed by the same function. When both cores are busy there is nothing to gain,
but nothing is lost either.

Whatever happens to the helper, the command goes on: a helper that died (killed, out of
memory), answers nothing within HELPER_WAIT_S, or an exchange broken off (Ctrl-C) is
dropped for good and the command propagates in its own process, so no answer can ever
reach the wrong request. The child ignores Ctrl-C (the parent's to handle) and ends when
the parent stops it, exits or dies.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import sys
import threading

from .optics import _gnpy

# The first answer waits for GNPy's import: seconds on a slow machine. A helper silent for
# this long is stuck (scipy's OpenBLAS retries a failing allocation forever under a
# memory limit), and is dropped.
HELPER_WAIT_S = 120.0


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
            if _gnpy.delegate is not self:
                return None                       # dropped meanwhile
            try:
                answer = self._exchange((line, carriers, launch_power_dbm))
            except BaseException:                 # Ctrl-C mid-exchange: its answer would
                self.stop()                       # reach the next request
                raise
            if answer is None:
                self.stop()
                return None
        ok, value = answer
        if not ok:
            raise value
        return value

    def _exchange(self, request):
        """Send one request and wait for its answer; None if the helper is gone or silent.
        SIGPIPE is held off while sending: a command that restored its default action
        (`dcilab` does, for `| head`) would otherwise die writing to a dead helper."""
        if not self.process.is_alive():
            return None
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
        try:
            self.conn.send(request)
        except OSError:                           # EPIPE: it died
            return None
        finally:
            if signal.SIGPIPE not in held:
                signal.sigtimedwait({signal.SIGPIPE}, 0)   # consume the one raised, if any
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
        waited = 0.0
        while not self.conn.poll(1.0):
            waited += 1.0
            if not self.process.is_alive() or waited >= HELPER_WAIT_S:
                return None
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def stop(self) -> None:
        """Drop the helper: later propagations run in this process."""
        if _gnpy.delegate is self:
            _gnpy.delegate = None
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5.0)
        self.conn.close()


def start() -> bool:
    """Start the helper, unless GNPy is loaded already or this process runs threads
    (forking a threaded process is unsafe); True if started."""
    if _gnpy.delegate is not None or "gnpy" in sys.modules or threading.active_count() > 1:
        return False
    _gnpy.delegate = _Helper()
    return True


def stop() -> None:
    """Stop the helper, if one runs (a command's end: nothing lingers in a library user's
    process)."""
    helper = _gnpy.delegate
    if isinstance(helper, _Helper):
        with helper.lock:
            helper.stop()


def _serve(conn, parents_end) -> None:
    parents_end.close()                    # the parent's exit then reaches us as end of file
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A SIGTERM to the process group (`timeout`) ends us quietly: not the parent's
    # handler, which unwinds a command and would print our traceback.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
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
            answer = (True, _gnpy.propagate(*args))
        except Exception as exc:           # raised again in the parent, as its own
            answer = (False, exc if _picklable(exc) else RuntimeError(repr(exc)))
        try:
            conn.send(answer)
        except OSError:                    # the parent is gone
            return


def _picklable(exc: Exception) -> bool:
    try:
        pickle.dumps(exc)
    except Exception:
        return False
    return True
