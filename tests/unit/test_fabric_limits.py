"""Limits on what a fabric file may make `check` do: entries, problems reported, echoed
input, non-files, and links no module can cross (refused without a GNPy run)."""

from __future__ import annotations

import os

import pytest

from dcilab.fabric import FabricError, load_fabric, parse_fabric
from dcilab.fabric.errors import MAX_ISSUES
from dcilab.fabric.schema import MAX_LINE_SYSTEMS
from dcilab.optics import _gnpy

TWO_SITES = """name: x
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 1}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 1}
"""


def _issues(text: str) -> list[str]:
    with pytest.raises(FabricError) as caught:
        parse_fabric(text, "f.yaml")
    return [str(line) for line in str(caught.value).splitlines()]


def test_too_many_line_systems_is_one_problem_with_the_number_and_the_limit():
    out = _issues(TWO_SITES + "dci_links:\n" + "  - {}\n" * 100_000)
    assert out == [f"f.yaml:6: dci_links: 100000 line systems; at most {MAX_LINE_SYSTEMS}"]
    out = _issues(TWO_SITES + "dci_links: [" + "1," * 450_000 + "1]\n")
    assert out == [f"f.yaml:5: dci_links: 450001 line systems; at most {MAX_LINE_SYSTEMS}"]


def test_problems_beyond_the_first_fifty_are_counted_not_listed():
    out = _issues(TWO_SITES + "dci_links:\n" + "  - {}\n" * 1000)
    assert len(out) == MAX_ISSUES + 1
    assert out[-1] == f"f.yaml: … and {6 * 1000 - MAX_ISSUES} more problems (the first 50 are listed)"
    assert out[0] == "f.yaml:6: dci_links[0].name: missing required field"


def test_bad_risk_groups_on_many_links_are_counted_not_held():
    link = "  - {name: l%d, a: a, b: b, fiber_km: 80, module: 400ZR, wavelengths: 1, srlg: [%s]}\n"
    out = _issues(TWO_SITES + "dci_links:\n" + "".join(link % (i, ",".join(["1"] * 60))
                                                          for i in range(2000)))
    assert len(out) == MAX_ISSUES + 1 and "… and 119950 more problems" in out[-1]


def test_a_mapping_of_many_unknown_keys_is_one_problem():
    out = _issues(TWO_SITES + "".join(f"k{i}: 1\n" for i in range(100_000)))
    assert len(out) == 1 and "100002 fields; a fabric file has at most 5" in out[0]
    out = _issues(TWO_SITES + "modules: {" + ", ".join(f"m{i}: {{}}" for i in range(1000)) + "}\n")
    assert out == ["f.yaml:5: modules: 1000 module overrides; at most 64"]


@pytest.mark.parametrize("field", ["module", "mode"])
def test_a_megabyte_module_or_mode_is_echoed_short(field):
    value = "Q" * 1_000_000
    extra = f"module: {value}" if field == "module" else f"module: 400ZR, mode: {value}"
    out = _issues(TWO_SITES + f"dci_links:\n  - {{name: l, a: a, b: b, fiber_km: 80, "
                  f"wavelengths: 1, {extra}}}\n")
    assert len(out) == 1 and len(out[0]) < 300, out[0][:400]
    assert f"'{'Q' * 64}…' (1000000 characters)" in out[0] and f"dci_links[0].{field}" in out[0]


def test_a_megabyte_yaml_tag_is_echoed_short():
    out = _issues("name: !" + "Q" * 1_000_000 + " x\nsites: []\n")
    assert len(out) == 1 and len(out[0]) < 300 and "(1000001 characters)" in out[0]


def test_fifo_and_devices_are_refused_before_reading(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)            # with no writer, a read would block forever
    for path, kind in ((fifo, "a FIFO"), ("/dev/zero", "a character device"),
                       (tmp_path, "a directory")):
        with pytest.raises(FabricError) as caught:
            load_fabric(path)
        assert str(caught.value) == (f"{path}: cannot read: {kind}"
                                     f"{' (named pipe)' if kind == 'a FIFO' else ''}, not a "
                                     "regular file; give the path of a YAML file")


def test_links_no_module_can_cross_are_refused_without_gnpy(monkeypatch):
    def no_gnpy(*args):
        raise AssertionError("GNPy ran for a link no module can cross")
    monkeypatch.setattr(_gnpy, "propagate", no_gnpy)
    link = ("  - {name: l%d, a: a, b: b, fiber_km: %d, span_km: 80, module: 400ZR, "
            "wavelengths: 128, band: C+L, launch_power_dbm: auto}\n")
    out = _issues(TWO_SITES + "dci_links:\n" + "".join(link % (i, 40000 - i) for i in range(64)))
    assert len(out) == MAX_ISSUES + 1 and out[-1].endswith("… and 14 more problems (the first "
                                                          "50 are listed)")
    assert out[0].startswith("f.yaml:6: dci_links[0]: 400ZR cannot cross 40000 km, nor can "
                             "any module in the catalog: accumulated dispersion 680000 ps/nm")
    # every mode of 400ZR is past its dispersion tolerance: that alone is named
    assert "exceeds every mode's tolerance" in out[0] and "regenerate" in out[0]


def test_override_errors_name_their_key_and_the_name_meant_by_case():
    out = _issues(TWO_SITES + "dci_links:\n  - {name: l, a: a, b: b, fiber_km: 80, "
                  "module: 400zr, wavelengths: 1}\nmodules:\n  400ZR:\n    modes:\n"
                  "      400g: {width_ghz: 75}\n")
    assert any(line.startswith("f.yaml:10: modules.400ZR.modes.400g: 400ZR has no mode '400g' "
                               "(did you mean '400G'?)") for line in out), out
    assert any("dci_links[0].module: unknown module '400zr' (did you mean '400ZR'?)" in line
               for line in out), out


def test_an_unknown_module_override_does_not_hide_a_links_unknown_module():
    out = _issues(TWO_SITES + "dci_links:\n  - {name: l, a: a, b: b, fiber_km: 80, "
                  "module: FOO, wavelengths: 1}\nmodules:\n  BAR: {price_usd: 1}\n")
    assert any("modules.BAR: unknown module 'BAR'" in line for line in out)
    assert any("dci_links[0].module: unknown module 'FOO'" in line for line in out)


@pytest.mark.parametrize("field, limit", [("fabric_gbps: 1.0e308", "1000000"),
                                          ("fabric_gbps: 2000000", "1000000")])
def test_a_fabric_rate_beyond_any_port_is_refused(field, limit):
    out = _issues(TWO_SITES.replace("hosts_per_leaf: 1}", f"hosts_per_leaf: 1, {field}}}", 1))
    assert out == [f"f.yaml:3: sites[0].fabric_gbps: input should be less than or equal to "
                   f"{limit} (got {field.split(': ')[1].replace('1.0e308', '1e+308')})"]


def test_module_overrides_beyond_sense_are_refused():
    out = _issues(TWO_SITES + "modules:\n  400ZR: {price_usd: 1.0e308, power_w: 1.0e9}\n")
    assert len(out) == 2 and "price_usd: input should be less than or equal to 100000000" in out[1]
    assert "power_w: input should be less than or equal to 100000 " in out[0]


def test_a_few_unknown_override_fields_are_each_named_not_counted():
    out = _issues(TWO_SITES + "modules:\n  400ZR: {power_w: 10, price_usd: 1, dsp_latency: 3,"
                  " modes: {400G: {required_osnr: 25}}}\n")
    assert sorted(line.split(": ", 1)[1] for line in out) == [
        "modules.400ZR.dsp_latency: unknown field; did you mean 'dsp_latency_us'?",
        "modules.400ZR.modes.400G.required_osnr: unknown field; did you mean "
        "'required_osnr_db'?"], out
    flood = ", ".join(f"k{i}: 1" for i in range(2000))
    out = _issues(TWO_SITES + f"modules:\n  400ZR: {{modes: {{400G: {{{flood}}}}}}}\n")
    assert len(out) == 1 and "2000 fields; a mode override has at most 8" in out[0], out
    assert out[0].endswith("unknown: k0, k1, k2 and 1997 more"), out


def test_gnpy_work_beyond_the_limit_is_refused_before_any_run(monkeypatch):
    """Lines some mode can cross, each distinct (no cache helps): 64 of 500 one-kilometre
    spans would be 32 000 spans through GNPy (about a minute). Over the limit (lowered
    here) the file is refused with the figures, and GNPy never runs; a line no module
    can cross is still named, in file order, before the total."""
    from dcilab.fabric import model

    def no_gnpy(*args):
        raise AssertionError("GNPy ran beyond the limit")
    monkeypatch.setattr(_gnpy, "propagate", no_gnpy)
    monkeypatch.setattr(model, "MAX_GNPY_SPANS", 20_000)
    link = ("  - {name: l%d, a: a, b: b, fiber_km: %s, span_km: %s, module: 400ZR+, "
            "wavelengths: 1}\n")
    lines = [link % (i, 499.5 + i / 1000, 1) for i in range(64)]
    lines[1] = link % (1, 40000, 80)                                   # beyond any reach
    out = _issues(TWO_SITES + "dci_links:\n" + "".join(lines))
    assert len(out) == 2 and out[0].startswith("f.yaml:7: dci_links[1]: 400ZR+ cannot cross")
    assert out[1] == ("f.yaml:6: dci_links: its optical model would propagate 31,500 fibre "
                      "spans through GNPy (63 distinct line systems; a millisecond or more "
                      "each); at most 20,000: fewer distinct line systems, or longer spans "
                      "(span_km)")


def test_identical_line_systems_count_once_against_the_gnpy_limit(monkeypatch):
    from dcilab.fabric import model
    monkeypatch.setattr(model, "MAX_GNPY_SPANS", 1_000)
    link = "  - {name: l%d, a: a, b: b, fiber_km: 500, span_km: 1, module: 400ZR+, wavelengths: 1}\n"
    seen = []
    fabric = parse_fabric(TWO_SITES.replace("hosts_per_leaf: 1}", "hosts_per_leaf: 1, "
                                            "gateways: 4}") + "dci_links:\n"
                          + "".join(link % i for i in range(8)),
                          progress=lambda done, total: seen.append((done, total)))
    assert len(fabric.line_systems) == 8 and seen == [(i, 8) for i in range(1, 9)]


@pytest.mark.parametrize("km, extra, says, not_said", [
    # only dispersion: every mode's tolerance is exceeded, noise is not the reason given
    (6000, "", ["accumulated dispersion 102000 ps/nm exceeds every mode's tolerance",
                "100G, takes 100000"], ["amplifier noise"]),
    # dispersion for the fast modes, noise for the rest (250 km spans)
    (1500, ", span_km: 250", ["exceeds the tolerance of 400G;",
                              "for 300G, 200G, 100G the amplifier noise of 6 spans",
                              "even 100G needs"], ["every mode's tolerance"]),
])
def test_a_line_beyond_every_module_says_what_rules_each_mode_out(km, extra, says, not_said):
    text = ("name: t\nsites:\n  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 1}\n"
            "  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 1}\ndci_links:\n"
            f"  - {{name: l, a: a, b: b, fiber_km: {km}, module: 400ZR+, wavelengths: 1{extra}}}\n")
    with pytest.raises(FabricError) as err:
        parse_fabric(text)
    message = str(err.value)
    assert f"400ZR+ cannot cross {km} km, nor can any module in the catalog" in message
    assert all(s in message for s in says), message
    assert not any(s in message for s in not_said), message


def test_a_line_a_better_launch_power_crosses_is_not_refused_as_beyond_any_module():
    # An outside tester's line: 3000 km of 400ZR+ at -8 dBm. The pre-GNPy bound used the
    # file's power and said no module could cross it "even at the highest launch power";
    # at auto it crosses at 100G. GNPy now judges it, and the refusal says so.
    out = _issues(TWO_SITES + "dci_links:\n  - {name: l, a: a, b: b, fiber_km: 3000, "
                  "module: 400ZR+, wavelengths: 16, launch_power_dbm: -8}\n")
    assert len(out) == 1 and "nor can any module" not in out[0], out
    assert "400ZR+ cannot cross 3000 km" in out[0] and "use launch_power_dbm: auto (" in out[0]


LONG_800ZR_PLUS = TWO_SITES + """dci_links:
  - {name: l, a: a, b: b, fiber_km: 1500, module: 800ZR+, wavelengths: 4}
"""
FALLBACK = """modules:
  800ZR+:
    modes:
      400G: {rate_gbps: 400, line_rate_gbps: 472.8, baud_gbd: 118.2, modulation: DP-QPSK,
             fec: oFEC, width_ghz: 150, required_osnr_db: REQUIRED, cd_tolerance_ps_nm: 40000}
"""


def test_a_mode_added_in_the_file_carries_a_line_the_catalog_cannot():
    """1500 km is beyond 800ZR+ at 800G (20 000 ps/nm); with a datasheet's 400G fallback
    added under `modules:`, the line runs at 400G."""
    assert any("800ZR+ cannot cross 1500 km" in line for line in _issues(LONG_800ZR_PLUS))
    fabric = parse_fabric(LONG_800ZR_PLUS + FALLBACK.replace("REQUIRED", "17.5"), "f.yaml")
    assert {(w.channel.mode, w.rate_gbps) for w in fabric.wavelengths()} == {("400G", 400)}


def test_an_added_mode_better_than_an_ideal_receiver_is_refused():
    out = _issues(LONG_800ZR_PLUS + FALLBACK.replace("REQUIRED", "12"))
    assert out[0].startswith("f.yaml:10: modules.800ZR+.modes.400G: required_osnr_db 12 of "
                             "800ZR+ 400G is below the 16.0 dB an ideal DP-QPSK receiver needs")


def test_a_list_below_its_minimum_says_so_in_good_grammar():
    assert _issues("name: x\nsites: []\n") == ["f.yaml:2: sites: has 0; at least 1 site"]


def test_a_small_file_asking_minutes_of_gnpy_is_refused_before_any_run(monkeypatch):
    """An outside tester's 48 kB file: 499 distinct lines of 4 990 km or so in 10 km
    spans, just under the old bound of 250 000 spans, took 3 min 17 s in `check`."""
    def no_gnpy(*args):
        raise AssertionError("GNPy ran beyond the limit")
    monkeypatch.setattr(_gnpy, "propagate", no_gnpy)
    link = ("  - {name: l%d, a: a, b: b, fiber_km: %s, span_km: 10, module: 400ZR+, "
            "wavelengths: 1}\n")
    out = _issues(TWO_SITES + "dci_links:\n"
                  + "".join(link % (i, 4990 + i / 100) for i in range(499)))
    assert len(out) == 1 and "at most 20,000" in out[0] and "249,499 fibre spans" in out[0], out


@pytest.mark.parametrize("scale", ["5e-324", "1e-10", "0"])
def test_a_scale_too_small_to_measure_by_is_refused(scale):
    """Rates are counters divided by the scale: a subnormal one made them infinite."""
    out = _issues(TWO_SITES.replace("name: x\n", f"name: x\nscale: {scale}\n"))
    assert len(out) == 1 and out[0].startswith("f.yaml:2: scale: ") and scale in out[0], out


@pytest.mark.parametrize("value, kind", [("yes", "boolean"), ("2026-01-01", "date"),
                                         ("12", "number")])
def test_a_name_yaml_reads_as_another_type_says_to_quote_it(value, kind):
    """A hostile tester's `name: yes` said `got True`, a date `got datetime.date(...)`."""
    [first, *_] = _issues(TWO_SITES.replace("name: x", f"name: {value}")
                          + "dci_links: [{name: l, a: a, b: b, fiber_km: 10}]\n")
    assert first == f"f.yaml:1: name: expected text, but YAML reads this as a {kind}: " \
                    f"put it in quotes"
