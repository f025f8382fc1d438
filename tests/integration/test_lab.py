"""`dcilab lab`: Mininet's CLI on the emulated fabric, by script and by typing into it."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from dcilab.gnmi.client import wait_until

pytestmark = pytest.mark.integration

SCRIPT = """\
# a comment line: skipped, not a failed line (an outside tester's script exited 1)
pingall   # as is a comment after a command
dc1-h1 ping -c2 dc2-h3
iperf dc1-h1 dc2-h1 -t 2
links --kind dci
reserve dc1-h1 dc2-h1 --gbps 100
reservations
reserve dc1-h1 nowhere --gbps 1
no-such-command
dc2-h2 iperf3 -s -D -p 5977
"""


def test_script_runs_mininet_and_dcilab_commands_by_fabric_names(tmp_path, no_leftovers):
    script = tmp_path / "lab.txt"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, "-m", "dcilab", "lab", "two-dc", "--script",
                           str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=300)
    # One transcript on standard output, in order: Mininet's output (which it writes
    # through its log, on standard error) and refusals too.
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-2000:]   # two lines failed
    assert "Unknown command" not in done.stderr and "*** Results" not in done.stderr
    assert out.index("*** Results") < out.index("refused (INVALID_ARGUMENT)") \
        < out.index("*** Unknown command: no-such-command")
    assert (f"2 line(s) of {script} failed: reserve dc1-h1 nowhere --gbps 1; "
            "no-such-command") in out
    assert "*** Results: 0% dropped (56/56 received)" in out                 # pingall
    assert "2 packets transmitted, 2 received, 0% packet loss" in out        # dc1-h1 ping dc2-h3
    assert "PING 10.2.2.3 " in out                                           # dc2-h3 -> its IP
    mbps = float(re.search(r"dc1-h1 -> dc2-h1: ([\d.]+) Mb/s emulated", out).group(1))
    assert mbps > 0
    assert re.search(r"^dc1-dc2-a\.w1 +dc1-gw1 +dc2-gw1 +400 ", out, re.M)    # links
    rid = re.search(r"^reserved (r-\w+) ", out, re.M).group(1)
    # ACTIVE once every switch of its path has acknowledged: the next command may come
    # first on a busy machine. (One CI run failed here, its listing cut from the report:
    # the message now shows what was listed.)
    assert re.search(rf"^{rid} (ACTIVE|PENDING): dc1-h1 -> dc2-h1, 100 Gb/s", out, re.M), \
        out[out.find("reserved r-"):][:2000]
    assert "refused (INVALID_ARGUMENT): dst_host: unknown host 'nowhere'" in out
    assert "lab stopped; everything removed" in out
    # A daemon started at the prompt in a host stops with it (a tester's outlived its lab).
    assert _daemon_pids(5977) == []


class Prompt:
    """`dcilab lab` with its standard input a pipe, as a user typing (the prompt
    `mininet> ` starts the line of the answer, so patterns are not anchored)."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "dcilab", "lab", "two-dc"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def type(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, timeout_s: float = 120.0) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout_s:g} s; "
                                     "last lines:\n" + "\n".join(self.seen[-20:])) from None
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found


def test_typed_commands_then_sigterm_mid_command_removes_everything(no_leftovers):
    lab = Prompt()
    try:
        lab.expect(r"hosts: dc1-h1 10\.1\.1\.1")
        lab.type("reserve dc1-h1 dc2-h2 --gbps 50")
        rid = lab.expect(r"reserved (r-\w+) ").group(1)
        lab.type(f"release {rid}")
        lab.expect(rf"released {rid} RELEASED")
        lab.type("dc2-h4 ping -c1 dc1-h3")
        lab.expect(r"1 packets transmitted, 1 received")
        # Mininet's CLI forwards what is typed while a host command runs to that host, so
        # a line typed as ping ends may lose its first characters: typed again then.
        for _ in range(3):
            lab.type("dc1-h1 echo sleeping; sleep 60")   # a host command still running ...
            if lab.expect(r"(?:^|> )sleeping$|Unknown command").group(0) != "Unknown command":
                break
        lab.proc.send_signal(signal.SIGTERM)         # ... when SIGTERM comes
        lab.expect(r"terminated; everything stopped and removed", timeout_s=60)
        assert lab.proc.wait(timeout=60) == 143
    finally:
        if lab.proc.poll() is None:            # a failure above: stop it the clean way
            lab.proc.send_signal(signal.SIGTERM)
            try:
                lab.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                lab.proc.kill()
                lab.proc.wait()


def test_a_lab_beside_a_controller_of_ones_own_uses_it_and_never_stops_it(tmp_path,
                                                                         no_leftovers):
    """An ops tester had to script `Emulation` to restart a controller under a running
    fabric: `lab --controller` runs the emulation alone, and never stops that one."""
    from dcilab.api.client import Client
    from dcilab.lab import ControllerProcess, free_port
    from dcilab.resources import topology_path
    port = free_port()
    controller = ControllerProcess(topology_path("two-dc"), port)
    try:
        controller.wait_listening(60)
        script = tmp_path / "beside.txt"
        script.write_text("reserve dc1-h1 dc2-h1 --gbps 10\nswitches\npingall\n")
        done = subprocess.run(
            [sys.executable, "-m", "dcilab", "lab", "two-dc", "--script", str(script),
             "--controller", f"127.0.0.1:{port}", "--server", controller.grpc_address],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
        out = done.stdout
        assert done.returncode == 0, out[-3000:] + done.stderr[-2000:]
        assert f"controller: yours, OpenFlow 127.0.0.1:{port}" in out
        assert "*** Results: 0% dropped (56/56 received)" in out
        assert "lab stopped; everything removed" in out
        # the lab's end left the controller running, with what was booked through it
        assert controller.proc.poll() is None
        with Client(controller.grpc_address) as client:
            [res] = list(client.reservations())
        assert (res.src_host, res.dst_host) == ("dc1-h1", "dc2-h1")
    finally:
        controller.stop()


def _daemon_pids(port: int) -> list[int]:
    from pathlib import Path
    found = []
    for proc in Path("/proc").iterdir():
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "iperf3" in line and f"-p {port}" in line:
            found.append(int(proc.name))
    return found


def test_after_a_kill_9_clean_stops_daemons_typed_in_the_hosts(no_leftovers):
    """A re-tester: `dcilab clean` after `kill -9` of a lab left the `iperf3 -s -D` typed
    at its prompt running (the hosts' shells die with the lab, so nothing named their
    namespaces). The hosts' namespaces now have names of ours, and clean stops what is in
    them."""
    lab = Prompt()
    try:
        lab.expect(r"hosts: dc1-h1 10\.1\.1\.1")
        lab.type("dc2-h2 iperf3 -s -D -p 5979")
        lab.type("dc2-h2 echo started")
        lab.expect(r"(?:^|> )started$")
        assert wait_until(lambda: _daemon_pids(5979), 30)
        lab.proc.kill()                                   # kill -9: nothing removed
        lab.proc.wait(timeout=30)
        assert _daemon_pids(5979)                         # it outlived the lab
        done = subprocess.run([sys.executable, "-m", "dcilab", "clean"], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert _daemon_pids(5979) == [], done.stdout
        assert re.search(r"removed \d+ processes", done.stdout), done.stdout
    finally:
        if lab.proc.poll() is None:
            lab.proc.kill()
            lab.proc.wait()
        for pid in _daemon_pids(5979):                    # a failure above: by its PID
            os.kill(pid, signal.SIGKILL)
        subprocess.run([sys.executable, "-m", "dcilab", "clean"], capture_output=True,
                       timeout=300)
