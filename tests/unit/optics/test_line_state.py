"""A line system's changing state, and what its receivers see."""

import dataclasses
import math

import pytest

from dcilab.optics import DEFAULT_CATALOG, LineSystem, OpticsError, plan_link
from dcilab.optics.ber import osnr_from_snr
from dcilab.optics.line_state import ChannelSignal, LineState, line_gsnr_db
from dcilab.optics.receiver import LOSS_STEPS, loss_from_margin, read

LINE = LineSystem(fiber_km=400)          # 5 spans of 80 km, 17.6 dB each, NF 5.5 dB
ZRP = DEFAULT_CATALOG.module("400ZR+")


PLUS_400G = ZRP.mode("400G")
SIGNALS = [ChannelSignal(f"l.w{k}", f, 60.1385, 75.0)
           for k, f in enumerate((191.3375, 191.4125), start=1)]


def gsnrs(state, signals=SIGNALS):
    return line_gsnr_db(state, signals, ZRP, PLUS_400G)


def test_as_built_gives_the_plans_gsnr():
    plan = plan_link("l", "400ZR+", 2, LINE)
    state = LineState.as_built(LINE)
    for channel, gsnr in zip(plan.channels, gsnrs(state)):
        assert osnr_from_snr(gsnr, 60.1385) == pytest.approx(channel.gsnr_db, abs=1e-9)


def test_extra_loss_costs_at_most_its_ase_share():
    # Five equal spans each give 1/5 of the ASE. 3 dB more loss in one doubles its ASE:
    # the ASE-limited OSNR falls by 10·log10(6/5) = 0.79 dB; NLI and the transmitter do
    # not change, so the GSNR falls by less, but by most of it (ASE dominates at 0 dBm).
    state = LineState.as_built(LINE)
    drop = gsnrs(state)[0] - gsnrs(state.with_span_loss(2, 3.0103))[0]
    assert 0.5 < drop < 10 * math.log10(6 / 5) + 1e-6


def test_more_loss_and_noisier_amplifiers_only_ever_lower_the_gsnr():
    state = LineState.as_built(LINE)
    by_loss = [gsnrs(state.with_span_loss(3, x))[0] for x in (0, 2, 4, 8)]
    assert by_loss == sorted(by_loss, reverse=True)
    by_nf = [gsnrs(state.with_amplifier_nf(5, nf))[0] for nf in (5.5, 7, 9)]
    assert by_nf == sorted(by_nf, reverse=True)


def test_launch_power_trades_ase_against_nli():
    state = LineState.as_built(LINE)
    low, mid, high = (gsnrs(state.with_launch_power(p))[0] for p in (-6.0, 1.0, 9.0))
    assert mid > low and mid > high
    with pytest.raises(OpticsError, match="launch_power_dbm must be between"):
        state.with_launch_power(15.0)


def test_gsnr_is_converted_to_each_channels_own_bandwidth():
    state = LineState.as_built(LINE)
    narrow = [dataclasses.replace(SIGNALS[0], baud_gbd=30.069), SIGNALS[1]]
    full, halved = gsnrs(state)[0], gsnrs(state, narrow)[0]
    assert halved - full == pytest.approx(10 * math.log10(60.1385 / 30.069), abs=1e-9)


def test_spans_and_amplifiers_are_named_when_wrong():
    state = LineState.as_built(LINE)
    with pytest.raises(OpticsError, match="span 6 does not exist: this line has 5"):
        state.with_span_loss(6, 1.0)
    with pytest.raises(OpticsError, match="extra span loss must be >= 0"):
        state.with_span_loss(1, -1.0)
    with pytest.raises(OpticsError, match="extra span loss must be at most 100 dB"):
        state.with_span_loss(1, 1e6)                     # a re-tester's, reported as done
    assert state.with_span_loss(1, 100.0).span_extra_loss_db[0] == 100.0


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
