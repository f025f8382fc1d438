"""The catalog against its sources (REFERENCE.md), and user overrides."""

import pytest

from dcilab.optics import DEFAULT_CATALOG, MODULE_NAMES, Catalog, OpticsError

MODE_FIGURES = ("rate_gbps", "line_rate_gbps", "baud_gbd", "modulation", "fec", "width_ghz",
                "required_osnr_db", "cd_tolerance_ps_nm")
MODULE_FIGURES = ("tx_osnr_db", "power_w", "price_usd", "dsp_latency_us")

# (module, mode): rate, line rate, baud, required OSNR, CD tolerance, width — from the sources.
EXPECTED = {
    ("400ZR", "400G"): (400, 478.75, 59.84375, 26.0, 2400, 75),
    ("400ZR+", "400G"): (400, 481.1, 60.1385, 24.0, 20000, 75),
    ("400ZR+", "300G"): (300, 360.8, 60.1385, 21.0, 40000, 75),
    ("400ZR+", "200G"): (200, 240.6, 60.1385, 16.0, 50000, 75),
    ("400ZR+", "100G"): (100, 120.3, 30.069, 12.5, 100000, 50),
    ("800ZR", "800G"): (800, 945.6, 118.2, 27.0, 2400, 150),
    ("800ZR+", "800G"): (800, 945.6, 131.3, 25.1, 20000, 150),
}


def test_module_names():
    assert MODULE_NAMES == ("400ZR", "400ZR+", "800ZR", "800ZR+")


@pytest.mark.parametrize(("module", "mode"), EXPECTED)
def test_mode_figures_match_sources(module, mode):
    rate, line_rate, baud, osnr, cd, width = EXPECTED[(module, mode)]
    got = DEFAULT_CATALOG.module(module).mode(mode)
    assert got.rate_gbps == rate
    assert got.line_rate_gbps == pytest.approx(line_rate)
    assert got.baud_gbd == pytest.approx(baud)
    assert got.required_osnr_db == pytest.approx(osnr)
    assert got.cd_tolerance_ps_nm == pytest.approx(cd)
    assert got.width_ghz == pytest.approx(width)


def test_every_mode_is_listed_highest_rate_first():
    found = {(m.name, mode.name) for m in DEFAULT_CATALOG for mode in m.modes}
    assert found == set(EXPECTED)
    assert DEFAULT_CATALOG.module("400ZR+").mode_names == ("400G", "300G", "200G", "100G")


def test_modulation_and_fec():
    zr_plus = DEFAULT_CATALOG.module("400ZR+")
    assert [m.modulation for m in zr_plus.modes] == ["DP-16QAM", "DP-8QAM", "DP-QPSK", "DP-QPSK"]
    assert {m.fec for m in zr_plus.modes} == {"oFEC"}
    assert DEFAULT_CATALOG.module("400ZR").mode("400G").fec == "CFEC"


def test_module_figures_match_sources():
    zr = DEFAULT_CATALOG.module("400ZR")
    assert zr.tx_osnr_db == 34.0
    assert zr.price_usd == 3230.0
    assert 15.0 <= zr.power_w <= 20.0
    assert DEFAULT_CATALOG.module("800ZR").price_usd == 4800.0
    assert DEFAULT_CATALOG.module("400ZR+").power_w == 21.0


def test_widths_are_whole_12_5_ghz_slots_wider_than_the_signal():
    for module in DEFAULT_CATALOG:
        for mode in module.modes:
            assert (mode.width_ghz * 10) % 125 == 0
            assert mode.width_ghz > mode.baud_gbd


def test_every_figure_names_its_source():
    for module in DEFAULT_CATALOG:
        for figure in MODULE_FIGURES:
            assert module.source_of(figure).strip(), (module.name, figure)
        for mode in module.modes:
            for figure in MODE_FIGURES:
                assert mode.source_of(figure).strip(), (module.name, mode.name, figure)


@pytest.mark.parametrize(("module", "figure"), [
    ("400ZR+", "price_usd"), ("800ZR+", "price_usd"), ("800ZR", "power_w"),
    ("800ZR+", "power_w"), ("800ZR", "tx_osnr_db"), ("400ZR", "dsp_latency_us"),
    ("400ZR+", "dsp_latency_us"),
])
def test_unsourced_figures_are_marked_as_assumptions(module, figure):
    assert "assumption" in DEFAULT_CATALOG.module(module).source_of(figure)


def test_dsp_latency_is_a_few_microseconds_and_ofec_is_slower_than_cfec():
    latency = {m.name: m.dsp_latency_us for m in DEFAULT_CATALOG}
    assert all(0 < us <= 10 for us in latency.values())
    assert latency["400ZR"] < latency["400ZR+"]


def test_override_returns_a_new_catalog():
    changed = DEFAULT_CATALOG.with_overrides({"800ZR": {"power_w": 28, "price_usd": 5000}})
    assert isinstance(changed, Catalog)
    assert changed.module("800ZR").power_w == 28
    assert changed.module("800ZR").price_usd == 5000
    assert changed.module("800ZR").source_of("power_w") == "user override"
    assert DEFAULT_CATALOG.module("800ZR").power_w == 30.0
    assert changed.module("400ZR") == DEFAULT_CATALOG.module("400ZR")
    assert changed.names == DEFAULT_CATALOG.names


def test_override_a_mode_figure():
    changed = DEFAULT_CATALOG.with_overrides(
        {"800ZR+": {"modes": {"800G": {"required_osnr_db": 24.0}}}})
    assert changed.module("800ZR+").mode("800G").required_osnr_db == 24.0
    assert DEFAULT_CATALOG.module("800ZR+").mode("800G").required_osnr_db == 25.1


def test_override_unknown_module_lists_the_valid_ones():
    with pytest.raises(OpticsError) as error:
        DEFAULT_CATALOG.with_overrides({"1600ZR": {"power_w": 40}})
    message = str(error.value)
    assert "1600ZR" in message
    assert all(name in message for name in MODULE_NAMES)


def test_override_unknown_figure_lists_the_valid_ones():
    with pytest.raises(OpticsError) as error:
        DEFAULT_CATALOG.with_overrides({"800ZR": {"watts": 40}})
    message = str(error.value)
    assert "watts" in message and "power_w" in message and "price_usd" in message


def test_override_unknown_mode_and_mode_figure():
    with pytest.raises(OpticsError, match=r"500G.*400G, 300G, 200G, 100G"):
        DEFAULT_CATALOG.with_overrides({"400ZR+": {"modes": {"500G": {"baud_gbd": 60}}}})
    with pytest.raises(OpticsError, match=r"osnr.*required_osnr_db"):
        DEFAULT_CATALOG.with_overrides({"400ZR+": {"modes": {"400G": {"osnr": 20}}}})


FALLBACK_400G = {"rate_gbps": 400, "line_rate_gbps": 472.8, "baud_gbd": 118.2,
                 "modulation": "DP-QPSK", "fec": "oFEC", "width_ghz": 150.0,
                 "required_osnr_db": 17.5, "cd_tolerance_ps_nm": 40000.0}


def test_a_mode_the_catalog_lacks_is_added_with_every_figure():
    """800ZR+ has only its 800G mode in the public sources; a datasheet's 400G fallback
    is added in the fabric file, sourced as the user's, and tried after 800G."""
    catalog = DEFAULT_CATALOG.with_overrides({"800ZR+": {"modes": {"400G": FALLBACK_400G}}})
    module = catalog.module("800ZR+")
    assert module.mode_names == ("800G", "400G")
    added = module.mode("400G")
    assert (added.rate_gbps, added.modulation, added.required_osnr_db) == (400, "DP-QPSK", 17.5)
    assert {added.source_of(f) for f in FALLBACK_400G} == {"user override"}
    assert DEFAULT_CATALOG.module("800ZR+").mode_names == ("800G",)        # unchanged


@pytest.mark.parametrize("change, said", [
    ({"fec": None}, "800ZR+ has no mode '400G'; its modes are 800G; to add it as a new mode, "
                    "give every figure: missing fec"),
    ({"modulation": "PCS-16QAM"}, "modulation PCS-16QAM: a mode added here is one of DP-QPSK"),
    ({"line_rate_gbps": 500.0}, "line_rate_gbps 500 is more than DP-QPSK carries at 118.2 GBd "
                                "(472.8 Gb/s)"),
    ({"rate_gbps": 800}, "rate_gbps 800 is mode 800G"),
    ({"rate_gbps": 300}, "a mode is named by its rate: rate_gbps 300 is mode 300G"),
])
def test_an_added_mode_must_make_sense(change, said):
    figures = {k: v for k, v in (FALLBACK_400G | change).items() if v is not None}
    with pytest.raises(OpticsError) as error:
        DEFAULT_CATALOG.with_overrides({"800ZR+": {"modes": {"400G": figures}}})
    assert said in str(error.value)


@pytest.mark.parametrize("overrides", [
    {"800ZR": {"power_w": -1}},
    {"800ZR": {"price_usd": "cheap"}},
    {"400ZR+": {"modes": {"100G": {"width_ghz": 40}}}},
])
def test_override_with_a_bad_value_is_rejected(overrides):
    with pytest.raises(OpticsError):
        DEFAULT_CATALOG.with_overrides(overrides)


def test_unknown_module_lists_the_valid_ones():
    with pytest.raises(OpticsError) as error:
        DEFAULT_CATALOG.module("ZR")
    assert "'ZR'" in str(error.value) and "400ZR+" in str(error.value)
