"""Line-system QoT against hand calculations written out here."""

import math

import pytest

from dcilab.optics import LineSystem, OpticsError


def db_sum(*osnr_db):
    # Noise powers add: 1/OSNR = Σ 1/OSNR_i.
    return -10 * math.log10(sum(10 ** (-x / 10) for x in osnr_db))


def test_80_km_is_one_span():
    line = LineSystem(80)
    assert line.spans == 1
    assert line.span_loss_db == pytest.approx(17.6)          # 0.22 × 80
    assert line.line_osnr_db == pytest.approx(34.9)          # 58 − 17.6 − 5.5 − 0
    assert line.osnr_db(34.0) == pytest.approx(31.42, abs=0.01)
    assert line.osnr_db(34.0) == pytest.approx(db_sum(34.9, 34.0))


def test_200_km_is_three_spans_of_66_7_km():
    line = LineSystem(200, span_km=80)
    assert line.spans == 3                                   # ceil(2.5)
    assert line.span_length_km == pytest.approx(200 / 3)
    assert line.span_loss_db == pytest.approx(14.6667, abs=1e-4)
    # 58 − 14.6667 − 5.5 − 10·log10(3)=4.7712
    assert line.line_osnr_db == pytest.approx(33.0621, abs=1e-3)
    assert line.osnr_db(34.0) == pytest.approx(30.495, abs=1e-3)


def test_1000_km_is_thirteen_spans():
    line = LineSystem(1000)
    assert line.spans == 13                                  # ceil(12.5)
    # span 76.923 km → 16.923 dB; 10·log10(13) = 11.139
    assert line.line_osnr_db == pytest.approx(58 - 16.923 - 5.5 - 11.139, abs=1e-3)
    assert line.osnr_db(34.0) == pytest.approx(23.982, abs=1e-3)


def test_launch_power_and_noise_figure_move_osnr_db_for_db():
    assert LineSystem(80, launch_power_dbm=2).line_osnr_db == pytest.approx(36.9)
    assert LineSystem(80, amplifier_nf_db=6.5).line_osnr_db == pytest.approx(33.9)


@pytest.mark.parametrize(("fiber_km", "span_km", "spans"), [
    (80, 80, 1), (80.5, 80, 2), (160, 80, 2), (161, 80, 3), (10, 80, 1),
    (2.1, 0.3, 7),  # 2.1 / 0.3 is a hair above 7 in floats
    (1000, 100, 10),
])
def test_span_count_is_the_ceiling(fiber_km, span_km, spans):
    assert LineSystem(fiber_km, span_km=span_km).spans == spans


def test_dispersion_is_17_ps_per_nm_km():
    assert LineSystem(200).dispersion_ps_nm == pytest.approx(3400)
    assert LineSystem(1000).dispersion_ps_nm == pytest.approx(17000)
    assert LineSystem(100, dispersion_ps_nm_km=4).dispersion_ps_nm == pytest.approx(400)


def test_propagation_latency_is_4_9_us_per_km():
    assert LineSystem(100).propagation_latency_us == pytest.approx(490)
    assert LineSystem(1000).propagation_latency_us == pytest.approx(4900)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"fiber_km": 0}, "fiber_km"),
    ({"fiber_km": -5}, "fiber_km"),
    ({"fiber_km": 100, "span_km": 0}, "span_km"),
    ({"fiber_km": 100, "span_km": -80}, "span_km"),
    ({"fiber_km": 100, "amplifier_nf_db": -1}, "amplifier_nf_db"),
    ({"fiber_km": 100, "attenuation_db_per_km": -0.2}, "attenuation_db_per_km"),
    ({"fiber_km": 100, "margin_db": -1}, "margin_db"),
    ({"fiber_km": float("nan")}, "fiber_km"),
    ({"fiber_km": "100"}, "fiber_km"),
    ({"fiber_km": 100, "band": "S"}, "band"),
])
def test_bad_numbers_name_the_field(kwargs, field):
    with pytest.raises(OpticsError, match=field):
        LineSystem(**kwargs)


def test_unknown_band_lists_valid_bands():
    with pytest.raises(OpticsError, match=r"'S'.*C, C\+L"):
        LineSystem(100, band="S")


def test_optics_error_is_a_value_error():
    assert issubclass(OpticsError, ValueError)
