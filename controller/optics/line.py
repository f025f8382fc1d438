"""The line system of a DCI link: amplified spans of fibre, described; GNPy judges it (qot.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .catalog import OpticsError

# launch_power_dbm: "auto" asks for the best launch power for the lit spectrum (qot.py).
AUTO = "auto"

# Launch power per wavelength a line may ask for. Above about +10 dBm with a full band, NLI
# takes a sizeable share of the power and GNPy's GN model leaves its range (measured: the
# ASE SNR it reports stops rising with the launch power); real ZR lines run near 0 dBm.
LAUNCH_POWER_RANGE_DBM = (-10.0, 10.0)
# Group index ≈ 1.468 in silica fibre.
LATENCY_US_PER_KM = 4.9
BAND_NAMES = ("C", "C+L")
# ceil() of a ratio that float division leaves a hair above a whole number (2.1/0.3).
_CEIL_TOLERANCE = 1e-9
# An EDFA (phase-insensitive) at high gain cannot have a noise figure below 3 dB, the
# quantum limit; a lower figure would model an amplifier no line has.
MIN_AMPLIFIER_NF_DB = 3.0


def _finite(name: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise OpticsError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class LineSystem:
    """A point-to-point amplified line: `fiber_km` split into equal spans, each followed by an EDFA.

    Defaults are planning figures: 0.22 dB/km with splices, 5.5 dB noise figure (GNPy),
    80 km spans, 17 ps/(nm·km) G.652 dispersion, and GNPy's 2 dB system margin.
    `launch_power_dbm` is per wavelength into every span, or "auto" for the best one for
    the lit spectrum. The state a line degrades into: `span_extra_loss_db` (loss added
    to each span, e.g. a bend or a bad splice) and `amplifier_nf_db_each` (each amplifier's
    own noise figure, replacing `amplifier_nf_db`); empty, or one value per span.
    """

    fiber_km: float
    span_km: float = 80.0
    attenuation_db_per_km: float = 0.22
    amplifier_nf_db: float = 5.5
    launch_power_dbm: float | str = 0.0
    margin_db: float = 2.0
    dispersion_ps_nm_km: float = 17.0
    band: str = "C"
    span_extra_loss_db: tuple[float, ...] = ()
    amplifier_nf_db_each: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("fiber_km", "span_km", "attenuation_db_per_km", "amplifier_nf_db",
                     "margin_db", "dispersion_ps_nm_km"):
            _finite(name, getattr(self, name))
        if self.launch_power_dbm != AUTO:
            power = _finite("launch_power_dbm", self.launch_power_dbm)
            low, high = LAUNCH_POWER_RANGE_DBM
            if not low <= power <= high:
                raise OpticsError(f"launch_power_dbm must be between {low:g} and {high:g} dBm "
                                  f"per wavelength (or auto), got {power:g}")
        for name in ("fiber_km", "span_km"):
            if getattr(self, name) <= 0:
                raise OpticsError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.margin_db < 0:
            raise OpticsError(f"margin_db must be >= 0, got {self.margin_db}")
        nfs = [("amplifier_nf_db", self.amplifier_nf_db)] + [
            (f"amplifier_nf_db_each[{k}]", v) for k, v in enumerate(self.amplifier_nf_db_each)]
        for name, nf in nfs:
            if _finite(name, nf) < MIN_AMPLIFIER_NF_DB:
                raise OpticsError(f"{name} must be >= {MIN_AMPLIFIER_NF_DB:g} dB (an EDFA's "
                                  f"quantum limit), got {nf:g}")
        # The GN model of nonlinear interference needs a lossy, dispersive fibre.
        for name in ("attenuation_db_per_km", "dispersion_ps_nm_km"):
            if getattr(self, name) <= 0:
                raise OpticsError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.band not in BAND_NAMES:
            raise OpticsError(
                f"unknown band {self.band!r}; valid bands are {', '.join(BAND_NAMES)}")
        for name in ("span_extra_loss_db", "amplifier_nf_db_each"):
            values = getattr(self, name)
            if not isinstance(values, tuple):
                raise OpticsError(f"{name} must be a tuple, got {values!r}")
            for k, value in enumerate(values):
                if _finite(f"{name}[{k}]", value) < 0:
                    raise OpticsError(f"{name}[{k}] must be >= 0, got {value}")
            if values and len(values) != self.spans:
                raise OpticsError(
                    f"{name} needs one value per span ({self.spans}), got {len(values)}")

    @property
    def spans(self) -> int:
        """N = ceil(fiber_km / span_km): no span may be longer than `span_km`."""
        return max(1, math.ceil(self.fiber_km / self.span_km - _CEIL_TOLERANCE))

    @property
    def span_length_km(self) -> float:
        """The length of each of the N equal spans."""
        return self.fiber_km / self.spans

    @property
    def span_loss_db(self) -> float:
        """The loss of one span as planned (without `span_extra_loss_db`)."""
        return self.attenuation_db_per_km * self.span_length_km

    @property
    def dispersion_ps_nm(self) -> float:
        """Chromatic dispersion accumulated end to end (no in-line compensation)."""
        return self.dispersion_ps_nm_km * self.fiber_km

    @property
    def propagation_latency_us(self) -> float:
        return LATENCY_US_PER_KM * self.fiber_km
