"""`dcilab plan` end to end (no emulation), and the workload `train` and its twin send."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dcilab.bench.training import controller_events, twin, twin_fabric
from dcilab.cli import main
from dcilab.fabric import load_fabric
from dcilab.plan import fabric_yaml, parse_job, plan_job
from dcilab.plan.hardware import unsplit_capacity, unsplit_wavelengths
from dcilab.plan.traffic import GOODPUT_OF_LINE_RATE
from dcilab.fabric.model import scaled_mbps
from dcilab.plan.workload import (fabric_prediction, share_mbps, sync_flows,
                                   unsplittable_prediction)

JOBS = Path(__file__).resolve().parents[3] / "jobs"


def read(name):
    path = JOBS / name
    return parse_job(path.read_text(), str(path))


def test_plan_json_fabric_out_and_plot(tmp_path, capsys):
    fabric, png = tmp_path / "f.yaml", tmp_path / "p.png"
    assert main(["plan", str(JOBS / "10b-data-2dc.yaml"), "--json", "--fabric-out", str(fabric),
                 "--plot", str(png)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["site_pairs"][0]["required_gbps"] == pytest.approx(223, rel=0.03)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["check", str(fabric)]) == 0
    assert "is valid" in capsys.readouterr().out


def test_outputs_that_cannot_be_written_are_refused_before_planning(tmp_path, capsys):
    job = str(JOBS / "10b-data-2dc.yaml")
    for option, path, said in (("--plot", tmp_path / "nodir" / "p.png", "does not exist"),
                               ("--fabric-out", tmp_path, "is a directory")):
        assert main(["plan", job, option, str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"dcilab plan: {option} {path}: ") and said in err
    own = tmp_path / "job.yaml"                   # the job file is never written over
    own.write_bytes((JOBS / "10b-data-2dc.yaml").read_bytes())
    assert main(["plan", str(own), "--fabric-out", str(tmp_path / "." / "job.yaml")]) == 2
    assert "is the job file being planned; give another name" in capsys.readouterr().err
    assert own.read_bytes() == (JOBS / "10b-data-2dc.yaml").read_bytes()
    bare = tmp_path / "plot"                      # no suffix: still a PNG, under that name
    assert main(["plan", job, "--plot", str(bare)]) == 0
    assert bare.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {bare}" in \
        capsys.readouterr().out


def test_a_full_disk_is_named_for_each_output_without_a_traceback(capsys):
    job = str(JOBS / "10b-data-2dc.yaml")
    for option in ("--fabric-out", "--plot"):
        assert main(["plan", job, option, "/dev/full"]) == 2
        assert capsys.readouterr().err == \
            "dcilab plan: cannot write /dev/full: No space left on device\n"
    with open("/dev/full", "w") as full:                 # the report itself
        out = subprocess.run([sys.executable, "-m", "dcilab", "plan", job, "--json"],
                             stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr == "dcilab plan: cannot write the output: No space left on device\n"


def test_site_names_too_long_or_clashing_as_link_names_give_dci_names(tmp_path, capsys):
    long_a, long_b = "us-east-virginia-campus-1", "us-east-ohio-campus-002"
    for names in ((long_a, long_b), ("a", "b-c", "a-b", "c")):
        sites = "\n".join(f"  - {{name: {n}, gpus: 8}}" for n in names)
        ring = list(zip(names, names[1:] + names[:1]))[:len(names) if len(names) > 2 else 1]
        distances = "\n".join(f"  {a}: {{{b}: 80}}" for a, b in ring)
        job = tmp_path / "job.yaml"
        job.write_text(f"name: t\nmodel: {{parameters: 13e9, bytes_per_gradient: 2}}\n"
                       f"sites:\n{sites}\ndistances_km:\n{distances}\n"
                       f"step: {{compute_s: 2.0, overlap_s: 1.2}}\ntarget_compute_utilization: 0.9\n")
        fabric = tmp_path / "f.yaml"
        assert main(["plan", str(job), "--fabric-out", str(fabric)]) == 0
        capsys.readouterr()
        assert main(["check", str(fabric)]) == 0, capsys.readouterr().err
        assert "- name: dci1\n" in fabric.read_text()


def test_plan_text_and_bad_job_exit_2(tmp_path, capsys):
    assert main(["plan", str(JOBS / "10b-diloco-3dc.yaml")]) == 0
    out = capsys.readouterr().out
    assert "every 100 steps" in out and "classic WDM" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {parameters: 1e9, bytes_per_gradient: 2, layers: 3}\n")
    assert main(["plan", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: model.layers: unknown field" in err
    assert main(["plan", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "jobs shipped with dcilab: 10b-data-2dc," in err


def test_a_shipped_job_is_named_and_a_fabric_is_not_taken_for_a_job(tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)        # the name is found through the package, not the cwd
    assert main(["plan", "10b-data-2dc"]) == 0
    out = capsys.readouterr().out
    assert "job 10b-data-2dc: 2 sites" in out
    [optics] = [line for line in out.splitlines() if "ZR optics:" in line]
    assert "assumption" not in optics                  # 400ZR: sourced price and power
    assert main(["plan", "70b-data-16dc"]) == 0         # ZR+ prices have no public figure
    [optics] = [line for line in capsys.readouterr().out.splitlines() if "ZR optics:" in line]
    assert "800ZR+ price" in optics and "assumption figures" in optics
    assert main(["plan", "two-dc"]) == 2     # a fabric's name is not a job's
    assert "cannot read" in capsys.readouterr().err
    fabric = Path(__file__).resolve().parents[3] / "topologies" / "two-dc.yaml"
    assert main(["plan", str(fabric)]) == 2
    err = capsys.readouterr().err
    assert "this is a fabric file (it has dci_links), not a training job" in err
    assert err.count("\n") == 1                      # that, not a line per field
    assert main(["check", str(JOBS / "10b-data-2dc.yaml")]) == 2
    err = capsys.readouterr().err
    assert "this is a training job file (it has model and distances_km), not a fabric" in err


def test_sync_flows_split_each_loaded_direction(tmp_path):
    job = read("34b-data-2dc-400zr.yaml")
    path = tmp_path / "f.yaml"
    path.write_text(fabric_yaml(plan_job(job)))
    fabric = load_fabric(path)
    flows = sync_flows(job, fabric, byte_factor=1.0)
    assert len(flows) == 16                                # 8 each way between two sites
    assert {f.pair for f in flows} == {("west", "east"), ("east", "west")}
    assert sum(f.bytes for f in flows if f.pair == ("west", "east")) == pytest.approx(68e9, rel=1e-6)
    assert len({(f.src, f.dst) for f in flows}) == 8       # spread over the sites' hosts
    # On the fabric's own capacity the planner's prediction is the plan's.
    assert fabric_prediction(job, fabric).step_time_s == pytest.approx(
        plan_job(job).prediction.step_time_s, rel=0.01)
    # 8 flows over 4 wavelengths divide evenly: keeping flows whole costs nothing.
    assert unsplittable_prediction(job, fabric).sync_s == pytest.approx(
        fabric_prediction(job, fabric).sync_s)
    assert unsplittable_prediction(job, fabric, flows_per_pair=6).sync_s > \
        fabric_prediction(job, fabric).sync_s
    # Paced at its share, each direction's 8 flows together fill the pair's capacity ...
    wavelengths = [w for w in fabric.wavelengths()]
    pair = sum(scaled_mbps(fabric, w.rate_gbps) for w in wavelengths)
    shares = share_mbps(fabric, sync_flows(job, fabric, 1.0, flows_per_pair=8))
    assert len(shares) == 16 and sum(shares[:8]) == pytest.approx(pair)
    # ... and 6 flows, which do not divide over the 4 wavelengths, take what the best
    # placement of whole flows gives them (two on a wavelength) and no more: at the
    # pair's capacity over 6, two flows of a wavelength would overfill it
    one = scaled_mbps(fabric, wavelengths[0].rate_gbps)
    shares = share_mbps(fabric, sync_flows(job, fabric, 1.0, flows_per_pair=6))
    assert len(shares) == 12 and shares == [pytest.approx(one / 2)] * 12
    assert 2 * pair / 6 > one


def test_twin_loadaware_no_worse_than_ecmp_and_better_with_more_flows_than_wavelengths():
    job = read("300b-data-16dc.yaml")
    fabric = twin_fabric()
    r = twin(job, fabric, steps=3, flows_per_pair=12)
    la, ecmp = r["policies"]["loadaware"], r["policies"]["ecmp"]
    assert la["step_time_s"] < ecmp["step_time_s"]
    assert la["step_time_s"] >= r["predicted_step_s"] * 0.999


def test_bench_training_runs_a_job_of_other_sites_on_its_planned_fabric(capsys):
    """Not only the generated ring's s01..s16: a 2-site job runs on what `plan` builds."""
    assert main(["bench", "--training", "--job", "405b-data-2dc", "--steps", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fabric_source"] == "plan" and report["sites"] == 2
    for run in report["runs"]:
        assert run["predicted_step_s"] == pytest.approx(report["plan_step_s"], rel=0.02)
        la = run["policies"]["loadaware"]
        assert la["step_time_s"] >= run["predicted_step_s"] * 0.999
    assert main(["bench", "--training", "--job", "300b-data-16dc", "--steps", "1",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fabric_source"] == "generated"


def test_the_sync_a_fabric_offers_the_emulation_is_within_budget_only_when_planned(tmp_path):
    """`train` warns when the fabric's scale puts the sync over what 2 cores forward: an
    outside tester ran a job on two-dc (320 Mb/s in all) and got steps 2.1 x the plan's."""
    from dcilab.fabric import parse_fabric
    from dcilab.plan.fabric_out import CPU_BUDGET_MBPS
    from dcilab.plan.workload import emulated_sync_mbps
    job = parse_job("""
name: on-two-dc
model: {parameters: 60e9, bytes_per_gradient: 2}
sites: [{name: dc1, gpus: 1024}, {name: dc2, gpus: 1024}]
distances_km: {dc1: {dc2: 80}}
across_sites: data
sync: allreduce
step: {compute_s: 1.0, overlap_s: 0.3}
target_compute_utilization: 0.9
""", "on-two-dc.yaml")
    two_dc = parse_fabric((JOBS.parent / "topologies" / "two-dc.yaml").read_text(), "two-dc.yaml")
    # 4 x 400G each way at scale 1e-4: 160 Mb/s a direction
    assert emulated_sync_mbps(job, two_dc) == pytest.approx(320.0)
    planned = parse_fabric(fabric_yaml(plan_job(job, sensitivity=False)), "planned.yaml")
    assert emulated_sync_mbps(job, planned) <= CPU_BUDGET_MBPS * 1.01


def test_train_names_a_congestion_control_the_kernel_lacks(capsys):
    job = JOBS / "10b-data-2dc.yaml"
    assert main(["train", str(job), "--job", str(job), "--congestion-control", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--congestion-control nope" in err and "cubic" in err


@pytest.mark.parametrize("option", [("--stretch", "nan"), ("--stretch", "inf"),
                                    ("--stretch", "-1"), ("--stretch", "0"),
                                    ("--flows-per-pair", "0")])
def test_train_refuses_a_stretch_or_flow_count_that_cannot_run(option, capsys):
    """0 was taken for "the default" (a tester's two-minute run with the job's flows)."""
    job = JOBS / "10b-data-2dc.yaml"
    assert main(["train", "two-dc", "--job", str(job), *option]) == 2
    assert f"{option[0]} must be " in capsys.readouterr().err


def test_a_plot_named_for_another_image_format_is_refused(tmp_path, capsys):
    assert main(["plan", str(JOBS / "10b-data-2dc.yaml"), "--plot", str(tmp_path / "p.jpg")]) == 2
    assert "writes a PNG image; give a name ending .png" in capsys.readouterr().err
    assert not (tmp_path / "p.jpg").exists()


def test_a_training_report_lists_what_the_controller_saw_once_ready():
    """An outside tester cut a wavelength (and restarted the controller) in the middle of
    `dcilab train`: the report said nothing of it beside the slower step."""
    log = ["10:00:00 INFO dcilab.core: switch a-gw1 port 3 (a-b.w1) is down",
           "10:00:01 WARNING dcilab.core: link a-b.w1 is down",       # start-up: not counted
           "10:00:02 INFO dcilab.core: fabric f ready: all 6 switches programmed",
           "10:00:40 INFO dcilab.core: switch a-gw1 port 3 (a-b.w1) is down",
           "10:00:40 WARNING dcilab.core: link a-b.w1 is down",
           "10:00:40 INFO dcilab.core: elephant 10.0.0.1 moved to a-b.w2",
           "10:00:55 INFO dcilab.core: link a-b.w1 is back; held down for 1 s (a last resort)",
           "10:01:00 WARNING dcilab.core: switch b-gw1 (dpid 0x2) disconnected: routing around"]
    assert controller_events(log) == [
        "10:00:40 link a-b.w1 is down", "10:00:55 link a-b.w1 is back",
        "10:01:00 switch b-gw1 (dpid 0x2) disconnected: routing around"]


def test_the_controllers_events_say_the_step_they_came_in():
    """An ML-infra tester matched the events' clock times to the steps by hand."""
    import time as _time
    day = _time.mktime((2026, 12, 6, 0, 0, 0, 0, 0, -1))     # local midnight

    def at(clock: str) -> float:
        h, m, s = map(int, clock.split(":"))
        return day + 3600 * h + 60 * m + s
    log = ["10:00:02 INFO dcilab.core: fabric f ready: all 6 switches programmed",
           "10:00:05 WARNING dcilab.core: link a-b.w1 is down",
           "10:00:40 WARNING dcilab.core: link a-b.w1 is down",
           "10:00:55 INFO dcilab.core: link a-b.w1 is back; held down for 1 s",
           "10:01:30 WARNING dcilab.core: switch b-gw1 (dpid 0x2) disconnected: routing"]
    steps = [(1, at("10:00:10")), (2, at("10:00:40")), (3, at("10:01:10"))]
    assert controller_events(log, steps) == [
        "10:00:05 (before step 1) link a-b.w1 is down",
        "10:00:40 (step 2) link a-b.w1 is down", "10:00:55 (step 2) link a-b.w1 is back",
        "10:01:30 (step 3) switch b-gw1 (dpid 0x2) disconnected: routing"]
    # across a midnight
    night = ["23:59:00 INFO dcilab.core: fabric f ready: all 6 switches programmed",
             "00:00:20 WARNING dcilab.core: link a-b.w1 is down"]
    assert controller_events(night, [(1, at("23:59:50")), (2, at("23:59:50") + 35)]) == [
        "00:00:20 (step 1) link a-b.w1 is down"]


def test_distances_the_sync_does_not_cross_are_named(tmp_path, capsys):
    job = tmp_path / "ring.yaml"
    text = """name: ring
model: {parameters: 10e9, bytes_per_gradient: 2}
across_sites: data
sync: allreduce
target_compute_utilization: 0.95
sites: [{name: a, gpus: 8}, {name: b, gpus: 8}, {name: c, gpus: 8}, {name: d, gpus: 8}]
distances_km: {a: {b: 100, c: 150}, b: {c: 100}, c: {d: 100}, d: {a: 100}}
step: {compute_s: 1, overlap_s: 0.5}
"""
    job.write_text(text)
    assert main(["plan", str(job), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unused_distances"] == ["a-c"]
    assert main(["plan", str(job)]) == 0
    assert "(distances not used: a-c; the sync crosses a-b, b-c, c-d, d-a)" in \
        capsys.readouterr().out


@pytest.mark.parametrize("rings, said", [
    ("", "; one ring (NCCL's), one direction of each pair"),
    ("rings: 2\n", "; two counter-rotating rings, one each way of every pair")])
def test_the_header_and_json_say_which_rings_were_planned(tmp_path, capsys, rings, said):
    """A re-tester's find: the header said two rings for every job of three sites or more,
    the default one-ring plan too."""
    job = tmp_path / "j.yaml"
    job.write_text(JOBS.joinpath("25b-data-3dc-400zr.yaml").read_text() + rings)
    assert main(["plan", str(job)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.endswith(said)
    assert main(["plan", str(job), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rings"] == (2 if rings else 1)


@pytest.mark.parametrize("value", ["true", "2.0", '"2"', "3", "0"])
def test_rings_is_a_count_of_one_or_two(tmp_path, capsys, value):
    job = tmp_path / "j.yaml"
    job.write_text(JOBS.joinpath("25b-data-3dc-400zr.yaml").read_text() + f"rings: {value}\n")
    assert main(["plan", str(job)]) == 2
    assert "rings: input should be" in capsys.readouterr().err


def test_the_plot_shades_distances_past_the_planned_modes_dispersion_tolerance():
    """The text stars these rows; the plot drew them as plain points (a tester read a
    3 520 km 800ZR step as one that works)."""
    from dcilab.plan import plan_job, read_job
    from dcilab.plan.plot import sensitivity_figure

    plan = plan_job(read_job(JOBS / "10b-data-2dc.yaml"))
    rows = plan.sensitivity["distance"]
    past = [r["longest_km"] for r in rows if r["beyond_dispersion_tolerance"]]
    assert past and len(past) < len(rows)
    distance = sensitivity_figure(plan).axes[0]
    [shade] = distance.patches
    x0, x1 = shade.get_x(), shade.get_x() + shade.get_width()      # a Rectangle
    assert (x0, x1) == pytest.approx((min(past), rows[-1]["longest_km"]))
    assert "dispersion tolerance" in shade.get_label()


def test_unsplit_flows_carry_what_the_busiest_wavelength_lets_them():
    # 8 flows on 5 wavelengths: 3 carry two each, so what 4 carry; on 4 or 8, all of them
    assert unsplit_capacity(5, 800, 8) == unsplit_capacity(4, 800, 8) == 3200
    assert unsplit_capacity(8, 800, 8) == 6400 and unsplit_capacity(41, 200, 8) == 1600
    assert unsplit_wavelengths(3300, 800, 8) == 8       # 5, 6 and 7 carry what 4 do
    assert unsplit_wavelengths(3300, 800, 10) == 5
    assert unsplit_wavelengths(7000, 800, 8) is None     # 8 flows, one wavelength each


def test_a_plan_says_when_the_jobs_flows_cannot_fill_its_wavelengths(capsys):
    """An ML-infra tester: 300b-data-16dc plans 5 x 800ZR per pair and predicts 92.8 %, but
    its 8 flows per pair, each on one wavelength, made 83 % on that fabric in the twin.
    Nothing said so. The plan now gives the step with the job's flows and what fills them."""
    plan = plan_job(parse_job((JOBS / "300b-data-16dc.yaml").read_text(), "300b.yaml"),
                    sensitivity=False)
    f = plan.with_flows()
    assert f["wavelengths"] == [5] and f["flows_that_fill"] == 10
    assert len(f["site_pairs"]) == 16
    pair = plan.traffic.pairs[0]
    # each pair's sync takes 5/4 as long on the bytes (the latencies are the same)
    on_bytes = pair.bytes_per_sync * 8 / (5 * 800e9 * GOODPUT_OF_LINE_RATE)
    assert f["sync_s"] == pytest.approx(plan.prediction.sync_s + on_bytes / 4, rel=1e-5)
    assert f["compute_utilization"] < plan.job.spec.target_compute_utilization \
        < plan.prediction.compute_utilization
    assert main(["plan", str(JOBS / "300b-data-16dc.yaml")]) == 0
    out = capsys.readouterr().out
    assert "with 8 flows:     step 4.8836 s, compute utilization 81.91%" in out
    assert "flows_per_pair 10, the fewest from 8 up, fills them" in out
    ten = yaml.safe_load((JOBS / "300b-data-16dc.yaml").read_text()) | {"flows_per_pair": 10}
    assert plan_job(parse_job(yaml.safe_dump(ten), "t.yaml"), sensitivity=False) \
        .with_flows() is None


def test_train_says_when_the_fabric_is_too_small_for_the_jobs_target():
    """An ML-infra tester ran a 1T job on two-dc: 334 % of the prediction, and only the CPU
    warning spoke. The fabric's own shortfall is said first, with the pair and the need."""
    from dcilab.bench.training import _short_of_target
    from dcilab.resources import topology_path

    fabric = load_fabric(topology_path("two-dc"))

    def job(parameters):
        return parse_job(yaml.safe_dump({
            "name": "t", "model": {"parameters": parameters, "bytes_per_gradient": 2},
            "sites": [{"name": "dc1", "gpus": 8}, {"name": "dc2", "gpus": 8}],
            "distances_km": {"dc1": {"dc2": 80}},
            "step": {"compute_s": 1.0, "overlap_s": 0.5},
            "target_compute_utilization": 0.9}), "t.yaml")

    big = job(1e12)
    said = _short_of_target(big, fabric, fabric_prediction(big, fabric))
    # 2 TB each way in 0.5 + 1/9 s: 26,182 Gb/s against two-dc's 4 x 400G
    assert said.startswith("this fabric's DCI gives t 9.5% compute utilization, under its "
                           "90% target: dc1-dc2 has 1,600 Gb/s and the sync needs about "
                           "26,182 Gb/s (16.4x)")
    small = job(10e9)
    assert _short_of_target(small, fabric, fabric_prediction(small, fabric)) is None


def test_the_flows_that_fill_fill_every_pair_not_only_those_short():
    """A pair of 4 wavelengths is filled by 8 flows; its neighbour of 5 is not. 10 flows
    would fill the 5 and leave the 4 short (10 on 4 carry 3.33 wavelengths' worth): the
    count that fills both is a multiple of 4 and 5, 20."""
    from dataclasses import replace

    plan = plan_job(parse_job((JOBS / "300b-data-16dc.yaml").read_text(), "300b.yaml"),
                    sensitivity=False)
    first = plan.choices[0]
    assert first.wavelengths == 5
    fewer = replace(first, wavelengths=4)     # (only the count matters here)
    mixed = replace(plan, choices=(fewer,) + plan.choices[1:])
    f = mixed.with_flows()
    assert f["wavelengths"] == [5] and plan.choices[0].a + "-" + plan.choices[0].b \
        not in f["site_pairs"]
    assert f["flows_that_fill"] == 20
    for w in (4, 5):
        assert unsplit_capacity(w, 1.0, f["flows_that_fill"]) == w


FAR_RING = """\
name: far-ring
model: {parameters: 12e9, bytes_per_gradient: 2}
sites: [{name: a, gpus: 512}, {name: b, gpus: 512}, {name: c, gpus: 512}, {name: d, gpus: 512}]
distances_km: {a: {b: 30}, b: {c: 60}, c: {d: 90}, d: {a: 300}}
across_sites: data
sync: allreduce
step: {compute_s: 1.0, overlap_s: 0.1}
target_compute_utilization: 0.8
flows_per_pair: 4
rings: 2
modules: {800ZR: {available: false}, 800ZR+: {available: false}}
"""


def test_a_ring_pair_whose_line_the_routes_pass_by_is_said_by_plan_and_train(tmp_path, capsys):
    """An ML-infra tester's ring: d-a's 300 km line is over 1.5 x the 180 km way round,
    so the controller sends d-a's sync round the other pairs' lines, sized for their own:
    139.6 % of the prediction, and neither plan nor train said so."""
    from dcilab.bench.training import _passed_by
    from dcilab.te.long_ways import long_ways
    job = parse_job(FAR_RING, "far.yaml")
    plan = plan_job(job)
    [far] = plan.to_dict()["passed_by"]
    assert (far["a"], far["b"]) == ("d", "a") and far["latency_ms"] > 1.5 * far["shortest_ms"]
    path = tmp_path / "far.fabric.yaml"
    path.write_text(fabric_yaml(plan))
    fabric = load_fabric(path)
    [warning] = _passed_by(fabric, sync_flows(job, fabric, 1.0))
    assert "between d and a does not take line system d-a" in warning
    # and the flow-level twin, on the fabric its plan gives, says it too
    (tmp_path / "far.yaml").write_text(FAR_RING)
    capsys.readouterr()
    assert main(["bench", "--training", "--job", str(tmp_path / "far.yaml"), "--steps",
                 "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["warnings"] == [warning]
    assert f"warning: {warning}" in captured.err
    # the same ring with d-a at 100 km: every line on the way its traffic takes
    near = parse_job(FAR_RING.replace("d: {a: 300}", "d: {a: 100}"), "near.yaml")
    assert plan_job(near).to_dict()["passed_by"] == []
    # at 200 km (1.1 x the way round) loadaware steers onto it, hashed routes never do
    mid = parse_job(FAR_RING.replace("d: {a: 300}", "d: {a: 200}"), "mid.yaml")
    path.write_text(fabric_yaml(plan_job(mid)))
    fabric = load_fabric(path)
    flows = sync_flows(mid, fabric, 1.0)
    assert _passed_by(fabric, flows, ("loadaware",)) == []
    [warning] = _passed_by(fabric, flows, ("loadaware", "ecmp"))
    assert "does not take line system d-a" in warning and "under ecmp," in warning
    assert long_ways([("x", "a", "b", 1.0), ("y", "b", "c", 1.0), ("z", "a", "c", 2.0)]) == []
    assert [w.line for w in long_ways([("x", "a", "b", 1.0), ("y", "b", "c", 1.0),
                                       ("z", "a", "c", 3.1)])] == ["z"]


def test_twin_places_flows_by_their_pace_not_their_hosts_nics():
    """An ML-infra tester's: 6 flows of a pair on 3 wavelengths, over 4 hosts a site (two
    hosts with 2 flows, two with 1). Sized by NIC, a host's 2 flows each looked half the
    size of another's 1 and best fit put 3/2/1 flows on the wavelengths: 1.125 x the
    prediction, where the emulation (every flow paced at one share) placed 2/2/2."""
    job = parse_job("""
name: six-on-three
model: {parameters: 20e9, bytes_per_gradient: 2}
sites: [{name: tqa, gpus: 1024}, {name: tqb, gpus: 1024}]
distances_km: {tqa: {tqb: 80}}
step: {compute_s: 1.0, overlap_s: 0.2}
target_compute_utilization: 0.9
flows_per_pair: 6
modules: {800ZR: {available: false}, 800ZR+: {available: false}}
""", "six-on-three.yaml")
    fabric = twin_fabric(plan_job(job))
    assert len(list(fabric.wavelengths())) == 3
    r = twin(job, fabric, steps=3, flows_per_pair=6)
    assert r["predicted_unsplittable_step_s"] == pytest.approx(r["predicted_step_s"])
    assert r["policies"]["loadaware"]["step_time_s"] == pytest.approx(r["predicted_step_s"])


def test_bench_training_answers_json_when_it_cannot_run(tmp_path, capsys):
    """An ML-infra tester's: `bench --training --json` printed nothing on stdout for a
    job file that is not there or not valid."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {parameters: -5}\n")
    for job in (str(tmp_path / "missing.yaml"), str(bad)):
        assert main(["bench", "--training", "--job", job, "--json"]) == 2
        out = json.loads(capsys.readouterr().out)
        assert out["ok"] is False and out["code"] == "USAGE" and job in out["message"]
