"""Fixtures for the API tests: a standalone ControllerService on the race fabric, and a
real gRPC server for it on 127.0.0.1 port 0."""

from __future__ import annotations

import pytest
from api_helpers import write_race_fabric

from dcilab.api.client import Client
from dcilab.api.server import create_server
from dcilab.api.servicers import ReadBudget
from dcilab.app.service import ControllerService
from dcilab.fabric import load_fabric


@pytest.fixture
def fabric_file(tmp_path):
    return write_race_fabric(tmp_path)


@pytest.fixture
def state_path(tmp_path):
    return tmp_path / "state" / "state.db"


@pytest.fixture
def service(fabric_file, state_path):
    svc = ControllerService.standalone(load_fabric(fabric_file), state_path)
    yield svc
    svc.close()


@pytest.fixture
def serve(service):
    """serve(**create_server kwargs) -> port; every server is stopped at the end."""
    servers = []

    def start(address: str = "127.0.0.1:0", **kwargs):
        server, port = create_server(service, address, **kwargs)
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.stop(grace=1).wait()


@pytest.fixture
def port(serve):
    # Every test's calls come from one client address: a budget that listing tests do
    # not run into (the budget itself is tested with servers of its own).
    return serve(read_budget=ReadBudget(per_client=1000, total=1000))


@pytest.fixture
def client(port):
    with Client(f"127.0.0.1:{port}") as c:
        yield c
