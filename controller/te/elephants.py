"""Elephant detection from per-flow byte counters read at the leaves.

A flow (its 5-tuple) is an elephant once its rate reaches `elephant_fraction` of the
rate of the wavelengths it crosses for `elephant_polls` consecutive polls (Hedera's
definition, Al-Fares et al., NSDI 2010: flows of at least 10 % of a link's rate). It stops
being one when it ends (its counter disappears or stops growing) or stays under half
that threshold for as many polls, so a flow near the threshold does not flap. A flow that
sent nothing for a whole poll has ended (its learned counter lingers until it idles out,
but its wavelength is free now).
Flows within one site never cross a wavelength and are not tracked.

A flow's rate is taken over its last `RATE_WINDOW_POLLS` polls, not one: OVS's userspace
datapath pushes a flow's byte counter to OpenFlow only when its revalidators run (every
500 ms, measured), so over a 1 s poll a steady flow reads 0.5, 1 or 1.5 times its rate
depending on how many pushes the poll caught. Over two polls it reads within a quarter.
After a poll with nothing sent the window starts again, so a flow coming back (a training
step's sync) is measured, and found, as fast as a new one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..fabric import Fabric
from .attribution import dci_stages
from .load import UNAVAILABLE
from .paths import PathEngine

# How long loadaware keeps an idle elephant's pin (seconds; core.steering). Off by default:
# a held pin keeps its room, so a workload of one-off flows would place new elephants
# around the ghosts of ended ones (with a 60 s default, a reservation test once saw an
# elephant stay on the reserved wavelength). `dcilab train` holds them for 3 training
# steps (bench.training), longer than a step, so the sync's flows, which recur with the
# same 5-tuples, come back on their wavelengths.
PIN_HOLD_S = 0.0

RATE_WINDOW_POLLS = 2


@dataclass(frozen=True)
class FlowKey:
    src_ip: str
    dst_ip: str
    ip_proto: int
    src_port: int
    dst_port: int

    def __str__(self) -> str:
        proto = {6: "tcp", 17: "udp"}.get(self.ip_proto, str(self.ip_proto))
        return f"{proto} {self.src_ip}:{self.src_port} > {self.dst_ip}:{self.dst_port}"


@dataclass
class FlowRecord:
    key: FlowKey
    src_host: str
    dst_host: str
    threshold_bps: float
    last_bytes: int
    last_time: float
    rate_bps: float = 0.0          # real units, over the last RATE_WINDOW_POLLS polls
    above: int = 0                 # consecutive polls at or over the threshold
    below: int = 0                 # consecutive polls under half of it
    elephant: bool = False
    # (time, bytes sent since first seen) at the last RATE_WINDOW_POLLS + 1 polls
    sent: deque = field(default_factory=lambda: deque(maxlen=RATE_WINDOW_POLLS + 1))


class ElephantDetector:
    def __init__(self, fabric: Fabric, graph: PathEngine, fraction: float = 0.1,
                 polls: int = 2):
        if not 0 < fraction <= 1 or polls < 1:
            raise ValueError("elephant_fraction must be in (0, 1] and elephant_polls >= 1")
        self.fabric, self.graph = fabric, graph
        self.fraction, self.polls = fraction, polls
        self.flows: dict[FlowKey, FlowRecord] = {}
        # those of `flows` that are elephants now: asked at every release of a reservation
        # (steering's loose elephants), where walking every flow seen would cost
        self._elephants: dict[FlowKey, FlowRecord] = {}
        self._threshold: dict[tuple[str, str], float] = {}
        self._version = graph.version

    def threshold_bps(self, src_leaf: str, dst_leaf: str) -> float:
        """elephant_fraction x the slowest wavelength on the shortest paths as they are now
        (real b/s; their rates after any mode change). With no path between the leaves
        (their line systems down) there is nothing to steer onto: no flow is an elephant."""
        if self._version != self.graph.version:       # a link or a rate changed
            self._threshold.clear()
            self._version = self.graph.version
        key = (src_leaf, dst_leaf)
        if key not in self._threshold:
            rates = [self.graph.rate_gbps(c.link)
                     for stage in dci_stages(self.graph, src_leaf, dst_leaf) for c in stage]
            self._threshold[key] = (self.fraction * min(rates) * 1e9 if rates
                                    else float("inf"))
        return self._threshold[key]

    def elephants(self) -> list[FlowRecord]:
        return list(self._elephants.values())

    def sample(self, leaf: str, counters: dict[FlowKey, int], now: float
               ) -> tuple[list[FlowRecord], list[FlowRecord]]:
        """Counters of the flows entering at `leaf`; returns (new elephants, ended ones)."""
        new, ended = [], []
        for key, count in counters.items():
            if count >= UNAVAILABLE:   # the switch could not read it (all ones): no reading
                continue
            record = self.flows.get(key)
            if record is None:
                src, dst = self.fabric.host_by_ip(key.src_ip), self.fabric.host_by_ip(key.dst_ip)
                if src is None or dst is None or src.leaf != leaf or src.site == dst.site:
                    continue
                record = FlowRecord(key, src.name, dst.name,
                                    self.threshold_bps(src.leaf, dst.leaf), count, now)
                record.sent.append((now, 0))
                self.flows[key] = record
                continue
            if now <= record.last_time:
                continue
            # A re-learned entry restarts at 0: what it holds now was all sent since.
            delta = count - record.last_bytes if count >= record.last_bytes else count
            if delta == 0:        # idle: a flow starting again is measured from now on
                record.sent.clear()
            record.sent.append((now, (record.sent[-1][1] if record.sent else 0) + delta))
            (since, before), sent = record.sent[0], record.sent[-1][1]
            record.rate_bps = ((sent - before) * 8 / (now - since) / self.fabric.scale
                               if now > since else 0.0)
            record.last_bytes, record.last_time = count, now
            src_leaf, dst_leaf = (self.fabric.hosts[record.src_host].leaf,
                                  self.fabric.hosts[record.dst_host].leaf)
            record.threshold_bps = self.threshold_bps(src_leaf, dst_leaf)
            if record.rate_bps >= record.threshold_bps:
                record.above, record.below = record.above + 1, 0
            else:
                record.above = 0
                record.below = record.below + 1 if record.rate_bps < record.threshold_bps / 2 else 0
            if not record.elephant and record.above >= self.polls:
                record.elephant = True
                self._elephants[key] = record
                new.append(record)
            elif record.elephant and (record.below >= self.polls or delta == 0):
                record.elephant = False
                del self._elephants[key]
                ended.append(record)
        for key in [k for k, r in self.flows.items()
                    if self.fabric.hosts[r.src_host].leaf == leaf and k not in counters]:
            record = self.flows.pop(key)          # its learned entry timed out: flow over
            if record.elephant:
                record.elephant = False
                del self._elephants[key]
                ended.append(record)
        return new, ended
