"""GNPy's import on the other core: a helper process that propagates for a command.

Importing GNPy (numpy, scipy, its YANG models) takes over a second of one CPU, more than
`dcilab plan` spends on everything else. The plan command starts this helper first: the
forked child imports GNPy while the parent imports and reads the rest, then answers the
parent's propagations (`optics._gnpy.delegate`) over a pipe. Every figure is still
GNPy's, computed by the same function. When both cores are busy there is nothing to gain,
but nothing is lost either.

A command with many independent lines (`plan` of many site pairs) may start two helpers:
each propagation goes to one that is free, so two lines propagate at once, one per core.

Whatever happens to the helper, the command goes on: a helper that died (killed, out of
memory), answers nothing within HELPER_WAIT_S, or an exchange broken off (Ctrl-C) is
dropped for good and the command propagates in its own process, so no answer can ever
reach the wrong request. The child ignores Ctrl-C (the parent's to handle) and ends when
the parent stops it, exits or dies.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import signal
import sys
import threading

from .optics import _gnpy

# The first answer waits for GNPy's import: seconds on a slow machine. A helper silent for
# this long is stuck (scipy's OpenBLAS retries a failing allocation forever under a
# memory limit), and is dropped.
HELPER_WAIT_S = 120.0
# This process's ends of its helpers' pipes. A helper forked later holds copies of those
# made before it: it closes them, or an earlier helper would see no end of file when this
# process dies, and wait for the later one to end.
_PARENT_ENDS: list = []


class _Helper:
    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, self.conn),
                                       name="dcilab-gnpy", daemon=True)
        self.process.start()
        theirs.close()
        _PARENT_ENDS.append(self.conn)     # a helper forked after this one closes its copy
        self.lock = threading.Lock()
        self.dropped = False

    def __call__(self, line, carriers, launch_power_dbm):
        with self.lock:
            if self.dropped:
                return None
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
        """Drop the helper for good."""
        self.dropped = True
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5.0)
        self.conn.close()
        if self.conn in _PARENT_ENDS:
            _PARENT_ENDS.remove(self.conn)


class _Helpers:
    """The delegate: each propagation goes to a helper that is free. One dropped leaves
    the others; with none left, later propagations run in this process."""

    def __init__(self, count: int) -> None:
        self.helpers = [_Helper() for _ in range(count)]
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for helper in self.helpers:
            self._free.put(helper)

    @property
    def width(self) -> int:
        """How many propagations may run at once."""
        return sum(not h.dropped for h in self.helpers)

    def __call__(self, line, carriers, launch_power_dbm):
        while self.width:
            try:
                helper = self._free.get(timeout=1.0)
            except queue.Empty:
                continue                          # all busy: wait for one
            try:
                answer = helper(line, carriers, launch_power_dbm)   # GNPy's error raises
            finally:
                if not helper.dropped:
                    self._free.put(helper)
            if not helper.dropped:
                return answer
        if _gnpy.delegate is self:
            _gnpy.delegate = None
        return None

    def stop(self) -> None:
        if _gnpy.delegate is self:
            _gnpy.delegate = None
        for helper in self.helpers:
            with helper.lock:
                helper.stop()


def start(count: int = 1) -> int:
    """Start `count` helpers, unless GNPy is loaded already or this process runs threads
    (forking a threaded process is unsafe); how many propagations may run at once (0: none
    started)."""
    if _gnpy.delegate is not None or "gnpy" in sys.modules or threading.active_count() > 1:
        return 0
    _gnpy.delegate = _Helpers(count)
    return count


def widen(count: int) -> int:
    """Helpers added, up to `count` in all, where `start` started some and this process
    still runs no threads; how many propagations may run at once now (0: no helpers)."""
    helpers = _gnpy.delegate
    if not isinstance(helpers, _Helpers):
        return 0
    if threading.active_count() == 1:
        for _ in range(count - len(helpers.helpers)):
            helper = _Helper()
            helpers.helpers.append(helper)
            helpers._free.put(helper)
    return helpers.width


def stop() -> None:
    """Stop the helpers, if any run (a command's end: nothing lingers in a library user's
    process)."""
    helpers = _gnpy.delegate
    if isinstance(helpers, _Helpers):
        helpers.stop()


def _serve(conn, parents_end) -> None:
    parents_end.close()                    # the parent's exit then reaches us as end of file
    for end in _PARENT_ENDS:               # the ends of helpers forked before us
        end.close()
    _gnpy.delegate = None                  # a helper forked after another propagates itself
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
