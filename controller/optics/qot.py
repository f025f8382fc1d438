"""Quality of transmission of the wavelengths lit on a line system, computed by GNPy.

Per wavelength: GSNR (amplifier ASE + fibre nonlinear interference, NLI, + the
transmitter's own noise) and OSNR_ASE (ASE + transmitter, no NLI), both per 0.1 nm
(12.5 GHz), the convention transceiver requirements are quoted in. GNPy computes the
GSNR in the signal bandwidth; per 0.1 nm = in signal bandwidth + 10·log10(baud / 12.5 GHz)
(+6.8 dB at 60 GBd, +9.8 dB at 118 GBd).

The spectrum propagated is the one actually lit: every wavelength of the link, on its
first-fit slot, at its mode's baud rate, each at the launch power.

Launch power `auto` is the power per wavelength that maximises the worst wavelength's
GSNR. GNPy propagates once at 0 dBm; with the GN model and no SRS the line's ASE SNR
rises dB for dB with the launch power and the NLI SNR falls 2 dB per dB, so the worst
GSNR is evaluated on a 0.1 dB grid from −10 to +10 dBm and the best grid point is then
propagated by GNPy again: the figures reported are that propagation's.

Results are cached per distinct line system and spectrum (a pure function of them), so
a fabric with many identical line systems costs one GNPy run each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from . import _gnpy
from .catalog import Mode, Module, OpticsError
from .line import AUTO, LAUNCH_POWER_RANGE_DBM, LineSystem
from .spectrum import first_fit, slots_that_fit

# Assumption (no public figure per module): 0.15 unless the slot is narrower, then the
# widest roll-off that still fits baud × (1 + roll-off) ≤ slot, to 0.01.
DEFAULT_ROLL_OFF = 0.15
LAUNCH_SEARCH_DBM = LAUNCH_POWER_RANGE_DBM
LAUNCH_STEP_DB = 0.1
_PROBE_DBM = 0.0


@dataclass(frozen=True)
class QoT:
    """GNPy's figures for every wavelength of a link, in grid order, per 0.1 nm, dB."""

    launch_power_dbm: float
    frequency_thz: tuple[float, ...]
    gsnr_db: tuple[float, ...]
    osnr_ase_db: tuple[float, ...]
    gsnr_signal_db: tuple[float, ...]   # the same GSNR in the signal bandwidth

    @property
    def worst_gsnr_db(self) -> float:
        """The wavelength that decides the mode: the lowest GSNR (most NLI, mid-band)."""
        return min(self.gsnr_db)


def roll_off(mode: Mode) -> float:
    """The roll-off modelled for `mode`: DEFAULT_ROLL_OFF, or less if its slot needs it."""
    fits = math.floor((mode.width_ghz / mode.baud_gbd - 1.0) * 100 + 1e-9) / 100
    return max(0.0, min(DEFAULT_ROLL_OFF, fits))


def full_load(mode: Mode, band: str) -> int:
    """How many wavelengths of `mode` fill `band`: the load a line is designed for."""
    return slots_that_fit(mode.width_ghz, band)


def line_qot(line: LineSystem, module: Module, mode: Mode,
             wavelengths: int | None = None) -> QoT:
    """GSNR and OSNR_ASE of each of `wavelengths` wavelengths of `mode` on `line`.

    Parameters
    ----------
    line
        The line system; its `launch_power_dbm` may be "auto".
    module
        The transceiver (its transmitter OSNR is added at the receiver).
    mode
        Baud rate and slot width of every wavelength.
    wavelengths
        How many are lit, first fit from the band's low edge; None for a full band.

    Raises
    ------
    OpticsError
        More wavelengths than fit the band.
    """
    count = full_load(mode, line.band) if wavelengths is None else wavelengths
    carriers = _gnpy.Carriers(
        frequency_thz=tuple(s.frequency_thz for s in first_fit(count, mode.width_ghz, line.band)),
        baud_gbd=mode.baud_gbd, slot_ghz=mode.width_ghz, roll_off=roll_off(mode),
        tx_osnr_db=module.tx_osnr_db)
    physics = gnpy_line(line)
    launch = (best_launch_power_dbm(physics, carriers) if line.launch_power_dbm == AUTO
              else float(line.launch_power_dbm))
    return _qot(physics, carriers, launch)


def gnpy_line(line: LineSystem) -> _gnpy.Line:
    """The figures of `line` that change its QoT (not margin, band or launch power)."""
    spans = line.spans
    return _gnpy.Line(
        span_km=(line.span_length_km,) * spans,
        span_extra_loss_db=line.span_extra_loss_db or (0.0,) * spans,
        amplifier_nf_db=line.amplifier_nf_db_each or (line.amplifier_nf_db,) * spans,
        attenuation_db_per_km=line.attenuation_db_per_km,
        dispersion_ps_nm_km=line.dispersion_ps_nm_km)


@lru_cache(maxsize=4096)
def _qot(physics: _gnpy.Line, carriers: _gnpy.Carriers, launch_dbm: float) -> QoT:
    out = _gnpy.propagate(physics, carriers, launch_dbm)
    if not all(math.isfinite(x) for x in out.gsnr_01nm + out.osnr_ase_01nm):
        raise OpticsError(
            f"GNPy gives no finite GSNR for this line at {launch_dbm:g} dBm "
            f"({len(physics.span_km)} spans, {physics.attenuation_db_per_km:g} dB/km, "
            f"amplifier noise figure up to {max(physics.amplifier_nf_db):g} dB, "
            f"{physics.dispersion_ps_nm_km:g} ps/nm/km): check those figures")
    return QoT(launch_power_dbm=launch_dbm, frequency_thz=carriers.frequency_thz,
               gsnr_db=out.gsnr_01nm, osnr_ase_db=out.osnr_ase_01nm, gsnr_signal_db=out.gsnr)


@lru_cache(maxsize=4096)
def best_launch_power_dbm(physics: _gnpy.Line, carriers: _gnpy.Carriers) -> float:
    """The launch power per wavelength, on a 0.1 dB grid, that maximises the worst GSNR.

    One GNPy propagation at 0 dBm gives each wavelength's line ASE SNR and NLI SNR in the
    signal bandwidth; at launch power P they are ASE + P and NLI − 2P (GN model, no SRS,
    amplifiers at fixed gain). The transmitter's noise does not depend on P.
    """
    probe = _gnpy.propagate(physics, carriers, _PROBE_DBM)
    tx_signal_db = carriers.tx_osnr_db - 10 * math.log10(
        carriers.baud_gbd * 1e9 / _gnpy.REFERENCE_BANDWIDTH_HZ)
    low, high = LAUNCH_SEARCH_DBM
    steps = round((high - low) / LAUNCH_STEP_DB)
    best, best_worst = low, -math.inf
    for k in range(steps + 1):
        power = round(low + k * LAUNCH_STEP_DB, 1)
        offset = power - _PROBE_DBM
        worst = min(
            -10 * math.log10(10 ** (-(ase + offset) / 10) + 10 ** (-(nli - 2 * offset) / 10)
                             + 10 ** (-tx_signal_db / 10))
            for ase, nli in zip(probe.snr_ase_line, probe.snr_nli_line))
        if worst > best_worst + 1e-12:
            best, best_worst = power, worst
    return best


def clear_cache() -> None:
    """Forget every cached QoT (for timing measurements)."""
    _qot.cache_clear()
    best_launch_power_dbm.cache_clear()


__all__ = ["QoT", "best_launch_power_dbm", "clear_cache", "full_load",
           "gnpy_line", "line_qot", "roll_off"]
