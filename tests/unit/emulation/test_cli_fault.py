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
