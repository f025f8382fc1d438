"""The fabric file's optics fields: `launch_power_dbm: <number> | auto`, and infeasible
links reported at their field path with suggestions GNPy confirms."""

from __future__ import annotations

import re

import pytest
import yaml
from gnpy_reference import gnpy_reference

from dcilab.fabric import FabricError, parse_fabric


def fabric_text(**link) -> str:
    return yaml.safe_dump({
        "name": "t",
        "sites": [{"name": "a", "spines": 1, "leaves": 1, "hosts_per_leaf": 1},
                  {"name": "b", "spines": 1, "leaves": 1, "hosts_per_leaf": 1}],
        "dci_links": [{"name": "ab", "a": "a", "b": "b", "module": "400ZR+",
                       "wavelengths": 64, **link}],
    }, sort_keys=False)


def issues(text):
    with pytest.raises(FabricError) as info:
        parse_fabric(text, "f.yaml")
    return info.value.issues


def test_launch_power_auto_is_accepted_and_resolved():
    fabric = parse_fabric(fabric_text(fiber_km=800, launch_power_dbm="auto"), "f.yaml")
    plan = fabric.line_systems["ab"]
    assert plan.launch_power_auto and 0.3 <= plan.launch_power_dbm <= 1.5
    assert plan.to_dict()["launch_power_auto"] is True


def test_a_numeric_launch_power_is_used_as_given():
    fabric = parse_fabric(fabric_text(fiber_km=390, launch_power_dbm=-1.5), "f.yaml")
    plan = fabric.line_systems["ab"]
    assert (plan.launch_power_dbm, plan.launch_power_auto) == (-1.5, False)
    assert plan.mode == "300G"          # GSNR 25.71 < 26 at −1.5 dBm (test_modes)


@pytest.mark.parametrize("value", ["max", "AUTO", True, None, 12, -11])
def test_a_bad_launch_power_names_the_field(value):
    [issue] = issues(fabric_text(fiber_km=80, launch_power_dbm=value))
    assert issue.path.startswith("dci_links[0].launch_power_dbm")


@pytest.mark.parametrize("field", ["dispersion_ps_nm_km", "attenuation_db_per_km"])
def test_a_fibre_without_loss_or_dispersion_is_refused(field):
    # The GN model of NLI divides by both.
    [issue] = issues(fabric_text(fiber_km=80, **{field: 0}))
    assert issue.path == f"dci_links[0].{field}"


def test_an_infeasible_link_says_what_would_work_and_gnpy_agrees():
    # 64 × 400G forced at 390 km, −1.5 dBm: GSNR 25.71 dB < 26.
    [issue] = issues(fabric_text(fiber_km=390, launch_power_dbm=-1.5, mode="400G"))
    assert issue.path == "dci_links[0]"
    assert "GSNR 25.71 dB" in issue.message
    launch = float(re.search(r"launch_power_dbm: auto \((-?[\d.]+) dBm",
                             issue.message).group(1))
    at_best = gnpy_reference(fiber_km=390, span_km=80, channels=64, baud_gbd=60.1385,
                             slot_ghz=75, launch_dbm=launch)
    assert min(at_best.gsnr_01nm) >= 26.0
    # and the fabric with that advice taken is valid, at 400G
    fixed = parse_fabric(fabric_text(fiber_km=390, launch_power_dbm="auto", mode="400G"),
                         "f.yaml")
    assert fixed.line_systems["ab"].launch_power_dbm == launch


def test_identical_line_systems_cost_one_gnpy_run_each():
    # The 16-site API bench fabric: 24 line systems, only two distinct (100 km and 250 km,
    # 8 × 400ZR+ at 400G each).
    from dcilab.bench.api import api_fabric_yaml
    from dcilab.optics import qot

    qot.clear_cache()
    fabric = parse_fabric(api_fabric_yaml(), "api.yaml")
    assert len(fabric.line_systems) == 24
    assert qot._qot.cache_info().misses == 2
    parse_fabric(api_fabric_yaml(), "api.yaml")
    assert qot._qot.cache_info().misses == 2


def test_gnpy_is_imported_only_when_a_qot_is_computed():
    import subprocess
    import sys

    code = ("import sys, dcilab.fabric, dcilab.optics, dcilab.cli; "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'gnpy'], 'gnpy imported'; "
            "from dcilab.optics import DEFAULT_CATALOG, LineSystem, line_qot; "
            "zr = DEFAULT_CATALOG.module('400ZR'); line_qot(LineSystem(80), zr, zr.modes[0], 1); "
            "assert 'gnpy' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
