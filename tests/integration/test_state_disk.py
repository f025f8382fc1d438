"""Memory follows the disk, on a real full filesystem and a real read-only one.

A small tmpfs is mounted for the test (root needed, hence `integration`) and filled to
the last byte; the controller must then refuse ReservePath and ReleasePath with
UNAVAILABLE naming the cause, keep nothing it could not write (no booked bandwidth, no
idempotent "OK" for an unwritten id, no release that comes back after a restart), and
work again once there is room. A read-only filesystem refuses the start with a clear
message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dcilab.api.client import ApiError, Client, state_name
from dcilab.api.server import create_server
from dcilab.app.service import ControllerService
from dcilab.fabric import load_fabric

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RACE_FABRIC = (REPO / "tests" / "unit" / "api" / "api_helpers.py")


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs of our own, unmounted afterwards."""
    mnt = tmp_path / f"dcilab-tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "dcilab-test", str(mnt)],
                   check=True, timeout=30)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True, timeout=30)


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem has no byte left; returns it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _race_fabric(directory: Path) -> Path:
    sys.path.insert(0, str(RACE_FABRIC.parent))
    from api_helpers import write_race_fabric
    return write_race_fabric(directory)


def test_a_full_disk_changes_nothing_and_says_so(tmp_path, tmpfs):
    fabric = load_fabric(_race_fabric(tmp_path))
    state = tmpfs / "state.db"
    service = ControllerService.standalone(fabric, state)
    server, port = create_server(service, "127.0.0.1:0")
    try:
        with Client(f"127.0.0.1:{port}") as c:
            held = c.reserve("dc1-h1", "dc2-h1", 100, request_id="kept")
            filler = _fill(tmpfs)
            for _ in range(2):                   # a retry is refused the same way
                with pytest.raises(ApiError) as err:
                    c.reserve("dc1-h2", "dc2-h2", 200, request_id="job-full")
                assert err.value.code == "UNAVAILABLE" and "disk full" in err.value.message
            with pytest.raises(ApiError) as err:
                c.release(held.reservation_id)
            assert err.value.code == "UNAVAILABLE" and "disk full" in err.value.message
            # Memory says what the disk says: one reservation, still live, 100 G held.
            assert [r.reservation_id for r in c.reservations()] == [held.reservation_id]
            assert state_name(c.get(held.reservation_id)) == "PENDING"
            assert [l.reserved_bps for l in c.links("dci")] == [100e9, 0]
            # 260 G are free on the 360 G wavelength: nothing leaked from the failed one.
            with pytest.raises(ApiError) as err:
                c.reserve("dc1-h3", "dc2-h3", 261)
            assert err.value.code in ("RESOURCE_EXHAUSTED", "UNAVAILABLE")
            filler.unlink()                      # room again: the same request now works
            retried = c.reserve("dc1-h2", "dc2-h2", 200, request_id="job-full")
            assert c.reserve("dc1-h2", "dc2-h2", 200, request_id="job-full") == retried
            assert [l.reserved_bps for l in c.links("dci")] == [300e9, 0]
    finally:
        server.stop(grace=1).wait()
        service.close()
    again = ControllerService.standalone(fabric, state)  # the file agrees with what we said
    try:
        live = {r.reservation_id: r for r in again.list()}
        assert set(live) == {held.reservation_id, retried.reservation_id}
        assert all(r.state.live for r in live.values())
    finally:
        again.close()


def test_a_read_only_state_file_refuses_the_start(tmp_path, tmpfs):
    fabric_file = _race_fabric(tmp_path)
    ControllerService.standalone(load_fabric(fabric_file), tmpfs / "state.db").close()
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True, timeout=30)
    proc = subprocess.run(
        [sys.executable, "-m", "dcilab", "controller", "--topology", str(fabric_file),
         "--state", str(tmpfs / "state.db"), "--grpc", "127.0.0.1:0", "--openflow",
         "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr         # every refused state file: 2
    assert "read-only" in proc.stderr.lower() and str(tmpfs / "state.db") in proc.stderr
    assert "Traceback" not in proc.stderr
