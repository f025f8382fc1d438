"""`dcilab train` on the emulation: a planned fabric, two steps of a 10B job's sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcilab.cli import main

JOBS = Path(__file__).resolve().parents[2] / "jobs"


@pytest.mark.integration
def test_train_runs_steps_on_the_planned_fabric(tmp_path, capsys, no_leftovers):
    job, fabric = JOBS / "10b-data-2dc.yaml", tmp_path / "fabric.yaml"
    assert main(["plan", str(job), "--fabric-out", str(fabric), "--json"]) == 0
    capsys.readouterr()
    # Time x5: 5 s of compute per step, a sync of ~2 s (16 flows, one wavelength each way).
    assert main(["train", str(fabric), "--job", str(job), "--steps", "2", "--stretch", "5",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    result = report["policies"]["loadaware"]
    assert result["errors"] == []
    assert report["flows"] == 16 and len(result["steps"]) == 2
    predicted = report["predicted"]
    for step in result["steps"]:
        assert len(step["flow_mbps"]) == 16 and min(step["flow_mbps"]) > 0
        # A step lasts its compute, or the sync started `overlap` before compute ended.
        assert step["step_s"] >= report["compute_s"] - 0.05
        expected = max(report["compute_s"],
                       report["compute_s"] - report["overlap_s"] + step["sync_s"])
        assert step["step_s"] == pytest.approx(expected, abs=0.5)
        # No faster than the wavelengths allow (a prediction at line rate, no overhead).
        assert step["sync_s"] >= 0.9 * predicted["sync_s"]
        # Each sender is paced at its share of the pair's capacity (the default): no flow
        # outruns its pace, though one wavelength each way could carry it faster.
        assert report["pacing"] == "share" and len(report["pace_mbps"]) == 1
        assert max(step["flow_mbps"]) <= 1.03 * report["pace_mbps"][0]
    # The sync's connections persist across steps (NCCL's channels do): the controller
    # pins each flow once, and holds the pin while it is idle between steps.
    assert 0 < result["controller"]["pinned"] <= report["flows"]
    for step in result["steps"]:
        assert len(step["flow_times_s"]) == 16
        assert all(start <= first <= last for start, first, last in step["flow_times_s"])
        assert sum(step["wavelength_bytes"].values()) >= 16 * report["bytes_per_flow"]
    # One flow alone gets most of a wavelength: the emulation is shaping, not starving.
    calibration = report["calibration"]
    assert 0.5 < calibration["goodput_ratio"] <= 1.05
