"""The sync flow agent on loopback: one persistent connection, one burst per input line."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time

from dcilab.emulation.training import _one_line_each
from dcilab.sockets import free_port, free_ports

AGENT = [sys.executable, "-m", "dcilab.emulation.sync_agent"]


def test_bursts_travel_on_one_connection_with_a_fixed_source_port():
    (port, sport), size = free_ports(2), 300_000
    recv = subprocess.Popen([*AGENT, "recv", "--port", str(port), "--bytes", str(size)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    send = None
    try:
        assert _one_line_each([recv], _deadline(10)) == ["listening"]
        send = subprocess.Popen([*AGENT, "send", "--dst", "127.0.0.1", "--port", str(port),
                                 "--sport", str(sport), "--bytes", str(size)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert _one_line_each([send], _deadline(10)) == ["connected"]
        out = subprocess.run(["ss", "-tnH", f"sport = :{sport}"], capture_output=True,
                             text=True).stdout
        assert f":{port}" in out                          # the flow's 5-tuple is fixed
        for _ in range(3):                                # three steps, same connection
            send.stdin.write(b"go\n")
            send.stdin.flush()
            got, = _one_line_each([recv], _deadline(10))
            sent, = _one_line_each([send], _deadline(10))
            got, sent = json.loads(got), json.loads(sent)
            assert sent["start"] <= got["first"] <= got["last"]
            assert sent["start"] <= sent["sent"]
        assert _one_line_each([recv], _deadline(0.3)) == [None]   # exactly one line a burst
        send.stdin.close()
        assert send.wait(timeout=10) == 0 and recv.wait(timeout=10) == 0
    finally:
        for proc in (send, recv):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()


def _deadline(seconds: float) -> float:
    return time.monotonic() + seconds


def _congestion_of(sport: int) -> str:
    out = subprocess.run(["ss", "-tniH", f"sport = :{sport}"], capture_output=True,
                         text=True).stdout.split()
    known = {"cubic", "reno", "bbr", "dctcp", "htcp", "vegas"}
    return next((word for word in out if word in known), "")


def test_the_sender_uses_the_congestion_control_it_is_given_and_names_a_missing_one():
    available = open("/proc/sys/net/ipv4/tcp_available_congestion_control").read().split()
    other = next(cc for cc in available if cc != "cubic")     # reno is always built in
    port, sport = free_ports(2)
    recv = subprocess.Popen([*AGENT, "recv", "--port", str(port), "--bytes", "1000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs = [recv]
    try:
        assert _one_line_each([recv], _deadline(10)) == ["listening"]
        bad = subprocess.Popen([*AGENT, "send", "--dst", "127.0.0.1", "--port", str(port),
                                "--cc", "no-such-cc", "--bytes", "1000"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        procs.append(bad)
        line, = _one_line_each([bad], _deadline(10))
        assert line.startswith("congestion control 'no-such-cc'") and bad.wait(10) == 2
        send = subprocess.Popen([*AGENT, "send", "--dst", "127.0.0.1", "--port", str(port),
                                 "--sport", str(sport), "--cc", other, "--bytes", "1000"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        procs.append(send)
        assert _one_line_each([send], _deadline(10)) == ["connected"]
        assert _congestion_of(sport) == other
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@contextlib.contextmanager
def _connected(size: int, *send_args: str, expect: int | None = None):
    """A receiver listening on loopback (for bursts of `expect` bytes, default `size`) and
    a sender of `size` bytes a burst connected to it; both stopped after."""
    port = free_port()
    procs = [subprocess.Popen([*AGENT, "recv", "--port", str(port), "--bytes",
                               str(expect or size)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)]
    try:
        assert _one_line_each(procs, _deadline(10)) == ["listening"]
        procs.append(subprocess.Popen([*AGENT, "send", "--dst", "127.0.0.1", "--port",
                                       str(port), "--bytes", str(size), *send_args],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE))
        assert _one_line_each(procs[1:], _deadline(10)) == ["connected"]
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_go_line_with_a_rate_re_paces_the_sender_from_that_burst_on():
    """`dcilab train` re-paces the flows when a fault changes the DCI: `go R` sets the
    sender's pace to R Mb/s (0 lifts it) on the same connection."""
    size = 2_000_000
    with _connected(size) as (recv, send):
        def burst(line: bytes) -> float:
            send.stdin.write(line)
            send.stdin.flush()
            got, = _one_line_each([recv], _deadline(20))
            sent, = _one_line_each([send], _deadline(20))
            return json.loads(got)["last"] - json.loads(sent)["start"]

        paced = burst(b"go 40\n")                       # 16 Mb at 40 Mb/s: 0.4 s
        assert paced >= 0.7 * size * 8 / 40e6            # TCP's first window goes at once
        assert burst(b"go 0\n") < paced / 2             # loopback unpaced: milliseconds
        assert burst(b"go 80\n") >= 0.7 * size * 8 / 80e6


def test_a_pace_line_re_paces_the_sender_in_the_middle_of_a_burst():
    """`dcilab train` re-paces the flows when the DCI changes during a sync: `pace R`
    takes effect at once, not at the next burst; a burst line sent meanwhile waits for its
    turn."""
    from dcilab.emulation.training import SyncFlows
    size = 4_000_000                                  # 32 Mb: 4 s at 8 Mb/s
    with _connected(size, "--pace-mbps", "8") as (recv, send):
        flows = SyncFlows.__new__(SyncFlows)
        flows.receivers, flows.senders = [recv], [send]
        send.stdin.write(b"go\n")
        send.stdin.flush()
        start = time.monotonic()
        assert _one_line_each([recv], _deadline(0.3)) == [None]      # still paced
        flows.pace([0.0])                             # lifted: the rest goes at once
        got, = _one_line_each([recv], _deadline(20))
        took = json.loads(got)["last"] - start
        assert took < 0.5 * size * 8 / 8e6, took     # at 8 Mb/s throughout: 4 s
        flows.pace([8.0])                             # between bursts: the next one's
        send.stdin.write(b"go\n")
        send.stdin.flush()
        got, = _one_line_each([recv], _deadline(20))
        sent, = _one_line_each([send], _deadline(20))
        sent, got = json.loads(sent), json.loads(got)
        assert sent["sent"] - sent["start"] >= 0.5 * size * 8 / 8e6 or \
            got["last"] - sent["start"] >= 0.7 * size * 8 / 8e6


def test_a_pace_line_right_after_a_go_line_is_the_one_that_holds():
    """A reviewer's: `go R` then `pace R2` back to back (the first ask of a sync right
    after its bursts start) left the sender at R for the whole burst: go's rate was set
    by the bursts' thread after the reader had set pace's."""
    size = 4_000_000                                  # 4 s at 8 Mb/s
    with _connected(size) as (recv, send):
        send.stdin.write(b"go 8\npace 0\n")
        send.stdin.flush()
        start = time.monotonic()
        got, = _one_line_each([recv], _deadline(20))
        assert json.loads(got)["last"] - start < 0.5 * size * 8 / 8e6


def test_a_sender_that_has_gone_loses_neither_the_run_nor_the_others():
    """A reviewer's: a `pace` to a sender that had exited left bytes in its pipe that
    raised again at the close, and the run's results were lost."""
    from dcilab.emulation.training import SyncFlows
    size = 100_000
    with _connected(size) as ok, _connected(size) as gone:
        gone[1].kill()
        gone[1].wait()
        flows = SyncFlows.__new__(SyncFlows)
        flows.receivers, flows.senders = [ok[0], gone[0]], [ok[1], gone[1]]
        flows.pace([0.0, 0.0])                        # to the gone one: dropped
        done, lost = flows.burst(timeout_s=3.0)
        assert lost is None and done is not None
        assert gone[1].stdin.closed
        flows.close()                                 # no BrokenPipeError


def test_a_stuck_flow_does_not_lose_the_finished_flows_timings():
    """A re-tester's gray failure: one flow blackholed, and every flow of the step was
    reported failed (the senders' lines were read at the receivers' spent deadline)."""
    from dcilab.emulation.training import SyncFlows
    size = 100_000
    with _connected(size) as ok, _connected(size, expect=2 * size) as stuck:
        flows = SyncFlows.__new__(SyncFlows)
        flows.receivers, flows.senders = [ok[0], stuck[0]], [ok[1], stuck[1]]
        done, lost = flows.burst(timeout_s=3.0)   # room for a busy machine
    assert lost is None
    assert done is not None and done["start"] <= done["first"] <= done["last"]
