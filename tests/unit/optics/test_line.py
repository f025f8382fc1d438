"""The line system's description: spans, dispersion, latency, launch power, degradations.

Its QoT is GNPy's (test_qot.py)."""

import pytest

from dcilab.optics import AUTO, LineSystem, OpticsError


def test_80_km_is_one_span():
    line = LineSystem(80)
    assert line.spans == 1
    assert line.span_loss_db == pytest.approx(17.6)          # 0.22 × 80


def test_200_km_is_three_spans_of_66_7_km():
    line = LineSystem(200, span_km=80)
    assert line.spans == 3                                   # ceil(2.5)
    assert line.span_length_km == pytest.approx(200 / 3)
    assert line.span_loss_db == pytest.approx(14.6667, abs=1e-4)


def test_launch_power_is_a_number_or_auto():
    assert LineSystem(80, launch_power_dbm=AUTO).launch_power_dbm == "auto"
    assert LineSystem(80, launch_power_dbm=-1.5).launch_power_dbm == -1.5
    with pytest.raises(OpticsError, match="launch_power_dbm"):
        LineSystem(80, launch_power_dbm="max")
    with pytest.raises(OpticsError, match=r"launch_power_dbm must be between -10 and 10"):
        LineSystem(80, launch_power_dbm=12)


def test_degradations_are_one_value_per_span():
    line = LineSystem(240, span_extra_loss_db=(0.0, 3.0, 0.0), amplifier_nf_db_each=(5.5, 5.5, 9))
    assert line.spans == 3
    with pytest.raises(OpticsError, match=r"span_extra_loss_db needs one value per span \(3\)"):
        LineSystem(240, span_extra_loss_db=(1.0,))
    with pytest.raises(OpticsError, match=r"amplifier_nf_db_each\[1\] must be >= 3 dB \(an EDFA.s quantum limit\), got 2.5"):
        LineSystem(160, amplifier_nf_db_each=(5.0, 2.5))
    with pytest.raises(OpticsError, match="span_extra_loss_db must be a tuple"):
        LineSystem(80, span_extra_loss_db=[1.0])


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
    ({"fiber_km": 100, "attenuation_db_per_km": 0}, "attenuation_db_per_km"),
    ({"fiber_km": 100, "margin_db": -1}, "margin_db"),
    ({"fiber_km": 100, "dispersion_ps_nm_km": 0}, "dispersion_ps_nm_km"),   # GN model needs D > 0
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
