"""`dcilab bench --api` end to end, on a small generated fabric."""

from __future__ import annotations

import argparse
import json

from dcilab.bench.api import add_arguments as add_api_arguments, api_fabric_yaml, run as run_api_bench
from dcilab.fabric import parse_fabric


def test_generated_fabric_is_the_documented_size():
    fabric = parse_fabric(api_fabric_yaml(16), "<api-bench>")
    assert len(fabric.sites) == 16 and len(fabric.hosts) == 16 * 4 * 8
    assert len(fabric.switches) == 16 * (4 + 4 + 2)
    assert len(fabric.line_systems) == 16 + 8                 # ring + chords
    assert all(p.module == "400ZR+" and p.mode == "400G" and len(p.channels) == 8
               for p in fabric.line_systems.values())


def _bench(capsys, *extra) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    add_api_arguments(parser)
    parser.add_argument("--check-targets", action="store_true")
    args = parser.parse_args(["--api", "--json", "--api-sites", "2", "--api-requests", "40",
                              *extra])
    status = run_api_bench(args)
    report = json.loads(capsys.readouterr().out)
    # --check-targets: 1 when a target is missed (the ratio to the canned server is, here)
    missed = not all(t["met"] for t in report["targets"].values())
    assert status == (1 if args.check_targets and missed else 0)
    return report


def test_api_bench_reports_every_level_and_the_rate(capsys):
    report = _bench(capsys, "--api-clients", "1,4", "--api-rate", "100")
    assert [r["clients"] for r in report["back_to_back"]] == [1, 4]
    at_rate = report["at_rate"]
    assert at_rate["clients"] == 4 and at_rate["offered_per_second"] == 100
    # 40 reservations on a 100/s schedule cannot finish much before 0.4 s
    assert at_rate["seconds"] >= 0.39 and at_rate["reservations_per_second"] <= 103
    for r in (*report["back_to_back"], at_rate):
        assert r["reservations"] == 40 and r["errors"] == 0
        assert 0 < r["reserve_ms_p50"] <= r["reserve_ms_p99"]
        assert r["reservations_per_second"] > 0
    assert report["fabric"]["hosts"] == 64
    targets = report["targets"]
    assert set(targets) == {"reservations_per_second", "p99_ms_at_rate", "p99_ms_one_client",
                            "ratio_to_canned"}
    canned = report["canned_server"]
    assert canned["clients"] == 4 and canned["reservations"] == 40 and canned["errors"] == 0
    assert targets["ratio_to_canned"]["measured"] == round(
        report["back_to_back"][1]["reservations_per_second"]
        / canned["reservations_per_second"], 3)
    assert targets["reservations_per_second"]["measured"] == \
        report["back_to_back"][1]["reservations_per_second"]
    assert targets["p99_ms_one_client"]["measured"] == max(
        report["back_to_back"][0]["reserve_ms_p99"], report["back_to_back"][0]["release_ms_p99"])
    # The servers' CPU: the controller's is at least a millisecond a reservation, so 40 of
    # them are several of /proc's 10 ms ticks; the canned server is also run at the rate.
    assert at_rate["server_cpu_ms_per_reservation"] > 0 and 0 < at_rate["server_cpu_busy"] < 2
    canned_at_rate = report["canned_server_at_rate"]
    assert canned_at_rate["offered_per_second"] == 100 and canned_at_rate["errors"] == 0
    assert {"server_cpu_ms_per_reservation", "server_cpu_busy"} <= set(canned_at_rate)


def test_api_bench_pins_the_controller_apart_from_the_clients(capsys):
    report = _bench(capsys, "--api-clients", "2", "--api-rate", "0")
    if report["cores"] >= 2:
        assert report["controller_cpu"] not in report["client_cpus"]
        assert len(report["client_cpus"]) == report["cores"] - 1
    else:
        assert report["controller_cpu"] is None
    assert report["at_rate"] is None and "p99_ms_at_rate" not in report["targets"]
    assert report["canned_server_at_rate"] is None
    shared = _bench(capsys, "--api-clients", "2", "--api-rate", "0", "--api-shared-cpus",
                    "--check-targets")
    assert shared["controller_cpu"] is None and len(shared["client_cpus"]) == shared["cores"]


def test_api_bench_with_readers_reports_their_work(capsys):
    report = _bench(capsys, "--api-clients", "2", "--api-rate", "100", "--api-readers",
                    "--api-listers", "2", "--api-scrapers", "5")
    loaded = report["at_rate_with_readers"]
    assert loaded["reservations"] == 40 and loaded["errors"] == 0
    readers = loaded["readers"]
    assert readers["pages"] > 0 and readers["scrapes"] > 0
    assert readers["list_errors"] == 0 and readers["scrape_errors"] == 0
    assert "p99_ms_at_rate_with_readers" in report["targets"]
    assert report["targets"]["p99_ms_at_rate_with_readers"]["measured"] == max(
        loaded["reserve_ms_p99"], loaded["release_ms_p99"])
