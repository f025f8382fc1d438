"""`dcilab clean` after a run killed with -9: what was started in an emulated host (a
daemon typed at the lab's prompt) is stopped with the host, found by the network namespace
of the host's shell (an outside tester: `iperf3 -s -D` outlived `dcilab clean`)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from dcilab.emulation.cleanup import pid_alive, stop_listed_processes
from dcilab.gnmi.client import wait_until

pytestmark = pytest.mark.integration


def test_a_daemon_in_a_listed_hosts_namespace_is_stopped_with_it(tmp_path):
    tag = f"dlhost-{uuid.uuid4().hex[:8]}"        # what the "shell" names, as a manifest lists
    pidfile = tmp_path / "daemon.pid"
    # The host's shell: in a network namespace of its own, as Mininet's hosts are.
    shell = subprocess.Popen(["unshare", "--net", "--", sys.executable, "-c",
                              "import time, sys; time.sleep(120)", tag])
    daemon = None
    try:
        # Until the shell runs in its namespace: `unshare` has exec'd it. (Before the fork
        # execs `unshare`, the child's command line is still this process's, which has no
        # "unshare" either: the daemon then went in this namespace, 1 run in 25.)
        def in_its_namespace() -> bool:
            cmdline = open(f"/proc/{shell.pid}/cmdline").read()
            return tag in cmdline and "unshare" not in cmdline
        assert wait_until(in_its_namespace, 10)
        # A daemon started in that namespace, detached from everything (as `-D` does):
        # its parent is gone, only the namespace ties it to the host.
        subprocess.run(["nsenter", f"--net=/proc/{shell.pid}/ns/net", "--", "sh", "-c",
                        f"setsid sleep 120 >/dev/null 2>&1 & echo $! > {pidfile}"],
                       check=True, timeout=10)
        daemon = int(pidfile.read_text())
        bystander = subprocess.Popen(["sleep", "120"])    # this namespace: never touched
        try:
            assert pid_alive(daemon)
            assert stop_listed_processes({shell.pid: tag}) == 2
            assert shell.wait(timeout=10) is not None
            assert wait_until(lambda: not pid_alive(daemon), 10)
            assert bystander.poll() is None
            # A listed PID that is no longer what the run started: nothing stopped.
            assert stop_listed_processes({bystander.pid: tag}) == 0
            assert bystander.poll() is None
        finally:
            bystander.kill()
            bystander.wait()
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()
        if daemon is not None and pid_alive(daemon):
            subprocess.run(["kill", "-9", str(daemon)], timeout=10)
