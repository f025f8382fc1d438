"""`dcilab fault` argument parsing (no emulation needed)."""

from __future__ import annotations

import pytest

from dcilab.cli import build_parser


def parse(*argv):
    return build_parser().parse_args(["fault", *argv])


def test_operations_and_their_arguments():
    args = parse("dark", "dc1-dc2-a.w1", "--end", "dc1")
    assert (args.op, args.target, args.end, args.json) == ("dark", "dc1-dc2-a.w1", "dc1", False)
    args = parse("flap", "dc1-dc2-a", "--period", "0.5", "--count", "3")
    assert (args.period, args.count, args.foreground) == (0.5, 3, False)
    assert parse("restore").target is None
    assert parse("list", "--json").json is True         # --json after the operation
    assert parse("--json", "list").json is True         # and before it


@pytest.mark.parametrize("argv", [
    ["dark", "dc1-dc2-a.w1"],                 # --end is required
    ["flap", "dc1-dc2-a", "--period", "0"],   # a period must be positive
    ["flap", "dc1-dc2-a", "--period", "inf"],  # ... and at most a day (sleep(inf) raised)
    ["flap", "dc1-dc2-a", "--period", "1e300"],
    ["flap", "dc1-dc2-a", "--period", "1", "--count", "0"],
    ["flap", "dc1-dc2-a"],
    ["teleport", "x"],
])
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_fabric_names_the_run_acted_on_and_another_is_refused(tmp_path, monkeypatch, capsys):
    """An outside tester's fault loop, its own lab not up yet, restored every fault of
    another user's run on the same machine: --fabric refuses another's run."""
    from types import SimpleNamespace

    from dcilab.cli import fault as cli_fault
    path = tmp_path / "ring.yaml"
    path.write_text("name: ring\n")
    running = SimpleNamespace(fabric=SimpleNamespace(name="ring"), fabric_path=str(path),
                              owner_pid=4242, list=lambda: [], restore=lambda target: [])
    monkeypatch.setattr(cli_fault.Faults, "attach", classmethod(lambda cls: running))
    monkeypatch.setattr(cli_fault.os, "geteuid", lambda: 0)
    assert cli_fault.run(parse("restore", "--fabric", "two-dc")) == 1
    err = capsys.readouterr().err
    assert "is of fabric 'ring'" in err and "pid 4242" in err and "nothing done" in err
    assert "no file of that name" not in err                  # a name, not a path
    # a relative path given from another directory (an outside tester): said so
    monkeypatch.chdir(tmp_path.parent)
    assert cli_fault.run(parse("restore", "--fabric", "ring.yaml")) == 1
    assert f"there is no file of that name in {tmp_path.parent}" in capsys.readouterr().err
    assert cli_fault.run(parse("--fabric", "ring", "list")) == 0
    assert cli_fault.run(parse("restore", "--fabric", str(path))) == 0
    assert "nothing to restore" in capsys.readouterr().out
    assert cli_fault.run(parse("list")) == 0                # without it: whatever runs
    assert cli_fault.run(parse("restore", "--fabric", "")) == 2     # "$FABRIC" unset
    assert "--fabric is empty" in capsys.readouterr().err


def test_a_json_error_has_the_client_commands_shape(monkeypatch, capsys):
    import json

    from dcilab.cli import fault as cli_fault
    from dcilab.emulation.faults import FaultError

    def nothing_runs(cls):
        raise FaultError("no dcilab emulation is running")
    monkeypatch.setattr(cli_fault.Faults, "attach", classmethod(nothing_runs))
    monkeypatch.setattr(cli_fault.os, "geteuid", lambda: 0)
    assert cli_fault.run(parse("list", "--json")) == 1
    assert json.loads(capsys.readouterr().out) == {
        "ok": False, "code": "FAILED", "message": "no dcilab emulation is running"}
