"""A line system as it is now, not as it was designed: spans lose more, amplifiers get noisy.

`LineState` is the design (`LineSystem`) plus what changed: extra loss per span (a bend, a
bad splice, ageing), the noise figure of each amplifier, the launch power. `line_gsnr_db`
turns it into the GSNR of each lit wavelength: it is the ONE place that calls the
line-system QoT engine, so replacing the engine (GNPy) changes one function body.

Spans and amplifiers are numbered from 1, span k followed by amplifier k (the amplifier
at the end of the last span is the receiver's preamplifier), as `LineSystem` counts them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .ber import snr_from_osnr
from .catalog import OpticsError
from .line import LineSystem, combine_osnr_db


@dataclass(frozen=True)
class ChannelSignal:
    """What the QoT engine needs of one lit wavelength."""

    name: str
    frequency_thz: float
    baud_gbd: float
    width_ghz: float


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
        if any(nf < 0 for nf in self.amplifier_nf_db):
            raise OpticsError("amplifier noise figure must be >= 0 dB")
        _finite("launch_power_dbm", self.launch_power_dbm)

    @classmethod
    def as_built(cls, line: LineSystem) -> LineState:
        """The line as designed: no extra loss, every amplifier at the design noise figure."""
        return cls(line, (0.0,) * line.spans, (line.amplifier_nf_db,) * line.spans,
                   line.launch_power_dbm)

    @property
    def spans(self) -> int:
        return self.line.spans

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

    def span_line(self, span: int) -> LineSystem:
        """Span `span` alone as a one-span LineSystem, its extra loss folded into the
        attenuation, with its own amplifier's noise figure and the current launch power."""
        i = self._index("span", span)
        length = self.line.span_length_km
        return dataclasses.replace(
            self.line, fiber_km=length, span_km=length,
            attenuation_db_per_km=(self.line.span_loss_db + self.span_extra_loss_db[i]) / length,
            amplifier_nf_db=self.amplifier_nf_db[i], launch_power_dbm=self.launch_power_dbm)


def ase_osnr_db(state: LineState, tx_osnr_db: float) -> float:
    """OSNR per 0.1 nm after the line: each span's ASE (controller/optics/line.py's
    formula, 58 + P − L − NF, one span at a time) and the transmitter's noise, added."""
    spans = [state.span_line(k).line_osnr_db for k in range(1, state.spans + 1)]
    return combine_osnr_db(*spans, tx_osnr_db)


def line_gsnr_db(state: LineState, channels: Sequence[ChannelSignal],
                 tx_osnr_db: float) -> list[float]:
    """GSNR (dB, in each signal's bandwidth) of every lit channel on a line in `state`.

    This is the one call into the QoT engine. Today the engine is the ASE-only formula of
    controller/optics/line.py applied span by span, which gives every channel the same OSNR
    and ignores nonlinear interference; a GNPy engine replaces the body of this function
    (same arguments: the line's physical state, the lit spectrum, the transmitter OSNR).
    """
    osnr = ase_osnr_db(state, tx_osnr_db)
    return [snr_from_osnr(osnr, channel.baud_gbd) for channel in channels]
