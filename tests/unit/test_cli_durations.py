"""iperf3 runs whole seconds: `-t 0.5` is 0, its "forever" (a reviewer's `demo --duration
0.5` waited 30 s, then ended in a traceback). Refused as parsed, exit 2."""

from __future__ import annotations

import types

import pytest

from dcilab.cli import main
from dcilab.cli.lab import iperf_command
from dcilab.resources import topology_path


@pytest.mark.parametrize("value", ["0.5", "0", "2.5", "-1", "nan", "1e9"])
def test_demo_duration_is_whole_seconds_from_one_to_a_day(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "two-dc", "--duration", value])
    assert exc.value.code == 2
    assert "--duration" in capsys.readouterr().err


def test_the_lab_prompts_iperf_refuses_a_fraction_of_a_second(capsys):
    from dcilab.fabric import load_fabric

    lab = types.SimpleNamespace(fabric=load_fabric(topology_path("two-dc")))
    assert iperf_command(lab)("dc1-h1 dc2-h1 -t 0.5") == 2
    assert "whole number of seconds" in capsys.readouterr().err


def test_the_lab_prompts_iperf_refuses_a_host_to_itself(capsys):
    from dcilab.fabric import load_fabric

    lab = types.SimpleNamespace(fabric=load_fabric(topology_path("two-dc")))
    assert iperf_command(lab)("dc1-h1 dc1-h1 -t 1") == 2       # loopback read as DCI
    assert "to itself crosses no link" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--hold", "nan"], ["--hold", "-5"], ["--hold", "inf"],
                                  ["--gnmi", "127.0.0.1:0", "--reconfiguration-s", "inf"]])
def test_demo_holds_and_reconfigurations_are_bounded(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "two-dc", *argv])
    assert exc.value.code == 2
