"""Benchmark scenarios and the `bench` command, on cases small enough to reason about."""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter

import pytest
from fabric_helpers import topology

from dcilab.cli import bench
from dcilab.te.placement import Candidates
from dcilab.te.scenarios import (Scenario, allreduce_flows, evaluate, large_fabric,
                                 large_fabric_yaml, mixed_flows, natural_demands,
                                 placement_timing, skewed_flows)


@pytest.fixture(scope="module")
def two_dc():
    return topology("two-dc")


def test_the_generated_fabric_is_large_and_passes_the_real_checks():
    fabric = large_fabric()
    assert len(fabric.sites) == 16
    per_line = Counter(link.line_system for link in fabric.wavelengths())
    assert len(per_line) == 16 + 8                          # ring + a chord from every other site
    assert set(per_line.values()) == {8}
    assert "fiber_km: 250.0" in large_fabric_yaml()


def test_allreduce_sends_the_ring_volume_over_few_flows(two_dc):
    flows = allreduce_flows(two_dc, rings=1, hosts_per_pair=3, qps=2, bucket_bytes=6e9)
    pairs = Counter((two_dc.hosts[f.src].site, two_dc.hosts[f.dst].site) for f in flows)
    assert pairs == {("dc1", "dc2"): 6, ("dc2", "dc1"): 6}
    # 2 sites: each sends 2(k-1)/k x S = S bytes, over 6 flows
    assert sum(f.size_bytes for f in flows if f.src.startswith("dc1")) == pytest.approx(6e9)
    assert len({f.src for f in flows}) == 6                  # 3 hosts per site


def test_traffic_stays_between_sites_and_is_reproducible(two_dc):
    for flows in (skewed_flows(two_dc, 30), mixed_flows(two_dc, 5, 50)):
        assert all(two_dc.hosts[f.src].site != two_dc.hosts[f.dst].site for f in flows)
    assert skewed_flows(two_dc, 30) == skewed_flows(two_dc, 30)
    mixed = mixed_flows(two_dc, 5, 50)
    assert sum(f.elephant for f in mixed) == 5


def test_natural_demands_scale_hedera_fractions_by_the_nic(two_dc):
    flows = allreduce_flows(two_dc, rings=1, hosts_per_pair=3, qps=2)
    # each host sends two flows to one receiver: half of its 800G NIC each
    assert natural_demands(flows, Candidates(two_dc)) == pytest.approx([400e9] * 12)


def test_two_dc_allreduce_against_the_optimum_worked_by_hand(two_dc):
    # 6 elephants of 400G per direction over four 400G wavelengths: the best unsplittable
    # placement has two on some wavelength (MLU 2); `shortest` stacks all six on one (6).
    flows = allreduce_flows(two_dc, rings=1, hosts_per_pair=3, qps=2)
    result = evaluate(Scenario(two_dc, "allreduce", tuple(flows)), time_limit_s=5)
    assert result.optimum_kind == "milp"
    assert result.optimum_mlu == pytest.approx(2.0)
    assert result.policies["shortest"].mlu == pytest.approx(6.0)
    assert result.policies["loadaware"].mlu == pytest.approx(2.0)
    assert result.policies["loadaware"].ratio_to_optimum == pytest.approx(1.0)
    # Completion: a flow carries S/6 = 8e9/6 bytes. Two flows sharing a 400G wavelength
    # get 200G each (their hosts' 800G NICs do not bind) and finish last, at
    # 2 x 8e9/6 x 8 / 400e9 s; the six on one wavelength under `shortest` take 3x that.
    pair_s = 2 * 8e9 / 6 * 8 / 400e9
    assert result.policies["loadaware"].completion_s == pytest.approx(pair_s)
    assert result.policies["shortest"].completion_s == pytest.approx(3 * pair_s)


def test_loadaware_beats_ecmp_when_hashes_collide(two_dc):
    flows = mixed_flows(two_dc, 10, 0)
    result = evaluate(Scenario(two_dc, "mixed", tuple(flows)), time_limit_s=5)
    la, ecmp = result.policies["loadaware"], result.policies["ecmp"]
    assert la.ratio_to_optimum >= 0.95
    assert la.mlu < ecmp.mlu


def test_placement_timing_places_every_elephant(two_dc):
    ticks = iter(range(10_000))
    timing = placement_timing(two_dc, clock=lambda: float(next(ticks)), elephants=20)
    assert timing.elephants == 20
    assert timing.placement_ms_p50 == pytest.approx(1000.0)   # one tick (1 s) per placement
    assert timing.mlu_loadaware <= timing.mlu_ecmp


def test_bench_json_has_every_figure(monkeypatch, capsys):
    import dcilab.bench.flow as module
    real = module.standard_scenarios
    monkeypatch.setattr(module, "standard_scenarios",
                        lambda fabrics: [s for s in real(fabrics) if s.name == "two-dc/allreduce"])
    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers())
    args = parser.parse_args(["bench", "--json", "--elephants", "50", "--time-limit", "5"])
    assert args.run(args) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    (scenario,) = data["scenarios"]
    assert scenario["scenario"] == "two-dc/allreduce"
    assert scenario["optimum_kind"] == "milp" and scenario["optimum_mlu"] == pytest.approx(2.0)
    for policy in ("ecmp", "shortest", "loadaware"):
        figures = scenario["policies"][policy]
        for key in ("mlu", "ratio_to_optimum", "completion_s", "placement_ms_p50",
                    "placement_ms_p99"):
            assert math.isfinite(figures[key])
    assert data["placement"]["elephants"] == 50
    assert "two-dc/allreduce" in err                       # a progress line per scenario
