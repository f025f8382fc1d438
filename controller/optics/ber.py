"""Pre-FEC bit error ratio of the catalog's coherent formats, from the signal-to-noise ratio.

Convention. The SNR here is the SNR per symbol, Es/N0, in each polarisation. A dual-
polarisation signal splits both its power and the noise evenly between the two
polarisations, so Es/N0 per polarisation equals the GSNR measured in the signal bandwidth
(B = symbol rate), which is what GNPy reports as `snr`. OSNR is quoted per 0.1 nm
(12.5 GHz): OSNR = SNR + 10·log10(baud / 12.5 GHz) (GNPy's `snr_01nm`; Essiambre et al.,
"Capacity limits of optical fiber networks", JLT 28(4), 2010, eq. 8 with one polarisation
per Es).

Formulas. Additive white Gaussian noise, hard decisions at the midpoints between levels,
Gray labelling. A square or rectangular QAM is a product of pulse amplitude modulations
(PAM) on the two quadratures, so its bit error ratio is the average of theirs
(J. G. Proakis, M. Salehi, Digital Communications, 5th ed., 2008, §4.3-3, eqs. 4.3-30 and
4.3-31; the exact Gray-coded PAM bit errors below follow K. Cho, D. Yoon, "On the general
BER expression of one- and two-dimensional amplitude modulations", IEEE Trans. Commun.
50(7), 2002). With Q(x) = erfc(x / √2) / 2 and d the half distance between levels:

- DP-QPSK: BER = Q(√SNR), exact.
- DP-16QAM: two 4-PAM, BER = (3·Q(a) + 2·Q(3a) − Q(5a)) / 4 with a = √(SNR / 5),
  exact; its leading term is the textbook (3/8)·erfc(√(SNR/10)).
- DP-8QAM: the constellation is not fixed by the OpenZR+ MSA. Assumed here: rectangular
  4 × 2 (4-PAM on one quadrature, 2-PAM on the other), Gray coded, whose BER is exact in
  closed form: BER = ((3·Q(a) + 2·Q(3a) − Q(5a)) / 2 + Q(a)) / 3 with a = √(SNR / 3).
  Circular and star 8QAM, which some DSPs use, have a larger minimum distance for the same
  energy (about 1 dB), so this is the pessimistic choice.
- PCS-16QAM: no closed form exists for the soft-decision receivers that probabilistic
  shaping is made for. Approximated by the hard-decision BER of 16QAM whose points have
  Maxwell-Boltzmann probabilities (per quadrature: P(±3d) ∝ exp(−9ν), P(±1d) ∝ exp(−ν);
  F. Buchali et al., "Rate adaptation and reach increase by probabilistically shaped
  64-QAM", JLT 34(7), 2016) with the same midpoint slicer, at the entropy the mode needs.
  The same FEC threshold as uniform formats is applied, which PCS receivers (judged on
  normalised generalised mutual information) do not strictly use.

Q-factor: Q = √2 · erfc⁻¹(2·BER), quoted as 20·log10(Q) dB (ITU-T G.976 convention).
"""

from __future__ import annotations

import math

from scipy.optimize import brentq
from scipy.special import erfc, erfcinv

from .catalog import Mode, OpticsError

# 0.1 nm at 1550 nm, the OSNR reference bandwidth.
REFERENCE_BANDWIDTH_GHZ = 12.5

# Pre-FEC BER each FEC corrects to an error-free output (post-FEC BER < 1e-15).
FEC_BER_THRESHOLD = {
    "CFEC": 1.25e-2,   # OIF 400ZR IA: concatenated FEC, pre-FEC BER < 1.25e-2
    "oFEC": 2.0e-2,    # OpenZR+ MSA rev 3: open FEC, pre-FEC BER 2.0e-2
}

# PCS-16QAM of 800ZR+ (OpenROADM, 131.3 GBd) carries the 945.6 Gb/s line rate that 800ZR
# carries with uniform 16QAM (4 bit per symbol and polarisation) at 118.2 GBd, so its
# shaped constellation holds 4 × 118.2 / 131.3 = 3.60 bit per symbol and polarisation.
PCS16_ENTROPY_BITS = 4.0 * 118.2 / 131.3

MODULATIONS = ("DP-QPSK", "DP-8QAM", "DP-16QAM", "PCS-16QAM")


def _q(x: float) -> float:
    """The Gaussian tail probability Q(x)."""
    return 0.5 * float(erfc(x / math.sqrt(2.0)))


def _pam4_bit_errors(a: float, p_outer: float = 0.5) -> float:
    """Expected bit errors per 4-PAM symbol (two Gray bits), levels ±d and ±3d, d/σ = a.

    `p_outer` is the probability of an outer level (±3d); 1/2 for a uniform 4-PAM.
    Gray labels 00, 01, 11, 10 on −3d, −d, +d, +3d: the first bit is the sign, the second
    whether the level is inner; slicer thresholds at 0 and ±2d.
    """
    q1, q3, q5 = _q(a), _q(3 * a), _q(5 * a)
    outer = q3 + (q1 - q5)          # sign flips past 0; inner bit flips inside (−2d, 2d)
    inner = q1 + (q1 + q3)          # sign flips past 0; inner bit flips beyond ±2d
    return p_outer * outer + (1.0 - p_outer) * inner


def _binary_entropy(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def pcs16_outer_probability(entropy_bits: float) -> float:
    """Probability of an outer level per quadrature of Maxwell-Boltzmann 16QAM.

    The two quadratures are independent, each a sign bit plus the choice inner/outer, so
    the entropy per symbol is 2·(1 + h(p_outer)) bits; solved for p_outer < 1/2.
    """
    if not 2.0 < entropy_bits <= 4.0:
        raise OpticsError(f"PCS-16QAM entropy must be in (2, 4] bit, got {entropy_bits!r}")
    target = entropy_bits / 2.0 - 1.0
    if target >= 1.0:
        return 0.5
    return float(brentq(lambda p: _binary_entropy(p) - target, 1e-12, 0.5))


def prefec_ber(modulation: str, snr_db: float,
               pcs_entropy_bits: float = PCS16_ENTROPY_BITS) -> float:
    """Pre-FEC BER of `modulation` at an SNR per symbol and polarisation of `snr_db`.

    Parameters
    ----------
    modulation
        One of MODULATIONS (a catalog mode's `modulation`).
    snr_db
        Es/N0 per polarisation, dB: the GSNR in the signal bandwidth.
    pcs_entropy_bits
        PCS-16QAM only: bits per symbol and polarisation of the shaped constellation.

    Returns
    -------
    float
        Bit error ratio before FEC, in [0, 0.5].
    """
    if not isinstance(snr_db, (int, float)) or math.isnan(snr_db):
        raise OpticsError(f"SNR must be a number of dB, got {snr_db!r}")
    snr = 10.0 ** (snr_db / 10.0)
    if modulation == "DP-QPSK":
        ber = _q(math.sqrt(snr))
    elif modulation == "DP-16QAM":
        ber = _pam4_bit_errors(math.sqrt(snr / 5.0)) / 2.0
    elif modulation == "DP-8QAM":
        a = math.sqrt(snr / 3.0)                  # Es = (5 + 1)·d² over N0 = 2σ²
        ber = (_pam4_bit_errors(a) + _q(a)) / 3.0
    elif modulation == "PCS-16QAM":
        p_outer = pcs16_outer_probability(pcs_entropy_bits)
        energy = (1.0 - p_outer) * 1.0 + p_outer * 9.0     # E[x²]/d² per quadrature
        ber = _pam4_bit_errors(math.sqrt(snr / energy), p_outer) / 2.0
    else:
        raise OpticsError(f"no BER model for modulation {modulation!r}; "
                          f"known: {', '.join(MODULATIONS)}")
    return min(0.5, ber)


def snr_for_ber(modulation: str, ber: float,
                pcs_entropy_bits: float = PCS16_ENTROPY_BITS) -> float:
    """The SNR (dB, per symbol and polarisation) at which `modulation` has `ber`."""
    if not 0.0 < ber < 0.25:
        raise OpticsError(f"BER must be in (0, 0.25), got {ber!r}")
    return float(brentq(lambda s: prefec_ber(modulation, s, pcs_entropy_bits) - ber,
                        -10.0, 40.0, xtol=1e-9))


def q_db(ber: float) -> float:
    """Q-factor in dB of a bit error ratio: 20·log10(√2 · erfc⁻¹(2·BER))."""
    if not 0.0 < ber < 0.5:
        raise OpticsError(f"BER must be in (0, 0.5) for a Q-factor, got {ber!r}")
    return 20.0 * math.log10(math.sqrt(2.0) * float(erfcinv(2.0 * ber)))


def osnr_from_snr(snr_db: float, baud_gbd: float) -> float:
    """OSNR per 0.1 nm of a signal whose SNR in its own bandwidth is `snr_db`."""
    return snr_db + 10.0 * math.log10(baud_gbd / REFERENCE_BANDWIDTH_GHZ)


def snr_from_osnr(osnr_db: float, baud_gbd: float) -> float:
    """SNR in the signal bandwidth of a signal whose OSNR per 0.1 nm is `osnr_db`."""
    return osnr_db - 10.0 * math.log10(baud_gbd / REFERENCE_BANDWIDTH_GHZ)


def fec_threshold(mode: Mode) -> float:
    """The pre-FEC BER above which `mode`'s FEC no longer corrects every error."""
    try:
        return FEC_BER_THRESHOLD[mode.fec]
    except KeyError:
        raise OpticsError(f"mode {mode.name}: no BER threshold known for FEC {mode.fec!r}; "
                          f"known: {', '.join(FEC_BER_THRESHOLD)}") from None


def threshold_osnr_db(mode: Mode) -> float:
    """The OSNR (0.1 nm) at which the ideal receiver of `mode` reaches its FEC threshold."""
    return osnr_from_snr(snr_for_ber(mode.modulation, fec_threshold(mode)), mode.baud_gbd)


def implementation_penalty_db(mode: Mode) -> float:
    """How much more OSNR the mode's specification asks than an ideal receiver needs.

    A datasheet's required OSNR is measured back to back on real hardware at the FEC
    threshold, so it includes the transceiver's own impairments (DAC/ADC resolution, laser
    phase noise, equalisation). The difference from `threshold_osnr_db` is that penalty.
    """
    return mode.required_osnr_db - threshold_osnr_db(mode)
