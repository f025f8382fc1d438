"""`dcilab clean` removes only the temporary directories a run recorded and that are ours."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from dcilab.emulation.cleanup import Manifest, _our_dirs


def test_only_recorded_temporary_dcilab_directories_are_ours(tmp_path):
    with tempfile.TemporaryDirectory(prefix="dcilab-") as ours, \
            tempfile.TemporaryDirectory(prefix="other-") as stranger:
        nested = tmp_path / "dcilab-nested"
        nested.mkdir()
        gone = str(Path(tempfile.gettempdir()) / "dcilab-gone-already")
        manifest = Manifest(1, "f", dirs=[ours, stranger, str(nested), gone, "/", "/tmp"])
        assert _our_dirs(manifest) == [ours]
    assert _our_dirs(None) == []


def test_a_run_is_live_only_while_the_process_that_started_it_runs():
    import os
    import subprocess
    import time

    from dcilab.emulation.cleanup import live_owner
    child = subprocess.Popen(["sleep", "30"])
    try:
        now = time.time()
        assert live_owner(Manifest(child.pid, "f", started=now + 1)) == child.pid
        assert live_owner(Manifest(child.pid, "f")) == child.pid   # a manifest without a start
        # The PID was reused: the process started well after the run did.
        assert live_owner(Manifest(child.pid, "f", started=now - 3600)) is None
        assert live_owner(Manifest(os.getpid(), "f", started=now)) is None  # our own run
    finally:
        child.kill()
        child.wait()
    assert live_owner(Manifest(child.pid, "f", started=now)) is None
    assert live_owner(None) is None


def test_a_run_cleans_up_only_while_no_other_live_run_has_recorded_itself(tmp_path,
                                                                           monkeypatch):
    import os
    import subprocess
    import time

    from dcilab.emulation import cleanup
    monkeypatch.setattr(cleanup, "MANIFEST", tmp_path / "emulation.json")
    mine = Manifest(os.getpid(), "f", started=time.time())
    assert cleanup.ours(mine)                          # nothing recorded
    mine.save()
    assert cleanup.ours(mine)                          # its own
    other = subprocess.Popen(["sleep", "30"])
    try:
        Manifest(other.pid, "g", started=time.time() + 1).save()
        assert not cleanup.ours(mine)                  # a live run started since
    finally:
        other.kill()
        other.wait()
    assert cleanup.ours(mine)                          # a dead one's leftovers: clean them


def test_stop_owner_ends_a_process_on_sigterm():
    import subprocess

    from dcilab.emulation.cleanup import pid_alive, stop_owner
    child = subprocess.Popen(["sleep", "30"])
    assert stop_owner(child.pid, grace_s=5.0)
    child.wait(5)
    assert not pid_alive(child.pid)


def test_processes_of_a_namespace_never_include_the_machines_own():
    """The lab stops what was started in its hosts by their network namespaces; a process
    in this one (a host not in a namespace of its own) must find nothing, or the stop
    would take the machine's every process with it."""
    import os
    import subprocess
    import sys

    from dcilab.emulation.cleanup import namespace_processes, stop_pids
    assert namespace_processes([os.getpid()]) == []
    assert namespace_processes([2 ** 22 + 12345]) == []          # no such process
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert namespace_processes([child.pid]) == []           # same namespace as ours
        stop_pids([child.pid], grace_s=5.0)
        assert child.wait(timeout=10) != 0                     # stopped by its PID
    finally:
        child.kill()


def test_a_process_started_before_the_build_is_in_the_first_manifest(tmp_path, monkeypatch):
    """A reviewer killed `dcilab demo` while the emulation was being built: the controller
    (started first) was in no manifest, and `dcilab clean` left it and its state directory
    running. It is recorded with the run's first manifest, before anything is built."""
    from dcilab.emulation import cleanup, network
    from dcilab.resources import topology_path
    from dcilab.fabric import load_fabric

    monkeypatch.setattr(cleanup, "MANIFEST", tmp_path / "emulation.json")
    monkeypatch.setattr(network, "ensure_ovs", lambda say: None)
    monkeypatch.setattr(network, "clean", lambda say: None)
    monkeypatch.setattr(network, "kernel_module_loaded", lambda: True)

    def killed_while_building(namespace):
        raise KeyboardInterrupt
    monkeypatch.setattr(network, "create_namespace", killed_while_building)
    emulation = network.Emulation(load_fabric(topology_path("four-dc-ring")), say=lambda m: None,
                                  adopted=[(4242, "dcilab controller", "/tmp/dcilab-x")])
    try:
        emulation.start()
    except KeyboardInterrupt:
        pass
    recorded = Manifest.load()
    assert recorded.processes == {4242: "dcilab controller"}
    assert recorded.dirs == ["/tmp/dcilab-x"]


def _child_of_a_killed_parent(child_code: str) -> int:
    """A parent that starts `child_code` with `parent.env_for_child()` (the child prints
    its pid), and is then killed with SIGKILL; the child's pid."""
    import subprocess
    import sys

    from dcilab.emulation.cleanup import pid_alive
    script = ("import subprocess, sys, time\n"
              "from dcilab import parent\n"
              f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}],\n"
              "                         env=parent.env_for_child())\n"
              "time.sleep(60)\n")
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(run.stdout.readline())
        assert pid_alive(child)
    finally:
        run.kill()
        run.wait()
    return child


def _gone_within(pid: int, seconds: float) -> bool:
    import time

    from dcilab.emulation.cleanup import pid_alive
    deadline = time.monotonic() + seconds
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_alive(pid)


def test_the_controller_a_run_starts_stops_when_the_run_is_killed_before_recording_it():
    """A re-tester's `kill -9` in a run's first seconds (the controller still starting,
    in no manifest yet): the controller stayed, its ports open. The kernel now stops it:
    the child arms the parent-death signal itself at its start (no preexec_fn, which ran
    Python in a fork of a process with gRPC's threads, and such a fork died of SIGABRT)."""
    child = _child_of_a_killed_parent(
        "import os, time\n"
        "from dcilab import parent\n"
        "parent.arm_from_env()\n"
        "assert parent.ENV not in os.environ   # its own children do not inherit it\n"
        "print(os.getpid(), flush=True)\n"
        "time.sleep(60)\n")
    assert _gone_within(child, 10)


def test_a_lab_controller_stops_when_its_run_is_killed(tmp_path):
    """The same through `ControllerProcess`, the `dcilab controller` a lab, demo or bench
    starts: kill -9 the run and the controller ends (by SIGTERM, as stopped by hand)."""
    import subprocess
    import sys

    script = ("import time\n"
              "from dcilab.lab import ControllerProcess, free_port\n"
              "from dcilab.resources import topology_path\n"
              "c = ControllerProcess(topology_path('two-dc'), free_port())\n"
              "print(c.proc.pid, c.state_dir, flush=True)\n"
              "c.wait_listening(60)\n"
              "print('listening', flush=True)\n"
              "time.sleep(120)\n")
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    state_dir = None
    try:
        pid, state_dir = run.stdout.readline().split()
        controller = int(pid)
        assert run.stdout.readline().strip() == "listening"
    finally:
        run.kill()
        run.wait()
    try:
        assert _gone_within(controller, 20)
    finally:
        # a run killed with no emulation has no manifest for `dcilab clean` to find its
        # state directory by: this test's to remove (it left one a run)
        if state_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


def test_a_child_that_does_not_arm_outlives_its_parent():
    """The test above asserts something: without the child's own step, it stays."""
    import os
    import signal

    child = _child_of_a_killed_parent("import os, time\nprint(os.getpid(), flush=True)\n"
                                      "time.sleep(60)\n")
    try:
        assert not _gone_within(child, 1)
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_child_whose_parent_died_before_it_armed_exits_at_once():
    """The parent the environment names is not its parent any more (it died while the child
    started, and the child was taken over): it ends at once rather than serve for good."""
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "from dcilab import parent\n"
                           "parent.arm_from_env()\nprint('still here')\n"],
                          env={**os.environ, "DCILAB_STOP_WITH_PARENT": "1"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "still here" not in done.stdout


def test_runs_starting_at_once_take_turns_to_look_and_record(tmp_path, monkeypatch):
    import threading

    from dcilab.emulation import cleanup
    monkeypatch.setattr(cleanup, "RUN_DIR", tmp_path / "run")
    monkeypatch.setattr(cleanup, "START_LOCK", tmp_path / "run" / "start.lock")
    order: list[str] = []

    def second():
        with cleanup.start_lock():
            order.append("second")

    with cleanup.start_lock():
        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive() and order == []     # waits while the first looks
        order.append("first")
    waiter.join(10)
    assert order == ["first", "second"]
