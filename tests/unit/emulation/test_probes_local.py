"""The probe agents end to end on this host's loopback (no namespaces, no root): what the
senders sent and the receivers wrote comes back as one record per stream."""

from __future__ import annotations

import socket
import subprocess
import time

import numpy as np
import pytest

from dcilab.emulation.probes import ProbeError, Probes, Stream, _first_line


def local_runner(host: str, argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_streams_to_one_receiver_come_back_whole():
    streams = [Stream("h1", "h3", "127.0.0.1"), Stream("h2", "h3", "127.0.0.1")]
    with Probes(local_runner, streams, rate_pps=500.0, port=free_port(),
                duration_s=1.0) as probes:
        probes.wait_senders(timeout_s=30)        # each sends for 1 s, then ends
        records = probes.stop(timeout_s=30)
    assert sorted(records) == ["h1>h3", "h2>h3"]
    for rec in records.values():
        assert 490 <= rec.sent <= 510, rec.sent  # 500/s for 1 s
        got = rec.received()
        assert got.all(), np.flatnonzero(~got)[:10]          # loopback loses nothing
        assert rec.seq.dtype == np.int64 and (np.diff(np.sort(rec.seq)) >= 1).all()
        assert (rec.arrival >= rec.sent_at - 1e-3).all()
        assert np.all(np.abs(rec.sent_at - (rec.t0 + rec.seq / rec.rate_pps)) < 1.0)



def test_a_receiver_that_does_not_start_stops_everything_and_leaves_no_directory():
    started: list[subprocess.Popen] = []

    def failing_runner(host, argv):       # a receiver that exits without listening
        proc = subprocess.Popen(["sh", "-c", "exit 3"], stdout=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    probes = Probes(failing_runner, [Stream("h1", "h3", "127.0.0.1")], port=free_port())
    with pytest.raises(ProbeError, match="did not start"):
        with probes:
            raise AssertionError("started")
    assert started and all(p.poll() is not None for p in started)
    assert not probes.workdir.exists()


def test_a_receiver_that_says_nothing_is_waited_for_until_the_deadline_only():
    mute = subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE, text=True)
    try:
        began = time.monotonic()
        assert _first_line(mute, time.monotonic() + 0.3) == ""
        assert time.monotonic() - began < 5
    finally:
        mute.kill()
        mute.wait()
