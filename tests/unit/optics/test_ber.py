"""Pre-FEC BER and Q: against hand calculations and published operating points."""

import math

import pytest

from dcilab.optics import DEFAULT_CATALOG, OpticsError
from dcilab.optics.ber import (FEC_BER_THRESHOLD, PCS16_ENTROPY_BITS, fec_threshold,
                               implementation_penalty_db, osnr_from_snr, pcs16_outer_probability,
                               prefec_ber, q_db, snr_for_ber, snr_from_osnr, threshold_osnr_db)


def db(x):
    return 10 * math.log10(x)


def test_qpsk_is_the_gaussian_tail_at_the_square_root_of_snr():
    # Es/N0 = 9 (9.54 dB): Q(3) = 0.5·erfc(3/√2) = 1.3499e-3 (tables)
    assert prefec_ber("DP-QPSK", db(9)) == pytest.approx(1.3499e-3, rel=1e-4)


def test_16qam_matches_the_textbook_leading_term_where_it_dominates():
    # (3/8)·erfc(√(SNR/10)) at SNR = 100 (20 dB): the Q(3a), Q(5a) terms are negligible
    snr = 100.0
    textbook = 3 / 8 * math.erfc(math.sqrt(snr / 10))
    assert prefec_ber("DP-16QAM", db(snr)) == pytest.approx(textbook, rel=1e-6)


def test_16qam_by_hand_at_a_low_snr_includes_the_outer_terms():
    snr = 10.0                                  # a = √(SNR/5) = √2
    a = math.sqrt(2)

    def q(x):
        return 0.5 * math.erfc(x / math.sqrt(2))
    by_hand = (3 * q(a) + 2 * q(3 * a) - q(5 * a)) / 4
    assert prefec_ber("DP-16QAM", db(snr)) == pytest.approx(by_hand, rel=1e-9)
    assert by_hand > 3 / 8 * math.erfc(math.sqrt(snr / 10))   # Q(3a) matters here


def test_rectangular_8qam_by_hand():
    snr = 30.0                                  # a = √(SNR/3) = √10

    def q(x):
        return 0.5 * math.erfc(x / math.sqrt(2))
    a = math.sqrt(10)
    pam4 = 3 * q(a) + 2 * q(3 * a) - q(5 * a)   # bit errors per 4-PAM symbol × 2
    by_hand = (pam4 / 2 + q(a)) / 3
    assert prefec_ber("DP-8QAM", db(snr)) == pytest.approx(by_hand, rel=1e-9)


def test_denser_formats_need_more_snr_for_the_same_ber():
    needed = [snr_for_ber(m, 2e-2) for m in ("DP-QPSK", "DP-8QAM", "PCS-16QAM", "DP-16QAM")]
    assert needed == sorted(needed)
    assert needed[-1] - needed[0] > 5


def test_uniform_16qam_is_pcs_at_full_entropy():
    assert pcs16_outer_probability(4.0) == 0.5
    assert prefec_ber("PCS-16QAM", 14.0, pcs_entropy_bits=4.0) == pytest.approx(
        prefec_ber("DP-16QAM", 14.0), rel=1e-12)


def test_pcs_entropy_from_the_800g_modes():
    assert PCS16_ENTROPY_BITS == pytest.approx(3.601, abs=1e-3)
    p = pcs16_outer_probability(PCS16_ENTROPY_BITS)
    h = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    assert 2 * (1 + h) == pytest.approx(PCS16_ENTROPY_BITS, abs=1e-9)
    assert p < 0.5                              # shaped: outer points are rarer


def test_ber_falls_as_snr_rises():
    for modulation in ("DP-QPSK", "DP-8QAM", "DP-16QAM", "PCS-16QAM"):
        bers = [prefec_ber(modulation, s) for s in range(0, 25, 2)]
        assert all(a > b for a, b in zip(bers, bers[1:])), modulation


def test_snr_for_ber_inverts_prefec_ber():
    snr = snr_for_ber("DP-16QAM", 1.25e-2)
    assert prefec_ber("DP-16QAM", snr) == pytest.approx(1.25e-2, rel=1e-6)


def test_q_factor_of_known_bers():
    # BER 1e-3 is Q = 3.0902 (9.80 dB); the CFEC threshold 1.25e-2 is Q = 2.2414 (7.01 dB)
    assert q_db(1e-3) == pytest.approx(20 * math.log10(3.0902), abs=1e-3)
    assert q_db(1.25e-2) == pytest.approx(7.010, abs=1e-3)
    assert q_db(2e-2) < q_db(1.25e-2)


def test_osnr_and_snr_differ_by_the_bandwidth_ratio():
    assert osnr_from_snr(10.0, 12.5) == pytest.approx(10.0)
    assert osnr_from_snr(10.0, 125.0) == pytest.approx(20.0)
    assert snr_from_osnr(osnr_from_snr(13.3, 60.1385), 60.1385) == pytest.approx(13.3)


def test_400zr_threshold_against_its_26_db_required_osnr():
    """The ideal 16QAM receiver reaches CFEC's 1.25e-2 at SNR 13.55 dB, i.e. OSNR 20.35 dB
    per 0.1 nm at 59.84 GBd; the OIF asks 26 dB: 5.65 dB of implementation penalty."""
    mode = DEFAULT_CATALOG.module("400ZR").mode("400G")
    assert fec_threshold(mode) == FEC_BER_THRESHOLD["CFEC"] == 1.25e-2
    assert snr_for_ber("DP-16QAM", 1.25e-2) == pytest.approx(13.55, abs=0.01)
    assert threshold_osnr_db(mode) == pytest.approx(20.35, abs=0.01)
    assert implementation_penalty_db(mode) == pytest.approx(5.65, abs=0.01)


def test_every_catalog_mode_has_a_positive_penalty_of_a_few_db():
    for module in DEFAULT_CATALOG:
        for mode in module.modes:
            assert 2.0 < implementation_penalty_db(mode) < 6.0, (module.name, mode.name)


def test_bad_input_is_named():
    with pytest.raises(OpticsError, match="no BER model for modulation 'DP-64QAM'"):
        prefec_ber("DP-64QAM", 20.0)
    with pytest.raises(OpticsError, match="BER must be in"):
        q_db(0.7)
