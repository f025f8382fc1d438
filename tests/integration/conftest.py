"""Integration tests need root, Open vSwitch and Mininet. On a developer machine without
them they skip; with CI=true a missing piece is a failure, never a skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOPOLOGIES = REPO / "topologies"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ovs-vsctl", "mnexec", "iperf3", "ethtool", "ping"):
        if not shutil.which(tool):
            return f"{tool} is not installed (run `make setup`)"
    return None


@pytest.fixture(scope="session", autouse=True)
def integration_environment():
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"integration tests must run in CI, but {missing}")
        pytest.skip(f"integration tests need root, OVS and Mininet: {missing}")
    from dcilab.emulation.ovs import ensure_ovs
    ensure_ovs()
    yield


@pytest.fixture
def no_leftovers():
    """Asserts, after the test, that nothing of ours is left on the machine."""
    yield
    from dcilab.emulation.cleanup import leftovers
    left = leftovers()
    assert left == {"bridges": [], "interfaces": [], "namespaces": [], "processes": [],
                    "directories": []}, left
