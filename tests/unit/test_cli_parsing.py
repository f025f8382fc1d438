"""A mistyped option is named, with the one it may have meant, under its command's usage
(plain argparse named only the required option it then missed, or gave `dcilab`'s usage)."""

from __future__ import annotations

import pytest

from dcilab.cli import build_parser


def _error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        build_parser(only=argv[0]).parse_args(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv, usage, said", [
    (["bench", "--admision"], "usage: dcilab bench",
     "dcilab bench: error: unknown option --admision (did you mean --admission?)\n"),
    (["controller", "--topolgy", "two-dc"], "usage: dcilab controller",
     "dcilab controller: error: unknown option --topolgy (did you mean --topology?); "
     "the following arguments are required: --topology\n"),
    (["check", "two-dc", "--jsn=1", "--whatever"], "usage: dcilab check",
     "dcilab check: error: unknown options --jsn (did you mean --json?), --whatever\n"),
    (["check", "two-dc", "extra"], "usage: dcilab check",
     "dcilab check: error: unrecognized arguments: extra\n"),
])
def test_a_mistyped_option_is_named_with_what_it_may_mean(argv, usage, said, capsys):
    err = _error(argv, capsys)
    assert err.startswith(usage), err
    assert err.endswith(said), err


def test_abbreviations_negative_numbers_and_values_after_dashes_are_not_mistakes():
    parser = build_parser(only="client")
    args = parser.parse_args(["reserve", "a", "b", "--gbp", "10", "--max-latency", "3"])
    assert (args.gbps, args.max_latency_ms) == (10.0, 3.0)
    parser = build_parser(only="check")
    assert parser.parse_args(["check", "--", "-odd-name.yaml"]).file is not None
