"""A line system as it is now, not as it was designed: spans lose more, amplifiers get noisy.

`LineState` is the design (`LineSystem`) plus what changed: extra loss per span (a bend, a
bad splice, ageing), the noise figure of each amplifier, the launch power (fixed at
commissioning: a line set to "auto" keeps the power chosen for its design). `line_gsnr_db`
turns it into the GSNR of each lit wavelength: it is the ONE place that calls the
line-system QoT engine (GNPy, through `qot.line_qot`).

Spans and amplifiers are numbered from 1, span k followed by amplifier k (the amplifier
at the end of the last span is the receiver's preamplifier), as `LineSystem` counts them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .ber import snr_from_osnr
from .catalog import Mode, Module, OpticsError
from .line import AUTO, MIN_AMPLIFIER_NF_DB, LineSystem
from .qot import line_qot


@dataclass(frozen=True)
class ChannelSignal:
    """What the QoT engine needs of one lit wavelength."""

    name: str
    frequency_thz: float
    baud_gbd: float
    width_ghz: float


# What ends the light, rather than only its OSNR: an in-line EDFA makes up at most about
# this much span loss (a practical ceiling; beyond it the signal leaves weaker by the
# excess), and a ZR receiver loses the signal below about -20 dBm (a 400G ZR datasheet's
# Rx power range, -20 to 0 dBm at high OSNR). A span loss past both reads as a cut.
EDFA_MAX_GAIN_DB = 35.0
RX_SENSITIVITY_DBM = -20.0


# An attenuator or a bend takes a span dark long before this; a figure beyond is a typo.
MAX_EXTRA_LOSS_DB = 100.0


def _finite(name: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise OpticsError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class LineState:
    """A line system's physical state: its design and what has changed since."""

    line: LineSystem
    span_extra_loss_db: tuple[float, ...]
    amplifier_nf_db: tuple[float, ...]
    launch_power_dbm: float

    def __post_init__(self) -> None:
        n = self.line.spans
        for name in ("span_extra_loss_db", "amplifier_nf_db"):
            values = getattr(self, name)
            if len(values) != n:
                raise OpticsError(f"{name} needs one value per span ({n}), got {len(values)}")
            for i, value in enumerate(values, start=1):
                _finite(f"{name}[{i}]", value)
        if any(loss < 0 for loss in self.span_extra_loss_db):
            raise OpticsError("extra span loss must be >= 0 dB")
        if any(nf < MIN_AMPLIFIER_NF_DB for nf in self.amplifier_nf_db):
            raise OpticsError(f"amplifier noise figure must be >= {MIN_AMPLIFIER_NF_DB:g} dB "
                              f"(an EDFA's quantum limit)")
        _finite("launch_power_dbm", self.launch_power_dbm)
        self.line_system()                     # the QoT engine's own checks (power range)

    @classmethod
    def as_built(cls, line: LineSystem, launch_power_dbm: float | None = None) -> LineState:
        """The line as designed: no extra loss, every amplifier at the design noise figure.

        `launch_power_dbm` is the power the line was commissioned at; it must be given when
        the design says "auto" (the plan's `launch_power_dbm` is the one chosen).
        """
        launch = line.launch_power_dbm if launch_power_dbm is None else launch_power_dbm
        if launch == AUTO:
            raise OpticsError("a line designed with launch power auto needs the power chosen")
        return cls(line, (0.0,) * line.spans, (line.amplifier_nf_db,) * line.spans,
                   float(launch))

    @property
    def spans(self) -> int:
        return self.line.spans

    def power_deficit_db(self) -> float:
        """How far below its launch power the signal reaches the receiver: each span's
        loss beyond what its amplifier can make up (EDFA_MAX_GAIN_DB), summed."""
        span_loss = self.line.fiber_km / self.spans * self.line.attenuation_db_per_km
        return sum(max(0.0, span_loss + extra - EDFA_MAX_GAIN_DB)
                   for extra in self.span_extra_loss_db)

    def loss_of_signal(self) -> bool:
        """Whether the receivers get too little light to lock on at all (as for a cut)."""
        return self.launch_power_dbm - self.power_deficit_db() < RX_SENSITIVITY_DBM

    def _index(self, what: str, number: int) -> int:
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= self.spans:
            raise OpticsError(f"{what} {number!r} does not exist: this line has "
                              f"{self.spans} (numbered 1 to {self.spans})")
        return number - 1

    def with_span_loss(self, span: int, extra_loss_db: float) -> LineState:
        """This state with `extra_loss_db` of extra loss in span `span` (1-based)."""
        i = self._index("span", span)
        losses = list(self.span_extra_loss_db)
        losses[i] = _finite("extra loss", extra_loss_db)
        if losses[i] > MAX_EXTRA_LOSS_DB:
            raise OpticsError(f"extra span loss must be at most {MAX_EXTRA_LOSS_DB:g} dB (far "
                              f"past any light: more is a cut), got {extra_loss_db:g}")
        return dataclasses.replace(self, span_extra_loss_db=tuple(losses))

    def with_amplifier_nf(self, amplifier: int, nf_db: float) -> LineState:
        """This state with amplifier `amplifier` (1-based) at noise figure `nf_db`."""
        i = self._index("amplifier", amplifier)
        nfs = list(self.amplifier_nf_db)
        nfs[i] = _finite("noise figure", nf_db)
        return dataclasses.replace(self, amplifier_nf_db=tuple(nfs))

    def with_launch_power(self, launch_power_dbm: float) -> LineState:
        return dataclasses.replace(self, launch_power_dbm=_finite("launch power",
                                                                  launch_power_dbm))

    def line_system(self) -> LineSystem:
        """The design with this state folded in, as the QoT engine takes it."""
        return dataclasses.replace(self.line, span_extra_loss_db=self.span_extra_loss_db,
                                   amplifier_nf_db_each=self.amplifier_nf_db,
                                   launch_power_dbm=self.launch_power_dbm)


def line_gsnr_db(state: LineState, channels: Sequence[ChannelSignal], module: Module,
                 mode: Mode) -> list[float]:
    """GSNR (dB, in each signal's bandwidth) of every lit channel on a line in `state`.

    This is the one call into the QoT engine: GNPy propagates the line's spectrum as
    planned (`len(channels)` wavelengths of `mode`, first fit, the transmitter noise of
    `module`) through the line in `state`, and gives each wavelength's GSNR per 0.1 nm.
    A channel running another mode than the plan's (during rate adaptation) keeps that
    noise density and is converted to its own bandwidth: an approximation, since its
    neighbours' nonlinear interference depends a little on its symbol rate.
    """
    qot = line_qot(state.line_system(), module, mode, wavelengths=len(channels))
    by_frequency = list(zip(qot.frequency_thz, qot.gsnr_db))
    out = []
    for channel in channels:
        freq, gsnr_01nm = min(by_frequency, key=lambda f: abs(f[0] - channel.frequency_thz))
        if abs(freq - channel.frequency_thz) > 1e-6:
            raise OpticsError(f"{channel.name} at {channel.frequency_thz} THz is not on the "
                              f"planned grid of {len(channels)} x {mode.name}")
        out.append(snr_from_osnr(gsnr_01nm, channel.baud_gbd))
    return out
