"""`dcilab bench`: one benchmark at a time, each option with its own benchmark, and numbers
in range (an outside tester's `--optical --training` started an emulation it never asked
for; `--job X` ran the placement bench; bad numbers gave tracebacks)."""

from __future__ import annotations

import json

import pytest

from dcilab.cli import main
from dcilab.te.scenarios import large_fabric_yaml
from dcilab.fabric import parse_fabric


@pytest.mark.parametrize("argv, says", [
    (["--optical", "--training"], "one benchmark at a time: --optical, --training were given"),
    (["--admission", "--api"], "one benchmark at a time: --api, --admission were given"),
    (["--job", "10b-data-2dc"], "--job belongs to --training"),
    (["--admission", "--time-limit", "3"],
     "--time-limit belongs to the placement bench (no benchmark flag), not --admission"),
    (["--training", "--admission-seeds", "3", "--admission-requests", "9"],
     "--admission-requests, --admission-seeds belong to --admission, not --training"),
    # given at its default value: taken as not given before (a re-tester's)
    (["--training", "--time-limit", "10"],
     "--time-limit belongs to the placement bench (no benchmark flag), not --training"),
    (["--api", "--api-readers", "--scale", "0"], "--scale belongs to --emulate, not --api"),
    (["--training", "--check-targets"], "--training has no target to miss"),
    (["--check-targets"], "the placement bench has no target to miss"),
    (["--api", "--api-clients", "1,abc"], "client counts from 1 to 256, comma-separated; "
                                          "not 'abc'"),
    (["--api", "--api-clients", "\u0661"], "client counts from 1 to 256"),
])
def test_benchmarks_and_their_options_do_not_mix(argv, says, capsys):
    assert main(["bench", *argv]) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["--max-stretch", "0.5"], "--max-stretch: must be in [1, 100], got 0.5"),
    (["--elephants", "-3"], "--elephants: must be 1 to 100000, got -3"),
    (["--elephants", "100000000"], "--elephants: must be 1 to 100000, got 100000000"),
    (["--time-limit", "-5"], "--time-limit: must be over 0 and at most a day, got -5"),
    (["--admission", "--admission-sites", "2"], "--admission-sites: must be 3 (a ring) to 254"),
    # a hostile tester's: over a fabric's 254 sites, a traceback
    (["--admission", "--admission-sites", "255"], "--admission-sites: must be 3 (a ring) to 254"),
    (["--api", "--api-sites", "300"], "--api-sites: must be 2 to 254 (a fabric's most), got 300"),
    (["--admission", "--admission-requests", "0"], "--admission-requests: must be 1 or more"),
    (["--training", "--steps", "0"], "--steps: must be 1 or more, got 0"),
    (["--optical", "--load", "2"], "--load: must be over 0 and at most 1, got 2"),
    (["--api", "--api-rate", "-1"], "--api-rate: must be 0 or more, and finite, got -1"),
    # a re-tester's: infinities and absurd sizes reached the emulation, or a traceback
    (["--api", "--api-rate", "inf"], "--api-rate: must be 0 or more, and finite, got inf"),
    (["--optical", "--hold-degraded-s", "inf"], "--hold-degraded-s: must be 0 to a day"),
    (["--optical", "--extra-loss-db", "1e9"], "--extra-loss-db: must be 0 to 40 dB"),
    (["--emulate", "two-dc", "--flows", "100000000"], "--flows: must be 0 (the default) to 1000"),
    (["--emulate", "two-dc", "--megabytes", "inf"], "--megabytes: must be 0 (the default)"),
    (["--emulate", "two-dc", "--scale", "2"], "--scale: must be 0 (the default) or 1e-09 to 1"),
    # under a fabric's least: a traceback (a re-tester's)
    (["--emulate", "two-dc", "--scale", "1e-12"], "--scale: must be 0 (the default) or 1e-09"),
])
def test_numbers_out_of_range_are_refused_by_name(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", *argv])
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("sites", [3, 4, 5, 8, 16])
def test_the_generated_ring_joins_two_sites_once_with_a_chord(sites):
    """Three sites gave a chord named as a ring link (a FabricError)."""
    fabric = parse_fabric(large_fabric_yaml(sites, wavelengths=1), "<ring>")
    pairs = [frozenset((d.a, d.b)) for d in fabric.spec.dci_links]
    assert len(pairs) == len(set(pairs)) >= sites


def test_under_json_every_failure_is_an_answer_on_stdout(tmp_path, capsys):
    """A CLI auditor's: `plan`, `train` and `bench` said why they failed on stderr only,
    and a script reading --json got nothing. Now stdout has the shape the client commands'
    and `fault`'s failures have."""
    import json

    from dcilab.cli import main

    bad = tmp_path / "job.yaml"
    bad.write_text("x: [\n")
    for argv, status in ((["plan", str(bad), "--json"], 2),
                         (["train", "two-dc", "--job", str(bad), "--json", "--steps", "0"], 2),
                         (["bench", "--admission", "--optical", "--json"], 2)):
        assert main(argv) == status, argv
        out, err = capsys.readouterr()
        answer = json.loads(out)
        assert answer["ok"] is False and answer["code"] == "USAGE", argv
        assert answer["message"] and answer["message"] in err, argv
    assert main(["plan", str(bad)]) == 2                 # without --json: stderr alone
    out, err = capsys.readouterr()
    assert out == "" and err


def test_train_names_each_option_out_of_range(capsys):
    """An ML-infra tester's: one sentence on all four options, whichever was wrong."""
    assert main(["train", "two-dc", "--job", "405b-data-2dc", "--steps", "0",
                 "--flows-per-pair", "3", "--stretch", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--steps must be >= 1, got 0" in err and "--stretch must be a finite number > 0, " \
        "got -1" in err and "--flows-per-pair" not in err and "--queue-packets" not in err


def test_the_optical_bench_refuses_a_plot_it_cannot_write_before_it_runs(tmp_path, capsys,
                                                                         monkeypatch):
    """A hostile tester's: `--png /nonexist/x.png` ran both emulations (minutes), then
    ended in a traceback at the plot and never printed its report."""
    from dcilab.bench import optical

    def no_emulation(*_args, **_kwargs):
        raise AssertionError("the run started")
    monkeypatch.setattr(optical, "Lab", no_emulation)
    for png, why in ((tmp_path / "nodir" / "x.png", "does not exist"),
                     (tmp_path / "x.jpg", "give a name ending .png")):
        assert main(["bench", "--optical", "--png", str(png), "--json"]) == 2
        out = capsys.readouterr()
        assert why in out.err and json.loads(out.out)["ok"] is False


def test_api_readers_counts_need_the_readers(capsys):
    """A hostile tester's `--api --api-listers 3` ran without readers, unsaid."""
    for given in (["--api-listers", "3"], ["--api-listers", "4"], ["--api-scrapers", "50"]):
        assert main(["bench", "--api", *given]) == 2        # at its default too
        assert "give it too" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["check", ""], ["plan", ""], ["bench", "--faults", ""],
    # output and input files named empty: "`.`: is a directory", or no token at all (a
    # re-tester's)
    ["plan", "10b-data-2dc", "--fabric-out", ""], ["plan", "10b-data-2dc", "--plot", ""],
    ["bench", "--optical", "--png", ""], ["bench", "--faults", "--log", ""],
    ["reservations", "--token-file", ""], ["controller", "--topology", "two-dc", "--state", ""],
    # an empty --gnmi-tls-ca was taken as none: plain gRPC to the transceivers (a reviewer's)
    ["controller", "--topology", "two-dc", "--gnmi", "127.0.0.1:1", "--gnmi-tls-ca", ""],
    ["links", "--tls-ca", ""], ["lab", "--script", ""],
])
def test_an_empty_file_name_is_named_as_such(argv, capsys):
    """A hostile tester's `dcilab check ''` said `.: cannot read: a directory`."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "an empty file name" in capsys.readouterr().err


def test_the_optical_bench_names_an_empty_file_name(capsys):
    assert main(["bench", "--optical", ""]) == 2
    assert "an empty file name" in capsys.readouterr().err


def test_the_fault_bench_refuses_one_file_for_its_plot_and_its_log(tmp_path, capsys):
    path = str(tmp_path / "x.png")
    assert main(["bench", "--faults", "--plot", path, "--log", path]) == 2
    assert "--plot and --log are one file" in capsys.readouterr().err
