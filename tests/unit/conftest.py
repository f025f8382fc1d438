"""Unit-test process hygiene."""

from __future__ import annotations

import signal

import pytest


@pytest.fixture(autouse=True)
def _sigpipe_ignored():
    """`dcilab`'s main sets SIGPIPE to its default (`dcilab check f.yaml | head` ends
    quietly); run in-process by a test, that outlived it, and the next write to a socket
    its peer had closed (a server's answer to a client it cut off) killed pytest itself.
    Python starts with SIGPIPE ignored: put back after every test."""
    yield
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
