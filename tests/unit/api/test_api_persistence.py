"""A controller killed with SIGKILL comes back with every reservation: same id, state and
path, and the bandwidth still held; one whose time ran out meanwhile is expired."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dcilab.api.client import Client, state_name
from dcilab.sockets import free_port


def _start(fabric_file, state_path, port, log_path):
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dcilab", "controller", "--topology", str(fabric_file),
         "--grpc", f"127.0.0.1:{port}", "--state", str(state_path),
         "--openflow", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"controller exited with {proc.returncode}:\n"
                            f"{log_path.read_text()}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    return proc
            except grpc.RpcError:
                time.sleep(0.1)
    proc.kill()
    pytest.fail(f"controller not serving within 60 s:\n{log_path.read_text()}")


@pytest.fixture
def controllers():
    started = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_reservations_survive_kill_9(fabric_file, tmp_path, controllers):
    state, port, log = tmp_path / "state.db", free_port(), tmp_path / "controller.log"
    controllers.append(_start(fabric_file, state, port, log))
    address = f"127.0.0.1:{port}"
    with Client(address) as c:
        kept = c.reserve("dc1-h1", "dc2-h1", 100, request_id="train-1")
        released = c.reserve("dc1-h2", "dc2-h2", 50, max_latency_ms=5)
        released = c.release(released.reservation_id)
        short = c.reserve("dc1-h3", "dc2-h3", 200, duration_s=3.0)   # live until the links read
        before = {r.reservation_id: r for r in c.reservations(show_ended=True)}
        assert [l.reserved_bps for l in c.links("dci")] == [300e9, 0]
    os.kill(controllers[0].pid, signal.SIGKILL)
    assert controllers[0].wait(10) == -signal.SIGKILL
    time.sleep(max(0.0, short.expire_time.ToNanoseconds() / 1e9 - time.time()) + 0.1)

    controllers.append(_start(fabric_file, state, port, log))
    with Client(address) as c:
        after = {r.reservation_id: r for r in c.reservations(show_ended=True)}
        assert after.keys() == before.keys() == {kept.reservation_id, released.reservation_id,
                                                 short.reservation_id}
        assert after[kept.reservation_id] == before[kept.reservation_id]      # every field
        assert after[released.reservation_id] == released
        assert state_name(after[released.reservation_id]) == "RELEASED"
        expired = after[short.reservation_id]
        assert state_name(expired) == "EXPIRED"
        assert list(expired.hops) == list(short.hops)
        assert [l.reserved_bps for l in c.links("dci")] == [100e9, 0]   # only `kept` holds
        assert c.reserve("dc1-h1", "dc2-h1", 100, request_id="train-1").reservation_id == \
            kept.reservation_id                                          # still idempotent
