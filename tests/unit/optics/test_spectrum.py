"""Flexible-grid first fit: counts, frequencies, grid alignment, no overlaps."""

import pytest

from dcilab.optics import LineSystem, OpticsError, plan_link

C_LOW_MHZ, C_HIGH_MHZ = 191_300_000, 196_100_000
L_LOW_MHZ, L_HIGH_MHZ = 186_100_000, 190_900_000


def centres_mhz(plan):
    return [round(channel.frequency_thz * 1e6) for channel in plan.channels]


@pytest.mark.parametrize(("module", "line", "fit"), [
    ("400ZR", LineSystem(80), 64),                           # 4800 / 75
    ("800ZR", LineSystem(80), 32),                           # 4800 / 150
    ("400ZR", LineSystem(80, band="C+L"), 128),
    ("800ZR", LineSystem(80, band="C+L"), 64),
])
def test_exactly_so_many_fit(module, line, fit):
    assert len(plan_link("a-b", module, fit, line).channels) == fit
    with pytest.raises(OpticsError) as error:
        plan_link("a-b", module, fit + 1, line)
    message = str(error.value)
    assert str(fit + 1) in message and f"only {fit} fit" in message and line.band in message


def test_100g_on_50_ghz_fits_96_in_c():
    line = LineSystem(3300)     # too far for a full band of 200G (test_modes)
    assert plan_link("a-b", "400ZR+", 96, line).mode == "100G"
    with pytest.raises(OpticsError, match="only 96 fit"):
        plan_link("a-b", "400ZR+", 97, line)


def test_first_channels_sit_half_a_slot_above_the_band_edge():
    first, second = plan_link("a-b", "400ZR", 2, LineSystem(80)).channels
    assert first.frequency_thz == pytest.approx(191.3375)   # 191.3 + 0.0375
    assert second.frequency_thz == pytest.approx(191.4125)  # 191.3 + 0.075 + 0.0375
    (wide,) = plan_link("a-b", "800ZR", 1, LineSystem(80)).channels
    assert wide.frequency_thz == pytest.approx(191.375)     # 191.3 + 0.075


def test_last_c_band_channel_ends_at_196_1_thz():
    plan = plan_link("a-b", "400ZR", 64, LineSystem(80))
    assert centres_mhz(plan)[-1] == 196_100_000 - 37_500


@pytest.mark.parametrize(("module", "count", "band", "km"), [
    ("400ZR", 64, "C", 80), ("800ZR", 32, "C", 80), ("400ZR", 128, "C+L", 80),
    ("400ZR+", 96, "C", 3300), ("800ZR+", 64, "C+L", 250),
])
def test_on_grid_in_band_and_no_overlap(module, count, band, km):
    plan = plan_link("a-b", module, count, LineSystem(km, band=band))
    half = round(plan.channels[0].width_ghz * 1000) // 2
    centres = centres_mhz(plan)
    for centre in centres:
        assert (centre - 193_100_000) % 6_250 == 0          # G.694.1 centre grid
        in_c = C_LOW_MHZ <= centre - half and centre + half <= C_HIGH_MHZ
        in_l = L_LOW_MHZ <= centre - half and centre + half <= L_HIGH_MHZ
        assert in_c or (band == "C+L" and in_l)
    ordered = sorted(centres)
    assert len(set(ordered)) == len(ordered)
    assert all(b - a >= 2 * half for a, b in zip(ordered, ordered[1:]))


def test_c_fills_before_l():
    plan = plan_link("a-b", "400ZR", 66, LineSystem(80, band="C+L"))
    centres = centres_mhz(plan)
    assert all(C_LOW_MHZ < c < C_HIGH_MHZ for c in centres[:64])
    assert centres[64] == 186_100_000 + 37_500
    assert centres[65] == 186_100_000 + 75_000 + 37_500


def test_c_band_error_suggests_c_plus_l():
    with pytest.raises(OpticsError, match=r"C\+L"):
        plan_link("a-b", "400ZR", 65, LineSystem(80))
