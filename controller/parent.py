"""A child process that stops when the process that started it dies (Linux's parent-death
signal), for a controller a run starts: killed with `kill -9` before its manifest named the
controller, a run left it serving with its ports open.

The child arms the signal itself, first thing at its start, when its environment names its
parent. A `preexec_fn` would do it in the fork before the exec, running Python in a copy of
a process whose other threads (gRPC's pollers, once a run has made a call) may hold locks:
such a fork died of SIGABRT in gRPC's poller."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

ENV = "DCILAB_STOP_WITH_PARENT"
_PR_SET_PDEATHSIG = 1


def env_for_child() -> dict[str, str]:
    """The environment of a child that is to stop with this process. The kernel sends the
    signal when the thread that started the child ends, so only the main thread asks."""
    env = dict(os.environ)
    env.pop(ENV, None)
    if threading.current_thread() is threading.main_thread():
        env[ENV] = str(os.getpid())
    return env


def arm_from_env() -> None:
    """SIGTERM to this process when the parent its environment names dies; exit at once
    if it already has. Its own children do not inherit the request."""
    parent = os.environ.pop(ENV, None)
    if parent is None or not parent.isdigit():
        return
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        print(f"dcilab: this process will not stop with its run (pid {parent}): "
              f"prctl: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    if os.getppid() != int(parent):        # it died before the line above
        os._exit(1)
