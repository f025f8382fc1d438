"""plan_link: totals, names, latency, to_dict, and its errors."""

import json

import pytest

from gnpy_reference import gnpy_reference

from dcilab.optics import AUTO, DEFAULT_CATALOG, LineSystem, OpticsError, plan_link

CHANNEL_KEYS = {"name", "frequency_thz", "module", "mode", "rate_gbps", "gsnr_db",
                "osnr_ase_db", "required_osnr_db", "margin_db", "dispersion_ps_nm", "latency_ms"}
LINK_KEYS = {"spans", "latency_ms", "capacity_gbps", "power_w", "cost_usd", "module", "mode",
             "launch_power_dbm", "launch_power_auto", "wavelengths"}


def test_a_40_wavelength_400zr_link():
    plan = plan_link("dc1-dc2", "400ZR", 40, LineSystem(80))
    assert (plan.module, plan.mode, plan.spans) == ("400ZR", "400G", 1)
    assert plan.span_km == pytest.approx(80)
    assert plan.span_loss_db == pytest.approx(17.6)
    assert plan.capacity_gbps == 16000                      # 40 × 400
    assert plan.power_w == pytest.approx(2 * 20 * 40)       # two modules per wavelength
    assert plan.cost_usd == pytest.approx(2 * 3230 * 40)
    # 4.9 µs/km × 80 km = 392 µs, + 2 µs CFEC DSP = 394 µs.
    assert plan.latency_ms == pytest.approx(0.394)
    assert [c.name for c in plan.channels[:3]] == ["dc1-dc2.w1", "dc1-dc2.w2", "dc1-dc2.w3"]
    assert [c.index for c in plan.channels] == list(range(1, 41))


def test_channel_figures():
    # One wavelength at 1000 km: little NLI, so GSNR is near the ASE-only 23.98 dB (hand
    # formula) and clears 300G's 23 dB; GNPy run independently gives the same figures.
    channel = plan_link("a-b", "400ZR+", 1, LineSystem(1000)).channels[0]
    reference = gnpy_reference(fiber_km=1000, span_km=80, channels=1, baud_gbd=60.1385,
                               slot_ghz=75, launch_dbm=0.0)
    assert (channel.module, channel.mode, channel.rate_gbps) == ("400ZR+", "300G", 300)
    assert channel.gsnr_db == pytest.approx(reference.gsnr_01nm[0], abs=0.01)
    assert channel.osnr_ase_db == pytest.approx(reference.osnr_ase_01nm[0], abs=0.01)
    assert channel.osnr_ase_db == pytest.approx(23.98, abs=0.1)
    assert 23.0 < channel.gsnr_db < channel.osnr_ase_db
    assert channel.osnr_db == channel.osnr_ase_db
    assert channel.required_osnr_db == 21.0
    # Margin is GSNR − required, not less the 2 dB system margin.
    assert channel.margin_db == pytest.approx(channel.gsnr_db - 21.0)
    assert channel.dispersion_ps_nm == pytest.approx(17000)
    # 4.9 × 1000 = 4900 µs, + 4 µs oFEC DSP.
    assert channel.latency_ms == pytest.approx(4.904)
    assert channel.width_ghz == 75


def test_latency_includes_the_modules_dsp_figure():
    line = LineSystem(100)
    for module in ("400ZR", "400ZR+", "800ZR"):
        us = DEFAULT_CATALOG.module(module).dsp_latency_us
        assert plan_link("a-b", module, 1, line).latency_ms == pytest.approx((490 + us) / 1000)


def test_forced_mode_sets_rate_and_width():
    plan = plan_link("a-b", "400ZR+", 4, LineSystem(80), mode="100G")
    assert plan.mode == "100G" and plan.capacity_gbps == 400
    assert plan.channels[0].width_ghz == 50
    assert plan.channels[0].frequency_thz == pytest.approx(191.325)


def test_overridden_catalog_changes_power_and_cost():
    catalog = DEFAULT_CATALOG.with_overrides({"800ZR": {"power_w": 28, "price_usd": 5000}})
    plan = plan_link("a-b", "800ZR", 10, LineSystem(80), catalog=catalog)
    assert plan.power_w == pytest.approx(2 * 28 * 10)
    assert plan.cost_usd == pytest.approx(2 * 5000 * 10)
    assert plan.capacity_gbps == 8000


def test_model_is_not_rounded_but_to_dict_is():
    plan = plan_link("a-b", "400ZR", 1, LineSystem(200 / 3 * 2, span_km=80))
    assert plan.channels[0].gsnr_db != round(plan.channels[0].gsnr_db, 3)
    as_dict = plan.to_dict()["wavelengths"][0]
    assert as_dict["gsnr_db"] == round(plan.channels[0].gsnr_db, 3)
    assert as_dict["osnr_ase_db"] == round(plan.channels[0].osnr_ase_db, 3)


def test_each_wavelength_has_its_own_gsnr():
    # 64 × 400G: mid-band wavelengths see NLI from both sides, edge ones from one.
    plan = plan_link("a-b", "400ZR+", 64, LineSystem(400))
    gsnr = [c.gsnr_db for c in plan.channels]
    assert min(gsnr) < gsnr[0] and min(gsnr) < gsnr[-1]
    assert all(c.margin_db == pytest.approx(c.gsnr_db - c.required_osnr_db)
               for c in plan.channels)
    assert all(c.margin_db >= 2.0 for c in plan.channels)


def test_launch_power_auto_is_resolved_and_reported():
    plan = plan_link("a-b", "400ZR+", 64, LineSystem(800, launch_power_dbm=AUTO))
    fixed = plan_link("a-b", "400ZR+", 64, LineSystem(800, launch_power_dbm=0.0))
    assert plan.launch_power_auto and not fixed.launch_power_auto
    assert 0.3 <= plan.launch_power_dbm <= 1.5 and fixed.launch_power_dbm == 0.0
    assert min(c.gsnr_db for c in plan.channels) > min(c.gsnr_db for c in fixed.channels)
    assert plan.to_dict()["launch_power_dbm"] == plan.launch_power_dbm


def test_the_load_sets_the_mode():
    # 480 km, 0 dBm: a few wavelengths clear 400G (GSNR ≈ 26.2), a full band does not
    # (25.50 with GNPy run independently): NLI grows with the load.
    few = plan_link("a-b", "400ZR+", 2, LineSystem(480))
    full = plan_link("a-b", "400ZR+", 64, LineSystem(480))
    assert (few.mode, full.mode) == ("400G", "300G")


def test_to_dict_is_json_ready_with_the_agreed_keys():
    plan = plan_link("dc1-dc2", "400ZR+", 2, LineSystem(560))
    link = plan.to_dict()
    assert LINK_KEYS <= set(link)
    assert all(CHANNEL_KEYS <= set(channel) for channel in link["wavelengths"])
    assert json.loads(json.dumps(link)) == link
    assert link["wavelengths"][0]["name"] == "dc1-dc2.w1"
    assert link["wavelengths"][0]["frequency_thz"] == 191.3375
    assert link["latency_ms"] == round((4.9 * 560 + 4) / 1000, 6)
    assert link["capacity_gbps"] == 600 and link["mode"] == "300G"


def test_plans_are_frozen():
    plan = plan_link("a-b", "400ZR", 1, LineSystem(80))
    with pytest.raises(AttributeError):
        plan.capacity_gbps = 0
    with pytest.raises(AttributeError):
        plan.channels[0].osnr_db = 0


@pytest.mark.parametrize("wavelengths", [0, -1, 2.5, True])
def test_bad_wavelength_count_names_the_field(wavelengths):
    with pytest.raises(OpticsError, match="wavelengths"):
        plan_link("a-b", "400ZR", wavelengths, LineSystem(80))


def test_unknown_module_names_it_and_lists_the_valid_ones():
    with pytest.raises(OpticsError, match=r"unknown module '1600ZR'; valid modules are 400ZR"):
        plan_link("a-b", "1600ZR", 1, LineSystem(80))


def test_infeasible_link_errors_have_no_field_path():
    with pytest.raises(OpticsError) as error:
        plan_link("a-b", "400ZR", 1, LineSystem(200))
    assert "dci_links" not in str(error.value)
    assert "3400 ps/nm" in str(error.value)
