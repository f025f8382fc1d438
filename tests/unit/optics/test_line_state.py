"""A line system's changing state, and what its receivers see."""

import math

import pytest

from dcilab.optics import DEFAULT_CATALOG, LineSystem, OpticsError
from dcilab.optics.line_state import ChannelSignal, LineState, ase_osnr_db, line_gsnr_db
from dcilab.optics.receiver import LOSS_STEPS, loss_from_margin, read

LINE = LineSystem(fiber_km=400)          # 5 spans of 80 km, 17.6 dB each, NF 5.5 dB
ZRP = DEFAULT_CATALOG.module("400ZR+")
SIGNAL = ChannelSignal("l.w1", 191.3375, 60.1385, 75.0)


def test_as_built_reproduces_the_design_osnr():
    state = LineState.as_built(LINE)
    assert ase_osnr_db(state, 34.0) == pytest.approx(LINE.osnr_db(34.0), abs=1e-9)


def test_extra_loss_in_one_span_costs_that_spans_share_of_the_noise():
    # Five equal spans each give 1/5 of the ASE. 3 dB more loss in one doubles its ASE:
    # total ASE goes from 5 to 6 units, -10·log10(6/5) = -0.79 dB of line OSNR.
    state = LineState.as_built(LINE)
    worse = state.with_span_loss(2, 3.0103)
    before = ase_osnr_db(state, 300.0)          # a transmitter that adds no noise, to see the line alone
    after = ase_osnr_db(worse, 300.0)
    assert before - after == pytest.approx(10 * math.log10(6 / 5), abs=1e-3)


def test_noisy_amplifier_and_launch_power():
    state = LineState.as_built(LINE)
    noisy = state.with_amplifier_nf(5, 5.5 + 3.0103)
    assert ase_osnr_db(state, 300.0) - ase_osnr_db(noisy, 300.0) == pytest.approx(
        10 * math.log10(6 / 5), abs=1e-3)
    louder = state.with_launch_power(1.0)
    assert ase_osnr_db(louder, 300.0) - ase_osnr_db(state, 300.0) == pytest.approx(1.0)


def test_gsnr_is_osnr_in_the_signal_bandwidth():
    state = LineState.as_built(LINE)
    [gsnr] = line_gsnr_db(state, [SIGNAL], 34.0)
    assert gsnr == pytest.approx(ase_osnr_db(state, 34.0) - 10 * math.log10(60.1385 / 12.5))


def test_spans_and_amplifiers_are_named_when_wrong():
    state = LineState.as_built(LINE)
    with pytest.raises(OpticsError, match="span 6 does not exist: this line has 5"):
        state.with_span_loss(6, 1.0)
    with pytest.raises(OpticsError, match="extra span loss must be >= 0"):
        state.with_span_loss(1, -1.0)


def test_the_modelled_ber_crosses_the_threshold_where_the_osnr_margin_is_zero():
    mode = ZRP.mode("400G")                    # 24 dB required OSNR, oFEC 2e-2
    gsnr_at_required = 24.0 - 10 * math.log10(mode.baud_gbd / 12.5)
    at = read(mode, gsnr_at_required)
    assert at.prefec_ber == pytest.approx(2e-2, rel=1e-6)
    assert at.q_margin_db == pytest.approx(0.0, abs=1e-6)
    assert at.osnr_db == pytest.approx(24.0)
    assert read(mode, gsnr_at_required + 0.5).loss_ratio == 0.0
    assert read(mode, gsnr_at_required - 0.2).loss_ratio > 0.0


def test_an_ideal_receiver_has_no_penalty():
    mode = ZRP.mode("400G")
    ideal = read(mode, 13.0, penalty_db=0)
    assert ideal.esnr_db == 13.0
    assert ideal.prefec_ber < read(mode, 13.0).prefec_ber


def test_loss_rises_over_the_cliff_then_sync_is_lost():
    assert loss_from_margin(0.3) == (0.0, True)
    assert loss_from_margin(-0.25) == (0.25, True)
    assert loss_from_margin(-1.2) == (1.0, True)
    assert loss_from_margin(-1.5) == (1.0, False)
    loss, _ = loss_from_margin(-0.0004)
    assert loss * LOSS_STEPS == round(loss * LOSS_STEPS)      # whole steps of 0.1 %
