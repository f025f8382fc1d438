"""The optical state of an emulated fabric, changing over time: line systems that degrade,
transceivers whose mode is set, and what each wavelength's receivers see.

It holds, per line system, its `LineState` (extra loss per span, noise figure per
amplifier, launch power), and per transceiver (one at each end of every wavelength) its
mode. `tick(now)` moves ramps on and recomputes every receiver's reading; the gNMI server
serves those readings and the data plane applies their effect (see `effects`).

Physics lives in `optics`: `optics.line_state.line_gsnr_db` (the QoT engine's one entry
point) gives each wavelength's GSNR, `optics.receiver.read` its BER, Q, margin and loss.
Here is only state, time and locking. Both fibres of a line system's pair are taken to
degrade together (a span is a cable), so both receivers of a wavelength see the same line.

A mode change takes the transceiver down for its reconfiguration time; the wavelength is
dark while either end reconfigures or the two ends run different modes.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..fabric import Fabric
from ..fabric.model import optical_line
from ..optics import Catalog, Mode, Module, OpticsError
from ..optics.line_state import ChannelSignal, LineState, line_gsnr_db
from ..optics.receiver import FEC_CLIFF_DB, SYNC_LOSS_DB, Reading, read

log = logging.getLogger("dcilab.emulation")

# The longest a degradation may take to arrive (1e308 s was taken: one that never ends).
MAX_RAMP_S = 86400.0
# What a receiver without light is given to read (hidden: gNMI reports no OSNR then).
NO_LIGHT_GSNR_DB = -99.0

# How long a coherent transceiver is down while it changes mode. Assumption: RADWAN
# (Singh et al., SIGCOMM 2018) measured modulation changes on commercial transponders
# that turn the laser off and on, taking about a minute (68 s as we recall it; they cut
# it to tens of milliseconds by keeping the laser on). Not checked against the paper's
# text on this machine: treat as an assumption and set it with --reconfiguration-s.
DEFAULT_RECONFIGURATION_S = 68.0
# avg/min/max of the OpenConfig statistics are taken over this window (OpenConfig leaves
# the interval to the device; 10 s is a common PM bin for streamed optics).
STATS_WINDOW_S = 10.0
# What a transceiver whose laser is off reports as its output power: the floor of a
# typical module's power monitor, rather than nothing (OpenConfig has no "off" value).
LASER_OFF_DBM = -40.0


@dataclass(frozen=True)
class Transceiver:
    """One ZR module: at `gateway`'s `port`, one end of `wavelength`."""

    gateway: str
    port: int
    wavelength: str
    line_system: str
    module: Module
    frequency_thz: float

    @property
    def key(self) -> tuple[str, str]:
        return (self.wavelength, self.gateway)


@dataclass(frozen=True)
class Ramp:
    """A value moving linearly from `start` to `target` over `duration_s` from `t0`."""

    start: float
    target: float
    t0: float
    duration_s: float

    def value_at(self, now: float) -> float:
        if self.duration_s <= 0 or now >= self.t0 + self.duration_s:
            return self.target
        return self.start + (self.target - self.start) * max(0.0, now - self.t0) / self.duration_s

    def done(self, now: float) -> bool:
        return now >= self.t0 + self.duration_s


@dataclass(frozen=True)
class Stats:
    instant: float
    avg: float
    min: float
    max: float


@dataclass(frozen=True)
class TransceiverStatus:
    """What one transceiver reports: its mode, its receiver's reading, and statistics."""

    transceiver: Transceiver
    mode: Mode
    mode_id: int
    output_power_dbm: float
    reading: Reading
    reconfiguring: bool
    dark: bool
    stats: dict[str, Stats]       # prefec_ber, q_db, esnr_db, osnr_db, output_power_dbm
    # No light reaches its receiver (a fibre cut, or the far or its own laser off by a
    # fault): its link is down, whatever its mode says.
    no_light: bool = False
    laser_on: bool = True         # off: its own transmitter is dark (a fault)
    # A signal in its own mode arrives (not reconfiguring, the far end in the same mode),
    # decoded or not: its OSNR is measured on the received spectrum even when the line is
    # too noisy to decode, which is what lets a controller step such a wavelength down.
    signal: bool = True


@dataclass(frozen=True)
class WavelengthEffect:
    """What the data plane must do to one wavelength."""

    rate_gbps: int
    loss_per_mille: int
    dark: bool


def mode_ids(catalog: Catalog) -> dict[tuple[str, str], int]:
    """(module, mode) -> operational-mode id, numbered from 1 in catalog order.

    OpenConfig's `operational-mode` is a vendor-specific uint16; the device lists what each
    id means under /terminal-device/operational-modes.
    """
    ids, n = {}, 0
    for module in catalog:
        for mode in module.modes:
            n += 1
            ids[(module.name, mode.name)] = n
    return ids


# Knobs of a line system that ramp: ("span", k), ("amplifier", k), ("launch", 0).
Knob = tuple[str, int]


class OpticalState:
    """The fabric's optical state; every method is thread-safe."""

    def __init__(self, fabric: Fabric, reconfiguration_s: float = DEFAULT_RECONFIGURATION_S,
                 clock: Callable[[], float] = time.monotonic, penalty_db: float | None = None,
                 cliff_db: float = FEC_CLIFF_DB, sync_loss_db: float = SYNC_LOSS_DB):
        if reconfiguration_s < 0:
            raise OpticsError(f"reconfiguration time must be >= 0 s, got {reconfiguration_s}")
        self.fabric = fabric
        self.catalog = fabric.catalog
        self.mode_ids = mode_ids(self.catalog)
        self.reconfiguration_s = reconfiguration_s
        self.clock = clock
        self._read_options = {"penalty_db": penalty_db, "cliff_db": cliff_db,
                              "sync_loss_db": sync_loss_db}
        self.lock = threading.RLock()
        specs = {spec.name: spec for spec in fabric.spec.dci_links}
        # Launch power as commissioned: the plan's (a line designed "auto" keeps the power
        # chosen for it).
        self._designed = {name: LineState.as_built(optical_line(specs[name]),
                                                   plan.launch_power_dbm)
                          for name, plan in fabric.line_systems.items()}
        self._planned_mode = {name: self.catalog.module(plan.module).mode(plan.mode)
                              for name, plan in fabric.line_systems.items()}
        self._lines = dict(self._designed)
        self._ramps: dict[str, dict[Knob, Ramp]] = {name: {} for name in self._lines}
        self.transceivers: dict[tuple[str, str], Transceiver] = {}
        self._modes: dict[tuple[str, str], Mode] = {}
        self._busy_until: dict[tuple[str, str], float] = {}
        self._far: dict[tuple[str, str], Transceiver] = {}    # the other end's
        for link in fabric.wavelengths():
            plan = fabric.line_systems[link.line_system]
            module = self.catalog.module(plan.module)
            a, b = (Transceiver(end.node, end.port, link.wavelength, link.line_system, module,
                                link.channel.frequency_thz) for end in (link.a, link.b))
            for t, far in ((a, b), (b, a)):
                self.transceivers[t.key] = t
                self._modes[t.key] = module.mode(link.channel.mode)
                self._far[t.key] = far
        self._history: dict[tuple[str, str], collections.deque] = {
            key: collections.deque() for key in self.transceivers}
        self._status: dict[tuple[str, str], TransceiverStatus] = {}
        # line system -> {(its state, the signals one end sends): their GSNRs}
        self._gsnr_cache: dict[str, dict[tuple, list[float]]] = {}
        self._unreadable: dict[str, LineState] = {}   # the state last said to have no GSNR
        # From injected faults (set_faults): wavelengths without light, lasers turned off
        self._no_light: frozenset[str] = frozenset()
        self._lasers_off: frozenset[tuple[str, str]] = frozenset()
        self.version = 0          # bumped whenever the statuses are recomputed
        self.tick()

    # -- reading ------------------------------------------------------------------------

    def line_state(self, line_system: str) -> LineState:
        with self.lock:
            return self._lines[self._line_name(line_system)]

    def statuses(self) -> dict[tuple[str, str], TransceiverStatus]:
        """The latest status of every transceiver, by (wavelength, gateway)."""
        with self.lock:
            return dict(self._status)

    def effects(self) -> dict[str, WavelengthEffect]:
        """What each wavelength's data plane must do now, by wavelength name."""
        with self.lock:
            ends: dict[str, list[TransceiverStatus]] = collections.defaultdict(list)
            for status in self._status.values():
                ends[status.transceiver.wavelength].append(status)
        out = {}
        for wavelength, statuses in ends.items():
            dark = any(s.dark for s in statuses)
            out[wavelength] = WavelengthEffect(
                rate_gbps=min(s.mode.rate_gbps for s in statuses),
                loss_per_mille=0 if dark else max(s.reading.loss_per_mille for s in statuses),
                dark=dark)
        return out

    def ramping(self) -> bool:
        with self.lock:
            return any(self._ramps.values())

    # -- changing -----------------------------------------------------------------------

    def set_mode(self, wavelength: str, mode: str | int, gateway: str | None = None) -> list[str]:
        """Set the mode of `wavelength`'s transceiver at `gateway`, or at both ends.

        `mode` is a mode name of the wavelength's module (e.g. "300G") or an operational-mode
        id. A transceiver whose mode changes is down for the reconfiguration time. Returns
        the gateways whose mode changed.
        """
        with self.lock:
            ends = [t for t in self.transceivers.values() if t.wavelength == wavelength]
            if not ends:
                raise OpticsError(f"unknown wavelength {wavelength!r}")
            if gateway is not None:
                ends = [t for t in ends if t.gateway == gateway]
                if not ends:
                    raise OpticsError(f"wavelength {wavelength} does not end on {gateway}")
            new = self._resolve_mode(ends[0].module, mode)
            now = self.clock()
            changed = []
            for t in ends:
                if self._modes[t.key] != new:
                    self._modes[t.key] = new
                    self._busy_until[t.key] = now + self.reconfiguration_s
                    changed.append(t.gateway)
            self._recompute(now)
            return changed

    def _resolve_mode(self, module: Module, mode: str | int) -> Mode:
        if isinstance(mode, int) and not isinstance(mode, bool):
            for (module_name, mode_name), mode_id in self.mode_ids.items():
                if mode_id == mode and module_name == module.name:
                    return module.mode(mode_name)
            valid = ", ".join(f"{self.mode_ids[(module.name, m.name)]} ({m.name})"
                              for m in module.modes)
            raise OpticsError(f"operational-mode {mode} is not a mode of {module.name}; "
                              f"valid: {valid}")
        return module.mode(str(mode))

    def degrade_span(self, line_system: str, span: int, extra_loss_db: float,
                     ramp_s: float = 0.0) -> None:
        """Extra loss in span `span` (1-based), reached linearly over `ramp_s` seconds."""
        self._set_knob(line_system, ("span", span), extra_loss_db, ramp_s)

    def set_amplifier_nf(self, line_system: str, amplifier: int, nf_db: float,
                         ramp_s: float = 0.0) -> None:
        """Noise figure of amplifier `amplifier` (1-based), reached over `ramp_s` seconds."""
        self._set_knob(line_system, ("amplifier", amplifier), nf_db, ramp_s)

    def set_launch_power(self, line_system: str, launch_power_dbm: float,
                         ramp_s: float = 0.0) -> None:
        self._set_knob(line_system, ("launch", 0), launch_power_dbm, ramp_s)

    @contextlib.contextmanager
    def transaction(self):
        """Changes made in the block all stay, or (it raised) none does: a gNMI Set is one
        transaction (an optical tester's Set changed one mode, then failed on an unknown
        wavelength and said INVALID_ARGUMENT)."""
        with self.lock:
            saved = (dict(self._lines), {n: dict(r) for n, r in self._ramps.items()},
                     dict(self._modes), dict(self._busy_until),
                     {k: collections.deque(h) for k, h in self._history.items()})
            try:
                yield self
            except BaseException:
                (self._lines, self._ramps, self._modes, self._busy_until,
                 self._history) = saved
                self._recompute(self.clock())
                raise

    def restore(self, line_system: str | None = None) -> list[str]:
        """Stop every ramp and put the line system (or all) back as designed."""
        with self.lock:
            names = [self._line_name(line_system)] if line_system else list(self._lines)
            for name in names:
                self._ramps[name].clear()
                self._lines[name] = self._designed[name]
            self._recompute(self.clock())
            return names

    def _line_name(self, line_system: str) -> str:
        if line_system not in self._lines:
            raise OpticsError(f"unknown line system {line_system!r}; the fabric has "
                              f"{', '.join(self._lines) or 'none'}")
        return line_system

    def _set_knob(self, line_system: str, knob: Knob, value: float, ramp_s: float) -> None:
        if (not isinstance(ramp_s, (int, float)) or isinstance(ramp_s, bool)
                or not 0 <= ramp_s <= MAX_RAMP_S):
            raise OpticsError(f"ramp time must be a number of seconds from 0 to "
                              f"{MAX_RAMP_S:g} (a day), got {ramp_s!r}")
        with self.lock:
            name = self._line_name(line_system)
            state = self._lines[name]
            # Where this line ends up once every ramp of it is over, this one included:
            # checked whole, the QoT engine too, before anything changes (a state GNPy
            # refused was kept, and every later tick of the agent failed on it).
            final = state
            for other, ramp in self._ramps[name].items():
                final = _with(final, other, ramp.target)
            final = _with(final, knob, value)      # validates the knob and the value
            cached = self._gsnr_cache.get(name, {})
            try:
                _, checked = self._line_gsnrs(name, final, cached)
            except OpticsError as exc:
                raise OpticsError(f"line system {name}: {_describe(knob)} {value:g} refused, "
                                  f"nothing changed: {exc}") from None
            self._gsnr_cache[name] = cached | checked     # at once: not computed twice
            now = self.clock()
            self._ramps[name][knob] = Ramp(_get(state, knob), float(value), now, float(ramp_s))
            self._advance(now)
            self._recompute(now)

    def set_faults(self, no_light: set[str], lasers_off: set[tuple[str, str]]) -> None:
        """What injected faults do to the optics: wavelengths whose receivers get no light
        (cut, or a transceiver dark), and (wavelength, gateway) transceivers whose laser is
        off (dark, or their gateway down). Taken at the next tick."""
        with self.lock:
            self._no_light, self._lasers_off = frozenset(no_light), frozenset(lasers_off)

    def tick(self, now: float | None = None) -> None:
        """Move ramps on to `now` and recompute every reading (the agent calls this)."""
        with self.lock:
            now = self.clock() if now is None else now
            self._advance(now)
            self._recompute(now)

    # -- internals (caller holds the lock) -----------------------------------------------

    def _advance(self, now: float) -> None:
        for name, ramps in self._ramps.items():
            state = self._lines[name]
            for knob, ramp in list(ramps.items()):
                state = _with(state, knob, ramp.value_at(now))
                if ramp.done(now):
                    del ramps[knob]
            self._lines[name] = state

    def _recompute(self, now: float) -> None:
        by_line: dict[str, list[Transceiver]] = collections.defaultdict(list)
        for t in self.transceivers.values():
            by_line[t.line_system].append(t)
        for name, ends in by_line.items():
            state = self._lines[name]
            try:
                sent_gsnr, self._gsnr_cache[name] = self._line_gsnrs(
                    name, state, self._gsnr_cache.get(name, {}), ends)
                unreadable = False
            except OpticsError as exc:
                # A state on a ramp's way that GNPy has no GSNR for (a huge noise figure
                # while the loss ramps into loss of signal): nothing the receivers can
                # read, rather than a tick that fails, and readings frozen, until it passes.
                if self._unreadable.get(name) != state:
                    log.warning("line system %s: no finite GSNR on its way (%s): its "
                                "receivers read no light meanwhile", name, exc)
                self._unreadable[name] = state
                sent_gsnr = {t.key: NO_LIGHT_GSNR_DB for t in ends}
                self._gsnr_cache[name] = {}
                unreadable = True
            for t in ends:
                far = self._far[t.key]
                self._status[t.key] = self._status_of(t, state, sent_gsnr[far.key], now,
                                                      unreadable)
        self.version += 1

    def _line_gsnrs(self, name: str, state: LineState, before: dict,
                    ends: list[Transceiver] | None = None
                    ) -> tuple[dict[tuple[str, str], float], dict]:
        """The GSNR each transceiver of line `name` in `state` sends its far end (by its
        key), and the QoT results to keep; OpticsError if the engine has none. Each
        direction is a fibre of its own carrying one channel per wavelength, sent by the
        transceivers at one end. The engine runs only when the line or its lit spectrum
        changed (GNPy takes tens of ms per line; `before`: the results kept), and once for
        both directions while they match. A line whose loss ends the light
        (`LineState.loss_of_signal`) reads as a cut: the engine is not asked."""
        if ends is None:
            ends = [t for t in self.transceivers.values() if t.line_system == name]
        if state.loss_of_signal():
            return {t.key: NO_LIGHT_GSNR_DB for t in ends}, {}
        sent_gsnr: dict[tuple[str, str], float] = {}
        kept: dict = {}
        for gateway in sorted({t.gateway for t in ends}):
            sending = [t for t in ends if t.gateway == gateway]
            key = (state, tuple(ChannelSignal(t.wavelength, t.frequency_thz,
                                              self._modes[t.key].baud_gbd,
                                              self._modes[t.key].width_ghz)
                                for t in sending))
            gsnrs = kept[key] if key in kept else before.get(key)
            if gsnrs is None:
                gsnrs = line_gsnr_db(state, list(key[1]), sending[0].module,
                                     self._planned_mode[name])
            kept[key] = gsnrs
            sent_gsnr.update(zip((t.key for t in sending), gsnrs))
        return sent_gsnr, kept

    def _status_of(self, t: Transceiver, state: LineState, gsnr: float,
                   now: float, unreadable: bool = False) -> TransceiverStatus:
        mode = self._modes[t.key]
        far = self._far[t.key]
        reading = read(mode, gsnr, **self._read_options)
        reconfiguring = any(self._busy_until.get(k, 0.0) > now for k in (t.key, far.key))
        signal = not reconfiguring and self._modes[far.key] == mode
        # Every frame errored is a link down (the PCS loses its lock) though the DSP may
        # still hold sync: else a link up that passes nothing, whose BFD the emulation
        # cannot be relied on to see (the optical bench's +11 dB sits on that edge).
        lost = unreadable or state.loss_of_signal()
        # A mode whose dispersion tolerance the line exceeds: its DSP cannot undo the
        # line's dispersion, so it never locks, whatever the OSNR (a mode set by hand).
        undispersed = mode.cd_tolerance_ps_nm >= state.line.dispersion_ps_nm
        dark = (lost or not signal or not undispersed or not reading.in_sync
                or reading.loss_ratio >= 1.0)
        laser_on = t.key not in self._lasers_off
        # What its power monitor reads: the launch power, or the floor with the laser off.
        power = state.launch_power_dbm if laser_on else LASER_OFF_DBM
        history = self._history[t.key]
        history.append((now, reading, power))
        while history and history[0][0] < now - STATS_WINDOW_S:
            history.popleft()
        stats = {field: _stats([getattr(r, field) for _, r, _ in history])
                 for field in ("prefec_ber", "q_db", "esnr_db", "osnr_db")}
        stats["output_power_dbm"] = _stats([p for _, _, p in history])
        return TransceiverStatus(t, mode, self.mode_ids[(t.module.name, mode.name)],
                                 state.launch_power_dbm, reading, reconfiguring, dark, stats,
                                 no_light=lost or t.wavelength in self._no_light,
                                 laser_on=laser_on,
                                 signal=signal)


def _stats(values: list[float]) -> Stats:
    return Stats(values[-1], sum(values) / len(values), min(values), max(values))


def _get(state: LineState, knob: Knob) -> float:
    kind, number = knob
    if kind == "span":
        state._index("span", number)
        return state.span_extra_loss_db[number - 1]
    if kind == "amplifier":
        state._index("amplifier", number)
        return state.amplifier_nf_db[number - 1]
    return state.launch_power_dbm


def _describe(knob: Knob) -> str:
    kind, number = knob
    return {"span": f"extra loss (dB) in span {number}",
            "amplifier": f"noise figure (dB) of amplifier {number}"}.get(kind,
                                                                       "launch power (dBm)")


def _with(state: LineState, knob: Knob, value: float) -> LineState:
    kind, number = knob
    if kind == "span":
        return state.with_span_loss(number, value)
    if kind == "amplifier":
        return state.with_amplifier_nf(number, value)
    return state.with_launch_power(value)
