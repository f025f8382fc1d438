"""`dcilab train`'s table: a run of one step has no steady state, and says so."""

from __future__ import annotations

from dcilab.cli.train import print_report


def _report(steps: int) -> dict:
    step = {"step_s": 1.25}
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
