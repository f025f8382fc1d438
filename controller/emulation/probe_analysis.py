"""What a probe stream says about a fault (pure: arrays in, figures out).

A stream sends sequence number n at about t0 + n / rate and records which numbers arrived
and when. Around an event at time T (a cut, a dark transceiver, ...):

- the loss window is the longest run of consecutive lost packets among those sent from
  `before_s` before T to `horizon_s` after it, in ms: the send time of the first packet
  that arrived after the run minus that of the last one that arrived before it, less one
  interval (a single lost packet at 1000 pps is a 1 ms window). A run still open at the
  end of the horizon lasts until then, and the stream is `recovered=False`;
- the switchover window is the same, counting only runs that began within
  `SWITCHOVER_S` of T: the failure's own blackhole (detection, switchover, restoration),
  apart from drops later on the new path (a probe sharing a short queue with TCP);
- a stream is dark after 1 s when none of the packets sent in the `span_s` (100 ms)
  starting 1 s after T arrived;
- the delivered rate is packets arrived per bin (10 ms), in packets per second.

Send times come from the packets themselves (the sender stamps each), so a late sender
tick does not count as loss; lost packets' send times are interpolated on the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Detection (carrier at once, BFD 300 ms), the switches' switchover and the controller's
# next 100 ms tick all fall within this after a failure: a loss run that begins later is
# not its blackhole but drops on the path the traffic now takes.
SWITCHOVER_S = 0.5


@dataclass
class StreamRecord:
    name: str
    rate_pps: float
    t0: float                     # scheduled send time of sequence number 0
    sent: int                     # numbers 0 .. sent-1 were sent
    seq: np.ndarray               # received sequence numbers (any order, maybe duplicates)
    arrival: np.ndarray           # their arrival times
    sent_at: np.ndarray | None = None   # their send times, as stamped by the sender

    def __post_init__(self) -> None:
        self.seq = np.asarray(self.seq, dtype=np.int64)
        self.arrival = np.asarray(self.arrival, dtype=float)
        if self.sent_at is None:
            self.sent_at = self.t0 + self.seq / self.rate_pps
        self.sent_at = np.asarray(self.sent_at, dtype=float)

    def received(self) -> np.ndarray:
        """Boolean per sequence number sent: did it arrive."""
        mask = np.zeros(self.sent, dtype=bool)
        ok = (self.seq >= 0) & (self.seq < self.sent)
        mask[self.seq[ok]] = True
        return mask

    def send_times(self) -> np.ndarray:
        """Send time of every number sent: stamped where it arrived, else on the schedule
        shifted by the sender's measured lateness around it."""
        times = self.t0 + np.arange(self.sent) / self.rate_pps
        if len(self.seq):
            ok = (self.seq >= 0) & (self.seq < self.sent)
            order = np.argsort(self.seq[ok])
            s, t = self.seq[ok][order], self.sent_at[ok][order]
            lateness = np.interp(np.arange(self.sent), s, t - (self.t0 + s / self.rate_pps))
            times = times + lateness
            times[s] = t
        return times


@dataclass(frozen=True)
class Window:
    stream: str
    loss_ms: float           # longest loss run around the event, in ms (0: nothing lost)
    lost: int                # packets lost in that run
    starts_at: float | None  # send time of its first lost packet
    recovered: bool          # delivery resumed within the horizon


def loss_window(rec: StreamRecord, event: float, horizon_s: float = 5.0,
                before_s: float = 0.05, starting_within_s: float | None = None) -> Window:
    """The longest loss run around `event` (see the module doc); with `starting_within_s`,
    the longest of those that began no later than that after it."""
    got = rec.received()
    times = rec.send_times()
    lo, hi = event - before_s, event + horizon_s
    idx = np.nonzero((times >= lo) & (times < hi))[0]
    if len(idx) == 0:
        return Window(rec.name, 0.0, 0, None, True)
    best = Window(rec.name, 0.0, 0, None, True)
    interval = 1.0 / rec.rate_pps
    lost = ~got[idx]
    # Runs of consecutive lost numbers within the range.
    edges = np.diff(np.concatenate(([0], lost.astype(np.int8), [0])))
    for start, stop in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]):
        first, last = idx[start], idx[stop - 1]
        if starting_within_s is not None and times[first] > event + starting_within_s:
            continue
        before = times[first - 1] if first > 0 and got[first - 1] else times[first] - interval
        if last + 1 < rec.sent and got[last + 1] and times[last + 1] < hi:
            after, recovered = times[last + 1], True
        else:
            after, recovered = max(hi, times[last] + interval), False
        ms = max(0.0, (after - before - interval) * 1000.0)
        if ms > best.loss_ms:
            best = Window(rec.name, float(ms), int(stop - start), float(times[first]), recovered)
    return best


def dark_after(rec: StreamRecord, event: float, after_s: float = 1.0,
               span_s: float = 0.1) -> bool:
    """True when nothing sent in [event + after_s, event + after_s + span_s) arrived."""
    times = rec.send_times()
    sel = (times >= event + after_s) & (times < event + after_s + span_s)
    if not sel.any():
        raise ValueError(f"stream {rec.name} sent nothing {after_s:g} s after the event "
                         f"(it ran until {times[-1] if len(times) else rec.t0:.3f})")
    return not rec.received()[sel].any()


def delivered_pps(rec: StreamRecord, start: float, end: float,
                  bin_s: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(bin start times, packets per second that arrived in each bin)."""
    edges = np.arange(start, end + bin_s / 2, bin_s)
    counts, _ = np.histogram(rec.arrival, bins=edges)
    return edges[:-1], counts / bin_s


def percentiles(values) -> dict[str, float]:
    """p50, p99 and max of a list of figures (nearest-rank p99, so a handful of streams
    does not interpolate a value nobody measured); zeros for an empty list."""
    v = np.sort(np.asarray(list(values), dtype=float))
    if len(v) == 0:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    rank = lambda q: v[min(len(v) - 1, int(np.ceil(q * len(v))) - 1)]  # noqa: E731
    return {"p50": float(np.median(v)), "p99": float(rank(0.99)), "max": float(v[-1]),
            "n": int(len(v))}


def summarize(records: list[StreamRecord], event: float, horizon_s: float = 5.0) -> dict:
    """Every stream's window around `event`, their p50/p99/max, the same for the
    switchover windows, and the streams dark 1 s after it."""
    windows = [loss_window(r, event, horizon_s) for r in records]
    switchover = [loss_window(r, event, horizon_s, starting_within_s=SWITCHOVER_S)
                  for r in records]
    return {"windows": windows,
            "loss_ms": percentiles(w.loss_ms for w in windows),
            "switchover_ms": percentiles(w.loss_ms for w in switchover),
            "dark_after_1s": [r.name for r in records if dark_after(r, event)]}
