"""`dcilab check FILE [--json]`: exit status, JSON shape, text summary, errors, warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dcilab.cli import main

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"

LINK_KEYS = {"name", "spans", "latency_ms", "capacity_gbps", "power_w", "cost_usd",
             "wavelengths"}
WAVELENGTH_KEYS = {"name", "frequency_thz", "module", "mode", "rate_gbps", "gsnr_db",
                   "osnr_ase_db", "required_osnr_db", "margin_db", "dispersion_ps_nm", "latency_ms"}


def _strict_json(text: str):
    """json.loads that refuses NaN/Infinity, which are not JSON."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def check(capsys, path, *flags):
    status = main(["check", str(path), *flags])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def check_json(capsys, path):
    status, out, err = check(capsys, path, "--json")
    return status, _strict_json(out)  # the whole of stdout is one JSON object


def write(tmp_path, data, name="fabric.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def site(name, **more):
    return {"name": name, "spines": 1, "leaves": 1, "hosts_per_leaf": 1, **more}


def link(name, a, b, **more):
    return {"name": name, "a": a, "b": b, "fiber_km": 40, "module": "400ZR", "wavelengths": 1,
            **more}


# --- success ---------------------------------------------------------------------------------

def test_two_dc_json(capsys):
    status, s = check_json(capsys, TOPOLOGIES / "two-dc.yaml")
    assert status == 0
    assert s["ok"] is True
    assert len(s["sites"]) == 2
    assert s["switches"] == 12 and s["hosts"] == 8
    assert s["warnings"] == []
    [dci] = s["dci_links"]
    assert LINK_KEYS <= set(dci)
    assert dci["name"] == "dc1-dc2-a"
    assert dci["spans"] == 1                       # 80 km, 80 km spans
    assert len(dci["wavelengths"]) == 4
    assert dci["capacity_gbps"] == 4 * 400
    assert dci["capacity_gbps"] == sum(w["rate_gbps"] for w in dci["wavelengths"])
    assert dci["latency_ms"] >= 80 * 0.0048         # light in fibre: ~4.9 us/km
    for k, w in enumerate(dci["wavelengths"], start=1):
        assert WAVELENGTH_KEYS <= set(w)
        assert w["name"] == f"dc1-dc2-a.w{k}"
        assert (w["module"], w["mode"], w["rate_gbps"]) == ("400ZR", "400G", 400)
        assert 191.3 <= w["frequency_thz"] <= 196.1   # C band
        assert w["dispersion_ps_nm"] == pytest.approx(80 * 17)   # default 17 ps/nm/km
        # Modes are judged on GSNR; NLI makes it lower than the ASE-only OSNR.
        assert w["margin_db"] == pytest.approx(w["gsnr_db"] - w["required_osnr_db"], abs=0.01)
        assert w["gsnr_db"] < w["osnr_ase_db"]
        assert w["margin_db"] >= 2.0                  # feasible: above the system margin
    assert len({w["frequency_thz"] for w in dci["wavelengths"]}) == 4
    assert s["capacity_by_site_pair"] == [{"a": "dc1", "b": "dc2", "capacity_gbps": 1600}]


def test_four_dc_ring_json(capsys):
    status, s = check_json(capsys, TOPOLOGIES / "four-dc-ring.yaml")
    assert status == 0 and s["ok"] is True
    assert s["switches"] == 4 * 6 and s["hosts"] == 16
    assert [d["name"] for d in s["dci_links"]] == [
        "north-east-a", "north-east-b", "east-south", "south-west", "west-north"]
    west_north = s["dci_links"][-1]
    assert {w["rate_gbps"] for w in west_north["wavelengths"]} == {300}
    pairs = {(p["a"], p["b"]): p["capacity_gbps"] for p in s["capacity_by_site_pair"]}
    assert pairs[("east", "north")] == 4 * 400 + 2 * 400
    assert len(pairs) == 4


def test_power_and_cost_follow_module_overrides(capsys, tmp_path):
    path = write(tmp_path, {"name": "t", "sites": [site("a"), site("b")],
                            "dci_links": [link("l", "a", "b", wavelengths=3)],
                            "modules": {"400ZR": {"power_w": 10, "price_usd": 500}}})
    status, s = check_json(capsys, path)
    assert status == 0
    # two modules per wavelength
    assert s["dci_links"][0]["power_w"] == pytest.approx(2 * 3 * 10)
    assert s["dci_links"][0]["cost_usd"] == pytest.approx(2 * 3 * 500)


def test_one_site_json(capsys, tmp_path):
    path = write(tmp_path, {"name": "solo", "sites": [site("a", leaves=2, hosts_per_leaf=3)]})
    status, s = check_json(capsys, path)
    assert status == 0 and s["ok"] is True
    assert s["hosts"] == 6 and s["switches"] == 1 + 2 + 1
    assert s["dci_links"] == [] and s["capacity_by_site_pair"] == []


def test_text_summary(capsys):
    status, out, err = check(capsys, TOPOLOGIES / "two-dc.yaml")
    assert status == 0 and err == ""
    assert "two-dc.yaml" in out
    assert "2 sites" in out and "12 switches" in out and "8 hosts" in out
    assert "1 DCI link" in out and "4 wavelengths" in out
    # a table for the DCI link: its name, then one row per wavelength
    assert "dc1-dc2-a" in out
    rows = [line for line in out.splitlines() if line.strip().startswith("dc1-dc2-a.w")]
    assert [r.split()[0] for r in rows] == [f"dc1-dc2-a.w{k}" for k in range(1, 5)]
    assert "    hosts: 10.2.1.1-2 on dc2-leaf1, 10.2.2.3-4 on dc2-leaf2\n" in out
    assert "warning" not in out


def test_text_summary_has_a_table_per_dci_link(capsys):
    status, out, _ = check(capsys, TOPOLOGIES / "four-dc-ring.yaml")
    assert status == 0
    for name, count in [("north-east-a", 4), ("north-east-b", 2), ("east-south", 2),
                        ("south-west", 4), ("west-north", 4)]:
        rows = [l for l in out.splitlines() if l.strip().startswith(f"{name}.w")]
        assert len(rows) == count, name


# --- warnings ---------------------------------------------------------------------------------

def test_rate_above_mininets_limit_is_a_warning_not_an_error(capsys, tmp_path):
    # DCI: 400 Gb/s x 0.01 = 4000 Mb/s > 1000 Mb/s; fabric: 50 Gb/s x 0.01 = 500 Mb/s is fine.
    path = write(tmp_path, {"name": "t", "scale": 0.01,
                            "sites": [site("a", fabric_gbps=50), site("b", fabric_gbps=50)],
                            "dci_links": [link("l", "a", "b")]})
    status, s = check_json(capsys, path)
    assert status == 0 and s["ok"] is True
    rate, *narrow = s["warnings"]
    assert "l.w1" in rate and "1000" in rate
    # 50 Gb/s sites behind a 400G wavelength: said too (the sites' fabric bounds it).
    assert [w.split(":")[0] for w in narrow] == ["site a", "site b"]

    status, out, _ = check(capsys, path)
    assert status == 0
    assert "warning" in out and "l.w1" in out


def test_no_warning_within_the_limit(capsys, tmp_path):
    # 400 Gb/s x 2.5e-3 = 1000 Mb/s would be the limit; 2e-3 gives 800 Mb/s.
    path = write(tmp_path, {"name": "t", "scale": 2e-3, "sites": [site("a"), site("b")],
                            "dci_links": [link("l", "a", "b")]})
    status, s = check_json(capsys, path)
    assert status == 0 and s["warnings"] == []


def test_a_line_beyond_the_stretch_of_the_short_way_is_a_warning(capsys, tmp_path):
    # 40 km: 198 us; 100 km: 492 us, 2.5 x: only a failure of l1 puts a-b traffic on l2.
    # 55 km (271.5 us, 1.37 x) is within the 1.5 elephants are steered within.
    path = write(tmp_path, {"name": "t", "sites": [site("a", gateways=2), site("b")],
                            "dci_links": [link("l1", "a", "b"),
                                          link("l2", "a", "b", fiber_km=100),
                                          link("l3", "a", "b", fiber_km=55)]})
    status, s = check_json(capsys, path)
    assert status == 0
    [warning] = [w for w in s["warnings"] if "shortest way" in w]
    assert warning.startswith("line system l2 (0.492 ms) is over 1.5 x the shortest way "
                              "between a and b (0.198 ms): ")
    # through another site: c-b (40 km) and a-c (40 km) against a direct 200 km line
    path = write(tmp_path, {"name": "t", "sites": [site("a", gateways=2), site("b"), site("c")],
                            "dci_links": [link("ab", "a", "b", fiber_km=200, module="400ZR+"),
                                          link("ac", "a", "c"), link("cb", "c", "b")]})
    status, s = check_json(capsys, path)
    assert [w.split(":")[0] for w in s["warnings"] if "shortest way" in w] == [
        "line system ab (0.984 ms) is over 1.5 x the shortest way between a and b (0.396 ms)"]


def test_a_gateway_no_line_system_ends_on_is_named(capsys, tmp_path):
    # two-dc: one line system, two gateways a site; pinned l1 to a's gateway 2 leaves the
    # round robin's next (l2) there too, and a's gateway 1 idle.
    status, s = check_json(capsys, TOPOLOGIES / "two-dc.yaml")
    assert [site["gateways_without_dci_link"] for site in s["sites"]] == [["dc1-gw2"],
                                                                         ["dc2-gw2"]]
    path = write(tmp_path, {"name": "t", "sites": [site("a", gateways=2), site("b", gateways=2)],
                            "dci_links": [link("l1", "a", "b", a_gateway=2), link("l2", "a", "b")]})
    status, s = check_json(capsys, path)
    assert [site["gateways_without_dci_link"] for site in s["sites"]] == [["a-gw1"], []]
    status, out, _ = check(capsys, path)
    assert "site a: 1 spine, 1 leaf, 2 gateways (a-gw1: no DCI link ends there), 1 host" in out


def test_detours_only_through_a_shared_risk_group_are_a_warning(capsys, tmp_path):
    shared = write(tmp_path, {"name": "t", "sites": [site("a", gateways=2), site("b", gateways=2)],
                              "dci_links": [link("l1", "a", "b", srlg=["duct"]),
                                            link("l2", "a", "b", srlg=["duct", "x"])]})
    status, s = check_json(capsys, shared)
    assert [w for w in s["warnings"] if "risk groups:" in w] == [
        f"line system {name} has detours only through line systems sharing one of its risk "
        f"groups: a cut of that group (one duct) takes the detours with it"
        for name in ("l1", "l2")]
    apart = write(tmp_path, {"name": "t", "sites": [site("a", gateways=2), site("b", gateways=2)],
                             "dci_links": [link("l1", "a", "b", srlg=["duct"]),
                                           link("l2", "a", "b", srlg=["other"])]})
    status, s = check_json(capsys, apart)
    assert not [w for w in s["warnings"] if "risk groups:" in w]


def test_risk_groups_differing_only_in_case_are_a_warning(capsys, tmp_path):
    # Names are exact: "Duct-7" and "duct-7" are two groups, so l1 is protected through l2
    # although a user most likely meant one duct. Said, not refused.
    path = write(tmp_path, {"name": "t", "sites": [site("a", gateways=2), site("b")],
                            "dci_links": [link("l1", "a", "b", srlg=["Duct-7"]),
                                          link("l2", "a", "b", srlg=["duct-7", "x"])]})
    status, s = check_json(capsys, path)
    assert status == 0 and s["ok"] is True
    assert [w for w in s["warnings"] if "differ only in case" in w] == [
        "risk groups 'Duct-7' and 'duct-7' differ only in case: they are 2 groups, and line "
        "systems in one may be protected through the other"]
    path = write(tmp_path, {"name": "t", "sites": [site("a", gateways=2), site("b")],
                            "dci_links": [link("l1", "a", "b", srlg=["duct-7"]),
                                          link("l2", "a", "b", srlg=["duct-7"])]})
    status, s = check_json(capsys, path)
    assert status == 0 and not [w for w in s["warnings"] if "case" in w]


# --- errors ----------------------------------------------------------------------------------

GOOD = {"name": "t", "sites": [site("dc1", gateways=2), site("dc2")],
        "dci_links": [link("l1", "dc1", "dc2"), link("l2", "dc1", "dc2")]}


def _with(**changes):
    data = json.loads(json.dumps(GOOD))
    for where, value in changes.items():
        section, index, field = where.split("__")
        data[section][int(index)][field] = value
    return data


BAD = {
    "unknown site in a": (_with(dci_links__1__a="dc9"), "dci_links[1].a", "dc9"),
    "wrong type": (_with(sites__0__spines="two"), "sites[0].spines", "two"),
    "zero wavelengths": (_with(dci_links__0__wavelengths=0), "dci_links[0].wavelengths", "0"),
    "gateway pin": (_with(dci_links__1__a_gateway=3), "dci_links[1].a_gateway", "3"),
    "infeasible optics": (_with(dci_links__1__fiber_km=200), "dci_links[1]", "3400"),
    "too many wavelengths": (_with(dci_links__0__wavelengths=65), "dci_links[0].wavelengths", "64"),
    "bad band": (_with(dci_links__0__band="L"), "dci_links[0].band", "C+L"),
    "bad name": (_with(sites__1__name="dc 2"), "sites[1].name", "dc 2"),
    "typo": (_with(sites__0__spine=2), "sites[0].spine", "unknown"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_file_json(capsys, tmp_path, case):
    data, path, word = BAD[case]
    file = write(tmp_path, data)
    status, s = check_json(capsys, file)
    assert status == 2
    assert s["ok"] is False
    assert all(set(e) <= {"path", "message", "line"} and {"path", "message"} <= set(e)
               for e in s["errors"])
    found = [e for e in s["errors"] if e["path"] == path]
    assert found, s["errors"]
    assert word in found[0]["message"]


@pytest.mark.parametrize("case", list(BAD))
def test_bad_file_text(capsys, tmp_path, case):
    data, path, word = BAD[case]
    file = write(tmp_path, data)
    status, out, err = check(capsys, file)
    assert status == 2
    line = next((l for l in err.splitlines() if path + ":" in l), None)
    assert line is not None, err
    assert str(file) in line and word in line


def test_yaml_syntax_error_json_has_the_line(capsys, tmp_path):
    file = write(tmp_path, "name: t\nsites:\n  - name: dc1\n    spines: [2\n")
    status, s = check_json(capsys, file)
    assert status == 2 and s["ok"] is False
    assert len(s["errors"]) == 1
    assert isinstance(s["errors"][0]["line"], int) and s["errors"][0]["line"] >= 4


def test_yaml_syntax_error_text_has_file_and_line(capsys, tmp_path):
    file = write(tmp_path, "name: t\nsites: x: y\n")
    status, out, err = check(capsys, file)
    assert status == 2
    assert f"{file}:2" in err


def test_duplicated_key_json(capsys, tmp_path):
    file = write(tmp_path, "name: t\nsites: []\nname: u\n")
    status, s = check_json(capsys, file)
    assert status == 2
    assert s["errors"][0]["line"] == 3
    assert "name" in s["errors"][0]["message"]


def test_missing_file(capsys, tmp_path):
    missing = tmp_path / "missing.yaml"
    status, s = check_json(capsys, missing)
    assert status == 2 and s["ok"] is False and len(s["errors"]) == 1
    status, out, err = check(capsys, missing)
    assert status == 2 and str(missing) in err


@pytest.mark.parametrize("text", ["", "[1, 2]\n"], ids=["empty", "a list"])
def test_not_a_mapping(capsys, tmp_path, text):
    status, s = check_json(capsys, write(tmp_path, text))
    assert status == 2 and s["ok"] is False
    assert "mapping" in s["errors"][0]["message"]


def test_several_errors_reported_together(capsys, tmp_path):
    data = _with(sites__0__spine=2, sites__1__leaves=0, dci_links__0__band="X")
    status, s = check_json(capsys, write(tmp_path, data))
    assert status == 2
    assert {e["path"] for e in s["errors"]} >= {"sites[0].spine", "sites[1].leaves",
                                                "dci_links[0].band"}


def test_a_file_that_is_not_utf8_exits_2_without_a_traceback(capsys, tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    status, s = check_json(capsys, path)
    assert status == 2 and s["ok"] is False


def test_a_complex_yaml_key_exits_2_without_a_traceback(capsys, tmp_path):
    status, s = check_json(capsys, write(tmp_path, "name: t\n? [a, b]\n: 1\n"))
    assert status == 2 and s["ok"] is False


def test_json_output_is_strict_json_even_for_extreme_rates(capsys, tmp_path):
    # An infinite rate must be refused; if it is not, --json must still print JSON.
    path = write(tmp_path, {"name": "t", "sites": [site("a", fabric_gbps=float("inf"))]})
    status = main(["check", str(path), "--json"])
    out, _ = capsys.readouterr()
    result = _strict_json(out)
    assert status == 2 and result["ok"] is False


def test_json_lists_each_switch_datapath_id_and_what_its_ports_reach(capsys):
    status, s = check_json(capsys, TOPOLOGIES / "two-dc.yaml")
    switches = {sw["name"]: sw for sw in s["switch_ports"]}
    assert len(switches) == 12
    leaf = switches["dc1-leaf1"]
    assert leaf["dpid"] == "0x0000000000010201" and leaf["role"] == "leaf"   # site 1, leaf 1
    assert leaf["ports"] == {"1": "dc1-h1", "2": "dc1-h2", "3": "dc1-leaf1~spine1",
                             "4": "dc1-leaf1~spine2"}
    gateway = switches["dc2-gw1"]
    assert gateway["dpid"] == "0x0000000000020301"
    assert [gateway["ports"][p] for p in ("3", "6")] == ["dc1-dc2-a.w1", "dc1-dc2-a.w4"]
    # and each host's address, on the leaf port the file joins it to (README: "hosts take
    # the addresses `dcilab check` prints")
    hosts = {h["name"]: h for h in s["host_addresses"]}
    assert len(hosts) == 8 and hosts["dc2-h3"] == {
        "name": "dc2-h3", "ip": "10.2.2.3/8", "mac": "02:00:0a:02:02:03", "site": "dc2",
        "leaf": "dc2-leaf2", "port": 1}
    assert all(switches[h["leaf"]]["ports"][str(h["port"])] == h["name"] for h in hosts.values())


def spec_warnings(capsys, tmp_path, links, marker) -> list[str]:
    """`check --json` of two sites joined by `links`: exit 0, and its warnings naming
    `marker`."""
    path = write(tmp_path, {"name": "t", "sites": [site("a"), site("b")], "dci_links": links})
    status, s = check_json(capsys, path)
    assert status == 0 and s["ok"] is True
    return [w for w in s["warnings"] if marker in w]


def test_a_zr_module_beyond_its_specified_reach_is_a_warning(capsys, tmp_path):
    # GNPy closes 400ZR over 130 km in two spans, but OIF specifies it to 120 km, and the
    # planner stops there: said, not refused.
    assert spec_warnings(capsys, tmp_path, [link("far", "a", "b", fiber_km=130),
                                            link("near", "a", "b", fiber_km=120)],
                         "specified for") == [
        "line system far: 400ZR: specified for links up to 120 km (OIF), not 130 km; the "
        "optics close here, but outside the module's specification (`dcilab plan` chooses a "
        "ZR+ module at this distance)"]


def test_wavelengths_in_the_l_band_of_a_c_band_module_are_a_warning(capsys, tmp_path):
    assert spec_warnings(capsys, tmp_path,
                         [link("wide", "a", "b", wavelengths=66, band="C+L"),
                          link("fits", "a", "b", wavelengths=64, band="C+L")],
                         "L band") == [
        "line system wide: 2 wavelength(s) in the L band, where 400ZR is not specified (its "
        "implementation agreement or MSA defines C-band channels): an assumption; `dcilab "
        "plan` adds fibre pairs instead"]


def test_a_wavelength_count_that_leaves_faster_modes_no_room_is_a_warning(capsys, tmp_path):
    # 65 x 400ZR+ fit only in 50 GHz slots: the line silently ran 100G (an outside tester).
    assert spec_warnings(capsys, tmp_path,
                         [link("l", "a", "b", module="400ZR+", wavelengths=65),
                          link("m", "a", "b", module="400ZR+", wavelengths=64),
                          link("n", "a", "b", module="400ZR+", wavelengths=65, mode="100G")],
                         "narrower slots") == [
        "line system l: 65 wavelengths of 400G (75 GHz) do not fit in the C band (only 64 "
        "do), so it runs 100G in narrower slots: 6500 Gb/s, where 64 x 400G would carry 25600"]


def test_a_site_narrower_than_its_line_systems_and_sites_differing_in_case_are_warned(
        capsys, tmp_path):
    path = write(tmp_path, {"name": "t", "sites": [site("a"), site("A", fabric_gbps=1600)],
                            "dci_links": [link("l", "a", "A", wavelengths=4)]})
    status, s = check_json(capsys, path)
    assert status == 0
    assert sorted(s["warnings"]) == [
        "site a: its line systems carry 1600 Gb/s, but the 1 gateway(s) they end on reach "
        "its spines with 400 Gb/s (1 x 1 x 400) and its leaves the spines with 400 (1 x 1 x "
        "400): the site's fabric, not its wavelengths, bounds its DCI traffic (raise "
        "fabric_gbps or spines, or end line systems on more gateways)",
        "sites 'a' and 'A' differ only in case: a typo, or names a reader will confuse"]
    # Gateways no line system ends on carry none of it (a re-tester's 4-gateway site).
    path = write(tmp_path, {"name": "t", "sites": [site("a", gateways=4, spines=2, leaves=4),
                                                  site("b", gateways=4, spines=2, leaves=4)],
                            "dci_links": [link("l", "a", "b", wavelengths=4)]})
    status, s = check_json(capsys, path)
    assert [w.split(":")[0] for w in s["warnings"] if w.startswith("site ")] == \
        ["site a", "site b"]
    assert "the 1 gateway(s) they end on reach its spines with 800 Gb/s" in s["warnings"][-1]
