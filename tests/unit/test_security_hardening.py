"""What a security reviewer found open before dcilab goes on a shared lab network: a
start beyond this machine said nothing of what it leaves open, and the state file (every
reservation's hosts and flows) was readable by every local user."""

from __future__ import annotations

import os
import stat

from dcilab.cli.controller import exposure_warnings, token_warnings
from dcilab.store.sqlite import ReservationStore


def test_a_start_on_this_machine_alone_warns_of_nothing():
    for host in ("127.0.0.1", "localhost", "::1"):
        assert exposure_warnings(host, "127.0.0.1", tls=False, token=False) == []


def test_a_start_beyond_this_machine_says_what_it_leaves_open():
    said = exposure_warnings("0.0.0.0", "127.0.0.1", tls=False, token=True)
    assert len(said) == 1 and "without TLS" in said[0] and "the token" in said[0]
    said = exposure_warnings("0.0.0.0", "127.0.0.1", tls=True, token=False)
    assert len(said) == 1 and "--token-file" in said[0]
    assert exposure_warnings("0.0.0.0", "127.0.0.1", tls=True, token=True) == []
    said = exposure_warnings("127.0.0.1", "0.0.0.0", tls=True, token=True)
    assert len(said) == 1 and "OpenFlow listens on 0.0.0.0" in said[0]
    assert len(exposure_warnings("10.0.0.1", "10.0.0.1", tls=False, token=False)) == 3


def test_a_weak_token_file_is_warned_of(tmp_path):
    """A hostile tester's 5-character token, in a file every user could read, started
    without a word."""
    path = tmp_path / "token"
    path.write_text("short\n")
    path.chmod(0o644)
    said = token_warnings(path, "short")
    assert len(said) == 2 and "5 characters" in said[0] and "mode 644" in said[1]
    path.chmod(0o600)
    assert token_warnings(path, "a" * 32) == []


def test_a_new_state_file_and_its_log_are_readable_by_their_owner_alone(tmp_path):
    old = os.umask(0o022)                       # the usual umask: files came out 0644
    try:
        store = ReservationStore(tmp_path / "state.db", fabric="f")
        store.save_many([])
    finally:
        os.umask(old)
    try:
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            path = tmp_path / name
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert (tmp_path / "state.db-wal").exists()
    finally:
        store.close()
