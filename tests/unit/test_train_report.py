"""`dcilab train`'s table: a run of one step has no steady state, and says so; a DiLoCo
job's steps are amortised over its sync period as the planner's are; the report survives
a plot that cannot be saved."""

from __future__ import annotations

import json

import pytest

from dcilab.bench.training import policy_summary
from dcilab.cli import main
from dcilab.cli.train import finish, print_report
from dcilab.emulation.training import StepResult
from dcilab.plan.performance import predict


def _report(steps: int) -> dict:
    step = {"step": 1, "step_s": 1.25, "amortized_step_s": 1.25, "sync_s": 0.5}
    policy = {"step_time_s": 1.25, "step_ratio_to_prediction": 1.1, "sync_s": 0.5,
              "compute_utilization": 0.8, "controller": {"pinned": 4, "back": 0, "moved": 0},
              "steps": [step] * steps, "errors": [], "controller_events": [],
              "step_ratio_to_goodput_prediction": 1.0}
    if steps > 1:
        policy.update(steady_step_time_s=1.125, steady_step_ratio_to_prediction=0.99,
                      steady_step_ratio_to_goodput_prediction=0.9, steady_sync_s=0.375)
    else:
        policy.update(steady_step_time_s=None, steady_step_ratio_to_prediction=None,
                      steady_step_ratio_to_goodput_prediction=None, steady_sync_s=None)
    predicted = {"step_time_s": 1.1, "sync_s": 0.4, "compute_utilization": 0.9}
    return {"job": "j", "fabric": "f", "scale": 1e-4, "stretch": 5, "flows": 16,
            "flows_per_pair": 2, "bytes_per_flow": 2e6, "wavelengths": {"a-b": 4},
            "pacing": "none", "compute_s": 1.0, "overlap_s": 0.1, "sync_every_steps": 1,
            "predicted": predicted, "predicted_unsplittable": predicted,
            "calibration": {"single_flow_mbps": 9.5, "wavelength_mbps": 10.0,
                            "predicted": predicted},
            "policies": {"loadaware": policy}}


def _row(out: str) -> list[str]:
    return next(line for line in out.splitlines() if line.startswith("  loadaware")).split()


def test_one_step_shows_no_steady_figures(capsys):
    print_report(_report(1))
    row = _row(capsys.readouterr().out)
    # step, of pred, steady, of pred, of goodput pred, sync, steady sync, util
    assert row[1:9] == ["1.250", "110.0%", "-", "-", "-", "0.500", "-", "80.0%"]


def test_two_steps_show_the_steady_figures(capsys):
    print_report(_report(2))
    row = _row(capsys.readouterr().out)
    assert row[3:8] == ["1.125", "99.0%", "90.0%", "0.500", "0.375"]


def test_a_diloco_jobs_steps_are_amortised_over_its_sync_period(capsys):
    """10b-diloco-3dc: every emulated step runs the sync (2.57 s) while the planner's step
    (2.006 s) is averaged over the 100 steps of a period; the table and the plot showed the
    former beside the latter."""
    compute, every = 2.0, 100
    results = [StepResult(n, compute, 2.57, 0.57, 0.57) for n in (1, 2, 3)]
    fluid = predict(compute, 0.0, every, 0.55)
    summary = policy_summary(results, compute, every, fluid, [], None)
    assert [s["amortized_step_s"] for s in summary["steps"]] == [2.0057] * 3
    assert [s["step_s"] for s in summary["steps"]] == [2.57] * 3
    assert summary["step_time_s"] == pytest.approx(2.0057)
    assert summary["step_ratio_to_prediction"] == pytest.approx(2.0057 / 2.0055, abs=1e-4)
    report = _report(3)
    report.update(sync_every_steps=every,
                  policies={"loadaware": {**summary,
                                          "step_ratio_to_goodput_prediction": 1.0,
                                          "steady_step_ratio_to_goodput_prediction": 1.0}})
    print_report(report)
    out = capsys.readouterr().out
    assert _row(out)[-3:] == ["2.01", "2.01", "2.01"]
    assert "steps (s, amortised over 100)" in out
    assert "sync steps as run (s): 2.57 2.57 2.57" in out


def test_a_plot_that_cannot_be_saved_keeps_the_report(tmp_path, capsys):
    report = _report(2)
    assert finish(report, tmp_path / "gone" / "p.png", as_json=True) == 2
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["policies"]["loadaware"]["step_time_s"] == 1.25
    assert "cannot write" in printed["plot_error"] and "cannot write" in captured.err
    png = tmp_path / "p.png"
    assert finish(_report(2), png, as_json=False) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plot_path_that_cannot_be_written_is_refused_before_the_run(tmp_path, capsys):
    job = "10b-data-2dc"
    for plot, said in ((tmp_path / "nodir" / "p.png", "does not exist"),
                       (tmp_path / "p.jpg", "writes a PNG image"), (tmp_path, "is a directory")):
        assert main(["train", "two-dc", "--job", job, "--plot", str(plot)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"dcilab train: --plot {plot}: ") and said in err


def test_a_step_line_counts_loaded_directions_not_the_acks_coming_back():
    """A tester read "flows per loaded wavelength direction 8 8 8 0.3 0.3 0.3": the 0.3
    were the reverse directions' ACKs."""
    from dcilab.emulation.training import describe

    flow = 1_000_000
    wire = flow * 1514 / 1448
    result = StepResult(1, 1.0, 2.0, 1.0, 1.0, flow_times=[(0.0, 0.1, 1.0)] * 8,
                        wavelength_bytes={"a": int(8 * wire), "b": int(0.3 * wire),
                                          "c": int(0.6 * wire)})
    assert describe(result, flow).endswith("flows per loaded wavelength direction 8 0.6")


def test_steps_on_a_changed_dci_are_compared_with_the_prediction_on_it(capsys):
    compute, every = 5.0, 1
    fluid = predict(compute, 3.0, every, 4.0)               # intact: step 6 s
    results = [StepResult(1, compute, 6.0, 4.0, 1.0), StepResult(2, compute, 10.0, 8.0, 5.0)]
    note = {"dci": "a-b 200 of 400 Gb/s", "predicted_step_s": 10.0, "pace_mbps": [1.0]}
    summary = policy_summary(results, compute, every, fluid, [], None, {2: note})
    assert summary["changed_dci"] == {"steps": [2], "step_ratio_to_prediction_now": 1.0}
    # steady is of the steps on the intact DCI only (none here after step 1)
    assert summary["steady_step_time_s"] is None
    assert policy_summary(results, compute, every, fluid, [], None)["steady_step_time_s"] == 10.0
    assert "dci_changed" in summary["steps"][1] and "dci_changed" not in summary["steps"][0]
    assert policy_summary(results, compute, every, fluid, [], None)["changed_dci"] is None
    report = _report(2)
    report["policies"]["loadaware"].update(changed_dci=summary["changed_dci"],
                                           steps=summary["steps"])
    print_report(report)
    assert ("step 2 ran on a DCI faults had changed (a-b 200 of 400 Gb/s): 100.0% of the "
            "planner's prediction on that DCI") in capsys.readouterr().out


def test_a_step_whose_dci_changed_during_its_sync_is_left_out_of_steady(capsys):
    compute, every = 5.0, 1
    fluid = predict(compute, 3.0, every, 4.0)
    results = [StepResult(n, compute, s, s - 2, s - 5) for n, s in ((1, 6.0), (2, 9.0),
                                                                    (3, 6.2))]
    note = {"dci": "a-b 200 of 400 Gb/s", "predicted_step_s": 9.0, "pace_mbps": [1.0]}
    # step 2 started on a cut DCI and was repaired during its sync: it ran on neither, and
    # is compared with neither (a tester's: with the cut DCI's prediction)
    summary = policy_summary(results, compute, every, fluid, [], None, {2: note},
                             {2: ["whole again"]})
    assert summary["steady_step_time_s"] == pytest.approx(6.2)
    assert summary["steps"][1]["dci_changed_during_sync"] == ["whole again"]
    assert summary["changed_dci"] is None
    summary = policy_summary(results, compute, every, fluid, [], None, {},
                             {2: ["a-b 200 of 400 Gb/s", "whole again"]})
    assert summary["steady_step_time_s"] == pytest.approx(6.2)
    assert summary["changed_dci"] is None           # no sync started on a changed DCI
    report = _report(3)
    report.update(pacing="share", pace_mbps=[1.0])
    report["policies"]["loadaware"].update(steps=summary["steps"])
    print_report(report)
    assert ("the DCI changed during the sync of step 2 (a-b 200 of 400 Gb/s, then whole "
            "again): the flows' pace followed each change; left out of steady"
            ) in capsys.readouterr().out


def test_train_takes_the_labs_bfd_and_transceiver_options(capsys):
    """A re-tester's: `dcilab fault degrade` was refused during `train` (no transceivers
    over gNMI) and a gray failure went unseen (no BFD); both are `dcilab lab`'s options."""
    from dcilab.cli import build_parser
    args = build_parser(only="train").parse_args(
        ["train", "two-dc", "--job", "10b-data-2dc", "--gnmi", "--adapt", "--bfd", "50"])
    assert args.gnmi and args.adapt and args.bfd == 50
    assert build_parser(only="train").parse_args(
        ["train", "two-dc", "--job", "10b-data-2dc", "--no-bfd"]).bfd is None
    assert main(["train", "two-dc", "--job", "10b-data-2dc", "--adapt"]) == 2
    assert "--adapt, --reconfiguration-s and --mismatch-s need --gnmi" in capsys.readouterr().err
