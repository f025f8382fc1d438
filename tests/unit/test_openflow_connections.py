"""The OpenFlow listener of a real `dcilab controller` (os-ken, native threads) against
peers that are not well-behaved switches: a port scan, connections that close after a
HELLO. Each used to keep two threads for good (os-ken's send thread waits for a message
that never comes, and its `hub.kill` does nothing to a native thread)."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import sys
import time

from dcilab.app.runner import ECHO_INTERVAL_S, ECHO_MISSES
from dcilab.sockets import free_ports


@contextlib.contextmanager
def _controller(tmp_path):
    grpc, openflow = free_ports(2)
    log = tmp_path / "controller.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dcilab", "controller", "--topology", "two-dc",
             "--grpc", f"127.0.0.1:{grpc}", "--state", str(tmp_path / "state.db"),
             "--openflow", f"127.0.0.1:{openflow}", "--metrics", "127.0.0.1:0"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not all(said in log.read_bytes()
                      for said in (b"gRPC API listening", b"OpenFlow listening")):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield proc, openflow, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def _settled_threads(pid: int, timeout_s: float = 10.0) -> int:
    """The thread count once it has held still for a second."""
    deadline = time.monotonic() + timeout_s
    last = _threads(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _threads(pid)
        if now == last:
            return now
        last = now
    return last


HELLO = struct.pack("!BBHI", 4, 0, 8, 1)          # OpenFlow 1.3 OFPT_HELLO


def test_connections_that_close_early_leave_no_threads_behind(tmp_path):
    with _controller(tmp_path) as (proc, port, log):
        before = _settled_threads(proc.pid)
        for n in range(60):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                if n % 2:
                    conn.sendall(HELLO)
        grown = _threads(proc.pid)
        # Within an echo interval or two every one of them is gone (before: 2 each, kept).
        deadline = time.monotonic() + 4 * ECHO_INTERVAL_S + 10
        while _threads(proc.pid) > before + 4:
            assert time.monotonic() < deadline, (
                f"{_threads(proc.pid)} threads, {before} before 60 connections "
                f"({grown} just after)")
            time.sleep(0.5)
        assert proc.poll() is None, log.read_text()


def test_silent_peers_are_closed_and_leave_no_threads_behind(tmp_path):
    """A peer that connects and says nothing (a port scanner holding on, a switch hung)
    is closed once it leaves its echoes unanswered; os-ken's echo loop then ends, and its
    send thread waited for good (a re-tester's: 500 such peers, 1 000 threads)."""
    with _controller(tmp_path) as (proc, port, log):
        before = _settled_threads(proc.pid)
        peers = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(10)]
        try:
            deadline = time.monotonic() + (ECHO_MISSES + 2) * ECHO_INTERVAL_S + 15
            for peer in peers:                   # the controller closes each: EOF here
                peer.settimeout(max(0.1, deadline - time.monotonic()))
                while peer.recv(4096):           # its HELLO, its echoes, then nothing
                    pass
        finally:
            for peer in peers:
                peer.close()
        deadline = time.monotonic() + 2 * ECHO_INTERVAL_S + 10
        while _threads(proc.pid) > before + 4:
            assert time.monotonic() < deadline, (
                f"{_threads(proc.pid)} threads, {before} before 10 silent peers")
            time.sleep(0.5)
        assert proc.poll() is None, log.read_text()
