"""Mode selection (GNPy's rule), forced modes, and every way a link can be infeasible.

Line OSNRs below are worked by hand: OSNR_line = 58 + P − 0.22·(L/N) − 5.5 − 10·log10(N),
N = ceil(L / span_km), total with the 34 dB transmitter OSNR: 1/OSNR = 1/OSNR_line + 1/10^3.4.
400ZR+ needs OSNR + 2 dB margin: 26 (400G), 23 (300G), 18 (200G), 14.5 (100G) dB, and CD
within 20000 / 40000 / 50000 / 100000 ps/nm.
"""

import pytest

from dcilab.optics import DEFAULT_CATALOG, LineSystem, OpticsError, select_mode


@pytest.mark.parametrize(("fiber_km", "span_km", "expected"), [
    # 80 km: total 31.42 dB → 400G.
    (80, 80, "400G"),
    # 480 km: N=6, line 34.9 − 7.78 = 27.12, total 26.31 ≥ 26 → still 400G.
    (480, 80, "400G"),
    # 560 km: N=7, line 34.9 − 8.45 = 26.45, total 25.75 < 26 → 300G (CD 9520).
    (560, 80, "300G"),
    # 1000 km: N=13, line 24.44, total 23.98 ≥ 23 → 300G (CD 17000).
    (1000, 80, "300G"),
    # 1600 km: N=20, line 34.9 − 13.01 = 21.89, total 21.63 < 23 → 200G (CD 27200).
    (1600, 80, "200G"),
    # 1200 km on 40 km spans: N=30, line 58 − 8.8 − 5.5 − 14.77 = 28.93, total 27.82 ≥ 26,
    # but CD 20400 > 20000 → dispersion alone pushes it to 300G.
    (1200, 40, "300G"),
    # 4000 km: N=50, line 34.9 − 16.99 = 17.91, total 17.80 < 18 → 100G (CD 68000).
    (4000, 80, "100G"),
])
def test_openzr_plus_falls_back_to_lower_rate_modes(fiber_km, span_km, expected):
    assert select_mode("400ZR+", LineSystem(fiber_km, span_km=span_km)).name == expected


def test_400zr_and_800zr_work_on_one_80_km_span():
    assert select_mode("400ZR", LineSystem(80)).name == "400G"
    # 800ZR needs 27 + 2 = 29 dB; 31.42 dB is enough.
    assert select_mode("800ZR", LineSystem(80)).name == "800G"


def test_forced_mode_is_used_when_feasible():
    assert select_mode("400ZR+", LineSystem(80), mode="200G").name == "200G"


def test_forced_mode_that_does_not_fit_gives_numbers_and_computed_suggestions():
    # 1000 km: total 23.98 dB < 26. Line OSNR needed for 26 total:
    # −10·log10(10^−2.6 − 10^−3.4) = 26.750 dB, 2.313 dB above 24.437 → launch 2.3 dBm.
    # 16 spans of 62.5 km: 58 − 13.75 − 5.5 − 12.04 = 26.71 (short);
    # 17 spans of 58.8 km: 58 − 12.94 − 5.5 − 12.30 = 27.26 (enough).
    with pytest.raises(OpticsError) as error:
        select_mode("400ZR+", LineSystem(1000), mode="400G")
    message = str(error.value)
    assert "400ZR+ mode 400G cannot cross 1000 km" in message
    assert "24.0 dB is below the 24.0 dB required + 2.0 dB margin" in message
    assert "launch_power_dbm >= 2.3" in message
    assert "17 spans" in message and "58.8 km" in message
    assert "400ZR+ at 300G" in message


def test_unknown_mode_lists_the_modules_modes():
    with pytest.raises(OpticsError) as error:
        select_mode("400ZR+", LineSystem(80), mode="500G")
    assert "'500G'" in str(error.value) and "400G, 300G, 200G, 100G" in str(error.value)
    with pytest.raises(OpticsError, match=r"400ZR has no mode '300G'; its modes are 400G"):
        select_mode("400ZR", LineSystem(80), mode="300G")


def test_unknown_module_lists_the_catalog():
    with pytest.raises(OpticsError, match=r"'400ZR\+\+'.*400ZR, 400ZR\+, 800ZR, 800ZR\+"):
        select_mode("400ZR++", LineSystem(80))


def test_400zr_beyond_its_dispersion_tolerance():
    # 200 km × 17 = 3400 ps/nm > 2400; the longest 400ZR link is 2400 / 17 = 141 km.
    with pytest.raises(OpticsError) as error:
        select_mode("400ZR", LineSystem(200))
    message = str(error.value)
    assert "400ZR cannot cross 200 km" in message
    assert "dispersion 3400 ps/nm exceeds its 2400 ps/nm tolerance" in message
    assert "141 km" in message
    # Both 20000 ps/nm modules clear 30.5 dB ≥ 26 / 27.1 dB on this line.
    assert "400ZR+ at 400G (tolerates up to 20000 ps/nm" in message
    assert "800ZR+ at 800G" in message


def test_400zr_below_its_osnr_needs():
    # One 120 km span at 0.25 dB/km, −3 dBm: line 58 − 3 − 30 − 5.5 = 19.5, total 19.35.
    # Two 60 km spans: 58 − 3 − 15 − 5.5 − 3.01 = 31.49 → enough for 28 dB.
    # Launch power would need +6.9 dBm, beyond what is suggested, so it is not offered.
    line = LineSystem(120, span_km=120, attenuation_db_per_km=0.25, launch_power_dbm=-3)
    with pytest.raises(OpticsError) as error:
        select_mode("400ZR", line)
    message = str(error.value)
    assert "OSNR 19.3 dB is below the 26.0 dB required + 2.0 dB margin" in message
    assert "span_km <= 60.0 km, 2 spans" in message
    assert "launch" not in message
    # 400ZR+ 400G/300G need 26/23 dB, 800ZR+ 27.1: only 200G (18 dB) fits.
    assert "400ZR+ at 200G (needs 16.0 dB" in message
    assert "800ZR+" not in message


def test_no_mode_of_a_multi_mode_module_fits():
    # 6000 km: 102000 ps/nm exceeds even 100G's 100000 ps/nm; 100000 / 17 = 5882 km.
    with pytest.raises(OpticsError) as error:
        select_mode("400ZR+", LineSystem(6000))
    message = str(error.value)
    assert "even its 100G mode fails" in message
    assert "102000 ps/nm exceeds its 100000 ps/nm" in message
    assert "5882 km" in message


def test_nothing_in_the_catalog_fits():
    # 10000 km: dispersion 170000 and OSNR 13.9 dB fail everything; 5882 km at 80 km spans
    # gives 74 spans, line 34.9 − 18.69 = 16.21, total 16.12 ≥ 14.5 → shorter link works.
    with pytest.raises(OpticsError) as error:
        select_mode("400ZR+", LineSystem(10000))
    message = str(error.value)
    assert "170000 ps/nm" in message and "OSNR 13.9 dB" in message
    assert "5882 km" in message


def test_select_mode_uses_the_given_catalog():
    easier = DEFAULT_CATALOG.with_overrides(
        {"400ZR": {"modes": {"400G": {"cd_tolerance_ps_nm": 4000}}}})
    assert select_mode("400ZR", LineSystem(200), catalog=easier).name == "400G"
