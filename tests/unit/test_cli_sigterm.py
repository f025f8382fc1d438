"""SIGTERM stops every dcilab command as Ctrl-C does, so what it built is removed:
`timeout`, `dcilab clean --force` and systemd stop with it (`train` left its emulation,
bridges and sync agents behind)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from dcilab.cli.stopping import StopSignal

COMMAND = """
import sys, time
import dcilab.cli.check as check

def run(args):                      # a command at work, with cleanup to do
    try:
        print("working", flush=True)    # inside: the signal may come at once
        time.sleep(60)
    finally:
        print("cleaned up", flush=True)

check.run = run
sys.argv = ["dcilab", "check", "two-dc"]
from dcilab.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_unwinds_a_command_and_exits_143(sig):
    """A hangup too (an SSH session gone): it killed `dcilab lab` outright, its bridges,
    namespace and controller left behind (a lifecycle tester's)."""
    proc = subprocess.Popen([sys.executable, "-c", COMMAND], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "working\n"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143                     # 128 + SIGTERM
    assert out == "cleaned up\n"
    assert err.strip().endswith("terminated")


def test_a_hangup_ignored_by_nohup_stays_ignored():
    # Ignored as nohup does, by a shell that then execs Python: a preexec_fn runs between
    # fork and exec, unsafe beside the threads earlier tests leave in this process (the
    # child once printed nothing at all in CI).
    proc = subprocess.Popen(["sh", "-c", 'trap "" HUP; exec "$0" -c "$1"', sys.executable,
                             COMMAND], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line == "working\n", (line, proc.poll(), line or proc.stderr.read()[-2000:])
        proc.send_signal(signal.SIGHUP)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1)                   # still working
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143 and out == "cleaned up\n"


def test_a_sigterm_inside_an_import_ends_as_terminated(monkeypatch, capsys):
    """SIGTERM while a C extension initialises (scipy's HiGHS, under GNPy) reaches the
    command as the ImportError it caused: a traceback, exit 1 (a lifecycle tester's)."""
    import dcilab.cli.check as check
    from dcilab.cli import main
    from dcilab.cli.stopping import Terminated

    def run(args):
        try:
            raise Terminated
        except Terminated as exc:
            raise ImportError("initialization failed") from exc
    monkeypatch.setattr(check, "run", run)
    assert main(["check", "two-dc"]) == 143
    assert capsys.readouterr().err.strip() == "terminated"


def test_an_error_in_cleanup_after_ctrl_c_is_still_seen(monkeypatch):
    """A reviewer's: any error whose context held the Ctrl-C was reported as a quiet
    'interrupted', a cleanup that failed among them."""
    import dcilab.cli.check as check
    from dcilab.cli import main

    def run(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("could not delete bridge tq0: device busy")
    monkeypatch.setattr(check, "run", run)
    with pytest.raises(RuntimeError, match="device busy"):
        main(["check", "two-dc"])


def test_a_stop_signal_inside_the_handling_of_another_takes_no_lock():
    """The controller's handler used to be `stop.set()`: a second signal arriving while
    the first handler's set() held the Event's lock waited on it forever, in one thread."""
    stop, signalled = threading.Event(), StopSignal()
    with stop._cond:                   # as inside a first handler's stop.set()
        signalled(signal.SIGTERM, None)    # returns: `stop.set()` here never did
    assert not stop.is_set()
    signalled.wait(stop)               # outside the handler: stop is set
    assert stop.is_set() and signalled.signum == signal.SIGTERM


@contextlib.contextmanager
def serving_controller(tmp_path, ignore_sigint: bool = False):
    """A `dcilab controller` on free ports, once it serves; killed if a test leaves it.
    With `ignore_sigint`, started with SIGINT ignored, as `cmd &` in a script does: by a
    shell that then execs Python, not a preexec_fn (a fork of this process, where other
    tests loaded gRPC, died of SIGABRT in gRPC's poller before its exec, in CI)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "controller.log"
    with open(log, "wb") as out:
        command = [sys.executable, "-m", "dcilab", "controller", "--topology",
                   "two-dc", "--grpc", f"127.0.0.1:{port}",
                   "--state", str(tmp_path / "state.db"), "--openflow", "127.0.0.1:0",
                   "--metrics", "127.0.0.1:0"]
        if ignore_sigint:
            command = ["sh", "-c", 'trap "" INT; exec "$0" "$@"', *command]
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while b"gRPC API listening" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_controller_under_a_burst_of_sigterms_stops_cleanly(tmp_path):
    with serving_controller(tmp_path) as (proc, log):
        time.sleep(1.0)                # into its wait for a stop
        for _ in range(200):           # a tester's 30 `kill`s hung 1 run in 3
            os.kill(proc.pid, signal.SIGTERM)
            time.sleep(0.0002)
        assert proc.wait(timeout=20) == 0, log.read_text()


def test_a_controller_started_with_sigint_ignored_keeps_ignoring_it(tmp_path):
    """`dcilab controller ... &` in a script ignores SIGINT; it set its own handler, so
    Ctrl-C of the foreground job (a lab beside it) stopped it (a CLI auditor's)."""
    with serving_controller(tmp_path, ignore_sigint=True) as (proc, log):
        os.kill(proc.pid, signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
        os.kill(proc.pid, signal.SIGTERM)                  # what stops it
        assert proc.wait(timeout=20) == 0, log.read_text()


def test_a_state_file_in_a_directory_that_does_not_exist_is_refused(tmp_path, capsys):
    from dcilab.cli import main
    state = tmp_path / "typo" / "state.db"
    assert main(["controller", "--topology", "two-dc", "--state", str(state)]) == 2
    assert f"--state: directory {state.parent} does not exist" in capsys.readouterr().err
    assert not state.parent.exists()
