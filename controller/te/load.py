"""Measured load per directed link, from the port counters switches report.

A link has two directions; each is reported on its own, named by the end it leaves from.
Emulated byte counts are divided by the fabric's `scale`, so rates, utilizations and byte
totals are in real units against the real (unscaled) capacity.

Counters can go backwards (a switch restarted, a 64-bit wrap after years): such a sample
only re-bases the counter; it never yields a negative or absurd rate, and the running
real-unit totals stay monotonic. A counter the switch cannot read is sent as all ones
(OpenFlow's "unavailable"; OVS does so for a port whose interface is going away): that
sample is skipped, never taken as 1.8e19 bytes sent.

A total starts from the switch's own counter, not from 0, so a controller restarted while
the switches run goes on from where the last one left its totals: Prometheus sees no
reset, and the traffic of the restart's seconds is not lost from rate(). A switch that was
away (its control channel lost, not restarted) is counted across its absence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

from ..fabric import Fabric
from ..fabric.model import Link

UNAVAILABLE = 2 ** 64 - 1     # an OpenFlow counter the switch cannot read


class Direction(NamedTuple):
    """One direction of a link: traffic leaving `src` (a switch or host) towards `dst`.
    A NamedTuple: admission hashes these on its hot path."""

    link: str
    src: str
    dst: str


@dataclass(frozen=True)
class LinkLoad:
    """What is known about one direction of one link, in real units."""

    link: str
    wavelength: str | None
    kind: str                  # host | fabric | dci
    site_a: str                # site of the sending end
    site_b: str                # site of the receiving end
    src: str
    dst: str
    capacity_bps: float
    transmit_bytes_total: float
    receive_bytes_total: float
    rate_bps: float
    utilization_ratio: float
    reserved_bps: float
    up: bool
    mode: str | None = None    # a wavelength's operating mode now (None off DCI)
    margin_db: float | None = None   # its margin in that mode (None off DCI)
    # The counter each total is taken from has been read: the total is the switch's, not a
    # stand-in 0 (a restarted controller exporting 0 until its first poll made Prometheus
    # see a reset)
    transmit_counted: bool = True
    receive_counted: bool = True
    # Up and in use (not held down after a flap, nor drained for a mode change)
    in_service: bool = True
    # Taken out of use on purpose, for a mode change: it may go dark meanwhile, and that
    # is no failure (alerts leave it out: a step down paged DcilabLinkDown, an SRE's)
    drained: bool = False


@dataclass
class _Counter:
    """One switch port counter, tracked across samples."""

    last: int | None = None
    last_time: float | None = None
    total: float = 0.0        # real-unit bytes: the first reading, then positive deltas
    rate_bps: float = 0.0     # real bits per second over the last interval


def required_osnr_db(link: Link, mode: str | None, catalog) -> float | None:
    """The OSNR a wavelength's `mode` needs (None: its planned mode), dB: rate adaptation
    may run it in another mode than the plan's. Its modelled margin is its GSNR less this.
    None for a mode its module's catalog entry does not have."""
    ch = link.channel
    if mode in (None, ch.mode):
        return ch.required_osnr_db
    if ch.module not in catalog or mode not in catalog.module(ch.module).mode_names:
        return None
    return catalog.module(ch.module).mode(mode).required_osnr_db


def _read(counter: _Counter | None) -> _Counter | None:
    """`counter` if the switch has given a reading of it."""
    return counter if counter is not None and counter.last is not None else None


def directions(link: Link) -> tuple[Direction, Direction]:
    return (Direction(link.name, link.a.node, link.b.node),
            Direction(link.name, link.b.node, link.a.node))


class LoadTracker:
    """Turns successive port-counter samples into per-direction rates and totals."""

    def __init__(self, fabric: Fabric):
        self.fabric = fabric
        self._tx: dict[tuple[str, int], _Counter] = {}
        self._rx: dict[tuple[str, int], _Counter] = {}
        self._down_switches: set[str] = set(fabric.switches)
        self._down_ports: set[tuple[str, int]] = set()
        self._port_of = {(end.node, link.name): end.port for link in fabric.links
                         for end in (link.a, link.b) if end.node in fabric.switches}
        # The last snapshot of each `kinds` without reservations, with what it was made
        # of, and the last with them: a snapshot of a large fabric takes milliseconds,
        # readers (ListLinks, /metrics, watch streams) ask again and again between two
        # polls, and under a stream of bookings only the reserved figures change.
        # `_version` counts the changes of this tracker's own state.
        self._version = 0
        self._bases: dict[frozenset[str] | None, tuple] = {}
        self._last: dict[frozenset[str] | None, tuple] = {}

    def sample(self, switch: str, counters: dict[int, tuple[int, int]], now: float) -> None:
        """Record port counters of `switch`: port -> (tx_bytes, rx_bytes), taken at `now`."""
        self._down_switches.discard(switch)
        for port, (tx, rx) in counters.items():
            self._advance(self._tx.setdefault((switch, port), _Counter()), tx, now)
            self._advance(self._rx.setdefault((switch, port), _Counter()), rx, now)
        # After the change: a snapshot read meanwhile (on another thread) is kept under
        # the old version, so the next reader builds it again.
        self._version += 1

    def _advance(self, counter: _Counter, value: int, now: float) -> None:
        if value >= UNAVAILABLE:
            return
        if counter.last is None:
            counter.total = value / self.fabric.scale
        elif value >= counter.last and now > counter.last_time:
            delta = (value - counter.last) / self.fabric.scale
            counter.total += delta
            counter.rate_bps = delta * 8 / (now - counter.last_time)
        elif value < counter.last:
            counter.rate_bps = 0.0   # reset or wrap: re-base, report nothing for this interval
        counter.last, counter.last_time = value, now

    def switch_down(self, switch: str) -> None:
        """A switch unheard from sends nothing we can see. Its baselines stay: one that only
        lost its control channel counted on, and its next sample covers the absence; one
        that restarted comes back with smaller counters, which re-base them."""
        self._down_switches.add(switch)
        for key in list(self._tx) + list(self._rx):
            if key[0] == switch:
                for table in (self._tx, self._rx):
                    if key in table:
                        table[key].rate_bps = 0.0
        self._version += 1

    def port_state(self, switch: str, port: int, up: bool) -> None:
        (self._down_ports.discard if up else self._down_ports.add)((switch, port))
        self._version += 1

    def rate_bps(self, direction: Direction) -> float:
        """What arrives at the far end: userspace OVS counts as sent what a shaped link then
        drops, so the receiving port's counter is the truth where there is one."""
        counter = self._rx_counter(direction) or self._tx_counter(direction)
        return counter.rate_bps if counter else 0.0

    def _port(self, node: str, link: str) -> int | None:
        return self._port_of.get((node, link))

    def _tx_counter(self, d: Direction) -> _Counter | None:
        port = self._port(d.src, d.link)
        return self._tx.get((d.src, port)) if port is not None else None

    def _rx_counter(self, d: Direction) -> _Counter | None:
        port = self._port(d.dst, d.link)
        return self._rx.get((d.dst, port)) if port is not None else None

    def snapshot(self, reserved_bps: dict[Direction, float] | None = None,
                 kinds: frozenset[str] | None = None,
                 rates_gbps: dict[str, float] | None = None,
                 modes: dict[str, str] | None = None,
                 reported_margins_db: dict[str, float] | None = None,
                 out_of_service: frozenset[str] = frozenset(),
                 drained: frozenset[str] = frozenset()) -> list[LinkLoad]:
        """Every direction of every link (of `kinds`, if given), in file order.
        `rates_gbps`, `modes`: wavelengths running another rate or mode than their
        plan's (rate adaptation). `reported_margins_db`: wavelength -> the margin its
        transceivers report; the others show the plan's in the mode they run, and a
        wavelength down (cut, dark, changing mode) shows none. `out_of_service`: links
        not in use though they may be up (held down, drained: the path engine's);
        `drained`: those of them drained for a mode change.
        The list is shared with every caller asking the same of the same state: read it,
        do not change it."""
        kinds = frozenset(kinds) if kinds is not None else None
        asked = (self._version, dict(rates_gbps or {}), dict(modes or {}),
                 dict(reported_margins_db or {}), frozenset(out_of_service), frozenset(drained))
        base = self._bases.get(kinds)
        if base is None or base[0] != asked:
            loads = self._snapshot(kinds, *asked[1:])
            base = self._bases[kinds] = (asked, loads, {
                Direction(l.link, l.src, l.dst): i for i, l in enumerate(loads)})
        reserved = {d: bps for d, bps in (reserved_bps or {}).items() if bps}
        last = self._last.get(kinds)
        if last is not None and last[0] is base:
            if last[1] == reserved:
                return last[2]
            # From the last one: only the directions whose figure changed are new objects.
            was, out = last[1], list(last[2])
            changed = [d for d in reserved.keys() | was.keys() if reserved.get(d) != was.get(d)]
        else:
            out, changed = list(base[1]), list(reserved)
        for d in changed:
            i = base[2].get(d)
            if i is not None:
                bps = reserved.get(d)
                out[i] = (dataclasses.replace(base[1][i], reserved_bps=bps) if bps
                          else base[1][i])
        self._last[kinds] = (base, reserved, out)
        return out

    def _snapshot(self, kinds: frozenset[str] | None, rates_gbps: dict[str, float],
                  modes: dict[str, str], reported_margins_db: dict[str, float],
                  out_of_service: frozenset[str], drained: frozenset[str]) -> list[LinkLoad]:
        """The snapshot with nothing reserved."""
        catalog = self.fabric.catalog       # rebuilt at each access where the file overrides
        out = []
        for link in self.fabric.links:
            if kinds is not None and link.kind not in kinds:
                continue
            capacity = rates_gbps.get(link.name, link.rate_gbps) * 1e9
            ends = [(e.node, e.port) for e in (link.a, link.b) if e.node in self.fabric.switches]
            dark = any(end in self._down_ports for end in ends)
            up = not dark and all(node not in self._down_switches for node, _ in ends)
            mode = modes.get(link.name) or (link.channel.mode if link.channel else None)
            margin = reported_margins_db.get(link.wavelength or "")
            if margin is None and link.channel is not None:
                needs = required_osnr_db(link, mode, catalog)
                margin = None if needs is None else link.channel.gsnr_db - needs
            if not up:
                margin = None   # the plan's figure would show a dead channel as healthy
            for d in directions(link):
                tx, rx = _read(self._tx_counter(d)), _read(self._rx_counter(d))
                # Each total comes from one end for good, the sender's transmit and the
                # receiver's receive counter (a host has none: its switch's other one):
                # a total that moved to the other end's counter once that end was read
                # jumped by the difference of their bases, a reset to Prometheus.
                sent = tx if d.src in self.fabric.switches else rx
                received = rx if d.dst in self.fabric.switches else tx
                # A port down carries nothing: not the rate of the last interval before
                # it went down. (A switch unheard from still has the other end's counters.)
                measured = rx or tx
                rate = measured.rate_bps if measured and not dark else 0.0
                out.append(LinkLoad(
                    link=link.name, wavelength=link.wavelength, kind=link.kind,
                    site_a=self._site(d.src), site_b=self._site(d.dst), src=d.src, dst=d.dst,
                    capacity_bps=capacity,
                    transmit_bytes_total=sent.total if sent else 0.0,
                    receive_bytes_total=received.total if received else 0.0,
                    rate_bps=rate, utilization_ratio=rate / capacity if capacity else 0.0,
                    reserved_bps=0.0, up=up, mode=mode,
                    margin_db=margin, transmit_counted=sent is not None,
                    receive_counted=received is not None,
                    in_service=up and link.name not in out_of_service,
                    drained=link.name in drained))
        return out

    def _site(self, node: str) -> str:
        sw = self.fabric.switches.get(node)
        return sw.site if sw else self.fabric.hosts[node].site
