"""`dcilab bench --api` end to end, on a small generated fabric."""

from __future__ import annotations

import argparse
import json

from dcilab.cli.bench_api import add_api_arguments, api_fabric_yaml, run_api_bench
from dcilab.fabric import parse_fabric


def test_generated_fabric_is_the_documented_size():
    fabric = parse_fabric(api_fabric_yaml(16), "<api-bench>")
    assert len(fabric.sites) == 16 and len(fabric.hosts) == 16 * 4 * 8
    assert len(fabric.switches) == 16 * (4 + 4 + 2)
    assert len(fabric.line_systems) == 16 + 8                 # ring + chords
    assert all(p.module == "400ZR+" and p.mode == "400G" and len(p.channels) == 8
               for p in fabric.line_systems.values())


def test_api_bench_reports_every_level(capsys):
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    add_api_arguments(parser)
    args = parser.parse_args(["--api", "--json", "--api-sites", "2", "--api-requests", "40",
                              "--api-clients", "1,4"])
    assert run_api_bench(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["clients"] for r in report["results"]] == [1, 4]
    for r in report["results"]:
        assert r["reservations"] == 40 and r["errors"] == 0
        assert 0 < r["reserve_ms_p50"] <= r["reserve_ms_p99"]
        assert r["reservations_per_second"] > 0
    assert report["fabric"]["hosts"] == 64
