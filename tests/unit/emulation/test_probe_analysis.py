"""Loss windows, dark streams and delivered rate from sequence-numbered probes (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from dcilab.emulation.probe_analysis import (SWITCHOVER_S, StreamRecord, dark_after, delivered_pps,
                                             loss_window, percentiles, summarize)

RATE = 1000.0
T0 = 100.0


def stream(sent: int, lost=(), name="s", delay=0.0005, late=None) -> StreamRecord:
    """`sent` packets at 1000 pps from T0; `lost` is a set of sequence numbers."""
    seq = np.array([n for n in range(sent) if n not in set(lost)])
    sent_at = T0 + seq / RATE + (late(seq) if late else 0.0)
    return StreamRecord(name, RATE, T0, sent, seq, sent_at + delay, sent_at)


def test_nothing_lost_is_a_zero_window():
    w = loss_window(stream(3000), T0 + 1.0)
    assert (w.loss_ms, w.lost, w.recovered) == (0.0, 0, True)


def test_a_run_of_lost_packets_is_its_length_in_ms():
    rec = stream(3000, lost=range(1000, 1047))       # 47 packets lost from t = 1 s
    w = loss_window(rec, T0 + 1.0)
    assert w.lost == 47
    assert w.loss_ms == pytest.approx(47.0)
    assert w.starts_at == pytest.approx(T0 + 1.0)
    assert w.recovered


def test_one_lost_packet_is_one_ms():
    assert loss_window(stream(3000, lost={1500}), T0 + 1.4).loss_ms == pytest.approx(1.0)


def test_the_longest_run_in_the_range_counts_and_runs_outside_do_not():
    lost = set(range(200, 400)) | set(range(1010, 1020)) | set(range(1100, 1130))
    w = loss_window(stream(3000, lost=lost), T0 + 1.0, horizon_s=1.0)
    assert w.lost == 30 and w.loss_ms == pytest.approx(30.0)


def test_a_stream_that_never_recovers_lasts_until_the_horizon():
    rec = stream(3000, lost=range(1000, 3000))
    w = loss_window(rec, T0 + 1.0, horizon_s=0.5)
    assert not w.recovered
    assert w.loss_ms == pytest.approx(500.0, abs=1.0)
    assert dark_after(rec, T0 + 1.0)


def test_a_late_sender_is_not_loss():
    # The sender stalls 20 ms at t = 1 s and then catches up: stamps show it.
    def late(seq):
        return np.where((seq >= 1000) & (seq < 1020), 0.02 - (seq - 1000) / RATE, 0.0)
    rec = stream(3000, late=late)
    assert loss_window(rec, T0 + 1.0).loss_ms == 0.0


def test_interpolated_send_times_follow_the_lateness():
    def late(seq):
        return np.full(seq.shape, 0.01)
    rec = stream(2000, lost=range(500, 510), late=late)
    times = rec.send_times()
    assert times[505] == pytest.approx(T0 + 0.505 + 0.01)
    assert loss_window(rec, T0 + 0.5).loss_ms == pytest.approx(10.0)


def test_dark_after_one_second():
    rec = stream(3000, lost=range(1000, 2100))
    assert dark_after(rec, T0 + 1.0)          # nothing sent at 2.0-2.1 s arrived
    rec = stream(3000, lost=range(1000, 1500))
    assert not dark_after(rec, T0 + 1.0)
    with pytest.raises(ValueError, match="sent nothing 1 s after"):
        dark_after(stream(500), T0 + 1.0)


def test_delivered_rate_per_10ms_bin():
    rec = stream(1000, lost=range(300, 320), delay=0.0005)
    starts, pps = delivered_pps(rec, T0, T0 + 1.0)
    assert len(starts) == 100
    assert pps[0] == pytest.approx(1000.0)
    assert pps[30] == 0.0 and pps[31] == 0.0
    assert pps[32] == pytest.approx(1000.0)
    assert pps.sum() * 0.01 == pytest.approx(980, abs=1)


def test_percentiles_nearest_rank():
    assert percentiles([]) == {"p50": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    p = percentiles([1, 2, 3, 100])
    assert p["p50"] == 2.5 and p["p99"] == 100 and p["max"] == 100
    p = percentiles(range(1, 201))
    assert p["p99"] == 198


def test_summarize_names_dark_streams():
    good = stream(3000, lost=range(1000, 1040), name="a")
    bad = stream(3000, lost=range(1000, 3000), name="b")
    s = summarize([good, bad], T0 + 1.0, horizon_s=1.5)
    assert s["dark_after_1s"] == ["b"]
    assert s["loss_ms"]["p50"] == pytest.approx((40 + 1500) / 2, abs=1)
    assert s["loss_ms"]["max"] == pytest.approx(1500, abs=1)


def test_the_switchover_window_leaves_out_loss_that_began_later():
    # 20 ms lost at the failure (t = 1 s), then 60 ms of drops 1.2 s later on the new path.
    lost = set(range(1000, 1020)) | set(range(2200, 2260))
    rec = stream(3000, lost=lost, name="a")
    assert loss_window(rec, T0 + 1.0, horizon_s=2.0).loss_ms == pytest.approx(60.0)
    early = loss_window(rec, T0 + 1.0, horizon_s=2.0, starting_within_s=SWITCHOVER_S)
    assert early.loss_ms == pytest.approx(20.0) and early.starts_at == pytest.approx(T0 + 1.0)
    s = summarize([rec, stream(3000, name="b")], T0 + 1.0, horizon_s=2.0)
    assert (s["loss_ms"]["max"], s["switchover_ms"]["max"]) == (pytest.approx(60.0),
                                                                pytest.approx(20.0))
    # A blackhole that began at the failure and lasted past SWITCHOVER_S counts whole.
    long = stream(3000, lost=range(1000, 1800))
    assert loss_window(long, T0 + 1.0, starting_within_s=SWITCHOVER_S).loss_ms == \
        pytest.approx(800.0)
