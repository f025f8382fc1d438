"""The line system of a DCI link: amplified spans of fibre, and what they do to a wavelength."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .catalog import OpticsError

# 10·log10(h·ν·B_ref) in dBm at 193.1 THz with the 12.5 GHz (0.1 nm) reference bandwidth:
# the ASE floor one amplifier of 0 dB noise figure adds. Gives the textbook 58 dB rule.
OSNR_CONSTANT_DB = 58.0
# Group index ≈ 1.468 in silica fibre.
LATENCY_US_PER_KM = 4.9
BAND_NAMES = ("C", "C+L")
# ceil() of a ratio that float division leaves a hair above a whole number (2.1/0.3).
_CEIL_TOLERANCE = 1e-9


def _finite(name: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise OpticsError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def db_to_linear(db: float) -> float:
    return 10.0 ** (db / 10.0)


def linear_to_db(ratio: float) -> float:
    return 10.0 * math.log10(ratio)


def combine_osnr_db(*osnr_db: float) -> float:
    """OSNR of independent noise sources in cascade: their noise powers add.

    Parameters
    ----------
    *osnr_db
        Each source's OSNR in dB (e.g. the line's ASE and the transmitter's own noise).

    Returns
    -------
    float
        The total OSNR in dB, from 1/OSNR = Σ 1/OSNR_i in linear units.
    """
    return -linear_to_db(sum(1.0 / db_to_linear(value) for value in osnr_db))


@dataclass(frozen=True)
class LineSystem:
    """A point-to-point amplified line: `fiber_km` split into equal spans, each followed by an EDFA.

    Defaults are planning figures: 0.22 dB/km with splices, 5.5 dB noise figure (GNPy),
    80 km spans, 17 ps/(nm·km) G.652 dispersion, and GNPy's 2 dB system margin.
    """

    fiber_km: float
    span_km: float = 80.0
    attenuation_db_per_km: float = 0.22
    amplifier_nf_db: float = 5.5
    launch_power_dbm: float = 0.0
    margin_db: float = 2.0
    dispersion_ps_nm_km: float = 17.0
    band: str = "C"

    def __post_init__(self) -> None:
        for name in ("fiber_km", "span_km", "attenuation_db_per_km", "amplifier_nf_db",
                     "launch_power_dbm", "margin_db", "dispersion_ps_nm_km"):
            _finite(name, getattr(self, name))
        for name in ("fiber_km", "span_km"):
            if getattr(self, name) <= 0:
                raise OpticsError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("attenuation_db_per_km", "amplifier_nf_db", "margin_db",
                     "dispersion_ps_nm_km"):
            if getattr(self, name) < 0:
                raise OpticsError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.band not in BAND_NAMES:
            raise OpticsError(
                f"unknown band {self.band!r}; valid bands are {', '.join(BAND_NAMES)}")

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
        return self.attenuation_db_per_km * self.span_length_km

    @property
    def line_osnr_db(self) -> float:
        """ASE-limited OSNR per 0.1 nm after N identical spans.

        Returns
        -------
        float
            OSNR_line = 58 + P_ch − L_span − NF − 10·log10(N), in dB. Each amplifier makes up
            its span's loss and adds the same ASE, so the noise grows with N.
        """
        return (OSNR_CONSTANT_DB + self.launch_power_dbm - self.span_loss_db
                - self.amplifier_nf_db - linear_to_db(self.spans))

    def osnr_db(self, tx_osnr_db: float) -> float:
        """The OSNR a receiver sees: the line's ASE plus the transmitter's own noise."""
        return combine_osnr_db(self.line_osnr_db, tx_osnr_db)

    @property
    def dispersion_ps_nm(self) -> float:
        """Chromatic dispersion accumulated end to end (no in-line compensation)."""
        return self.dispersion_ps_nm_km * self.fiber_km

    @property
    def propagation_latency_us(self) -> float:
        return LATENCY_US_PER_KM * self.fiber_km
