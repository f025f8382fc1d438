"""`dcilab plan`'s N-1: the step with each planned line system cut, the sync on what is left
as the controller routes it (its pair's other line systems, else a detour round the other
sites, shared max-min with the pairs whose lines those are)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcilab.cli import main
from dcilab.plan import parse_job, plan_job
from dcilab.plan.planner import predict_job
from dcilab.plan.survival import _cut, line_cuts
from dcilab.plan.traffic import GOODPUT_OF_LINE_RATE
from dcilab.plan.workload import SyncFlow
from dcilab.te.placement import DEFAULT_MAX_STRETCH

JOBS = Path(__file__).resolve().parents[3] / "jobs"


def _plan(text_or_name: str):
    path = JOBS / text_or_name
    text = path.read_text() if text_or_name.endswith(".yaml") else text_or_name
    return plan_job(parse_job(text, str(path)), sensitivity=False)


@pytest.mark.parametrize("name", ["10b-diloco-3dc.yaml", "25b-data-3dc-400zr.yaml",
                                  "70b-data-16dc.yaml", "405b-data-2dc.yaml"])
def test_with_nothing_cut_the_model_gives_the_plans_own_step(name):
    """The N-1 model is the planner's: on the intact DCI it predicts what the plan does."""
    plan = _plan(name)
    flows = [SyncFlow("", "", 0, d) for p in plan.traffic.pairs
             for d, sent in (((p.a, p.b), p.bytes_ab), ((p.b, p.a), p.bytes_ba)) if sent > 0
             for _ in range(plan.job.spec.flows_per_pair)]
    latency = {d: c.one_way_latency_s * 1e3 for c in plan.choices
               for d in ((c.a, c.b), (c.b, c.a))}
    capacity = {d: c.capacity_gbps for c in plan.choices for d in ((c.a, c.b), (c.b, c.a))}
    whole = _cut(plan, "none", plan.choices[0], capacity, flows, latency, DEFAULT_MAX_STRETCH)
    assert whole["step_time_s"] == pytest.approx(plan.prediction.step_time_s, rel=1e-6)
    assert whole["detours"] == []


def test_a_two_site_job_on_one_line_system_has_no_way_left():
    cuts = line_cuts(_plan("10b-data-2dc.yaml"))["cuts"]
    assert [(c["line_system"], c["step_time_s"], c["capacity_left_gbps"]) for c in cuts] == \
        [("dc-a-dc-b", None, 0.0)]


def test_a_ring_pair_cut_goes_round_the_third_site_on_the_rings_idle_directions():
    """One ring (NCCL's) loads one direction of each pair: the detour of a cut pair runs on
    the others' reverse directions, idle, so the step is the plan's but for the latency."""
    plan = _plan("25b-data-3dc-400zr.yaml")
    cuts = line_cuts(plan)["cuts"]
    assert len(cuts) == 3
    for c in cuts:
        (detour,) = c["detours"]
        assert len(detour["way"]) == 3 and detour["way"][0] in (c["a"], c["b"])
        # slower by the longer way's latency alone, not by capacity
        assert plan.prediction.step_time_s < c["step_time_s"] < \
            1.01 * plan.prediction.step_time_s
    steps = [c["step_time_s"] for c in cuts]
    assert steps == sorted(steps, reverse=True)             # the slowest first


HUGE = """
name: two-line-systems
model: {parameters: 2.0e12, bytes_per_gradient: 2}
sites:
  - {name: a, gpus: 100000}
  - {name: b, gpus: 100000}
distances_km:
  a: {b: 20}
step: {compute_s: 1.0, overlap_s: 0.5}
target_compute_utilization: 0.99
"""


def test_a_pair_with_several_line_systems_keeps_the_others_and_is_predicted_on_them():
    plan = _plan(HUGE)
    (choice,) = plan.choices
    assert choice.line_systems >= 2
    cuts = line_cuts(plan)["cuts"]
    sizes = {link.capacity_gbps for link in choice.links}
    assert len(cuts) == len(sizes)                    # equal line systems are cut alike
    worst = cuts[0]
    lost = max(sizes)
    assert worst["capacity_left_gbps"] == pytest.approx(choice.capacity_gbps - lost)
    # by hand: the planner on the capacity left, the same latency
    by_hand = predict_job(plan.job, plan.traffic,
                          {(choice.a, choice.b): (choice.capacity_gbps - lost)
                           * GOODPUT_OF_LINE_RATE},
                          {(choice.a, choice.b): choice.one_way_latency_s})
    assert worst["step_time_s"] == pytest.approx(by_hand.step_time_s, rel=1e-6)
    assert worst["step_time_s"] > plan.prediction.step_time_s
    assert worst["detours"] == []


def test_plan_prints_and_reports_the_line_cuts(capsys):
    assert main(["plan", str(JOBS / "70b-data-16dc.yaml"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    cuts = report["line_cuts"]["cuts"]
    assert report["line_cuts"]["intact"]["step_time_s"] == pytest.approx(report["step_time_s"])
    assert len(cuts) == 16 and all(len(c["detours"]) == 1 for c in cuts)
    assert all(c["step_time_s"] > report["step_time_s"] for c in cuts)
    assert main(["plan", str(JOBS / "70b-data-16dc.yaml")]) == 0
    out = capsys.readouterr().out
    assert "one line system cut (N-1)" in out
    first = cuts[0]
    row = next(line for line in out.splitlines()
               if line.strip().startswith(first["line_system"] + " "))
    assert f"{first['step_time_s']:.4f}" in row and "(15 lines)" in row
    assert "... and 10 more, each as fast or faster" in out
    assert "with nothing cut" not in out
    assert main(["plan", str(JOBS / "10b-data-2dc.yaml")]) == 0
    assert "no way left between dc-a and dc-b: its sync cannot end" in capsys.readouterr().out
    assert main(["plan", str(JOBS / "pipeline-2dc.yaml")]) == 0
    assert "no way left between stage-a and stage-b: the job's traffic cannot pass" in \
        capsys.readouterr().out


PASSED_BY = """
name: passed-by
model: {parameters: 25.0e9, bytes_per_gradient: 2}
sites:
  - {name: a, gpus: 2048}
  - {name: b, gpus: 2048}
  - {name: c, gpus: 2048}
distances_km:
  a: {b: 10}
  b: {c: 10}
  c: {a: 60}
across_sites: data
sync: allreduce
step: {compute_s: 1.0, overlap_s: 0.3}
target_compute_utilization: 0.95
flows_per_pair: 8
"""


def test_a_passed_by_line_gives_the_routed_figure_with_nothing_cut(capsys, tmp_path):
    """A reviewer's: with c-a passed by (60 km against 20 round b), cutting it "gave" a
    step faster than the plan's, which counts c-a's own line: the N-1 table now says the
    routed figure with nothing cut, the one its rows compare with."""
    plan = _plan(PASSED_BY)
    assert plan.to_dict()["passed_by"]
    n1 = line_cuts(plan)
    intact = n1["intact"]["step_time_s"]
    assert intact != pytest.approx(plan.prediction.step_time_s, rel=1e-6)
    assert all(c["step_time_s"] >= intact - 1e-9 for c in n1["cuts"])
    job = tmp_path / "passed-by.yaml"
    job.write_text(PASSED_BY)
    assert main(["plan", str(job)]) == 0
    assert f"with nothing cut, the sync as the controller routes it (round a line it passes " \
        f"by): step {intact:.4f} s" in capsys.readouterr().out
