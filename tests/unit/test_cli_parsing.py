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


def test_an_abbreviation_is_a_mistake_named_with_the_option_it_may_mean(capsys):
    """A re-tester's `bench --fault` ran the 200 s fault bench on the emulation."""
    err = _error(["bench", "--fault"], capsys)
    assert err.endswith("dcilab bench: error: unknown option --fault (did you mean "
                        "--faults?)\n"), err


def test_values_and_names_after_dashes_are_not_mistakes():
    parser = build_parser(only="client")
    args = parser.parse_args(["reserve", "a", "b", "--gbps", "10", "--max-latency-ms=3"])
    assert (args.gbps, args.max_latency_ms) == (10.0, 3.0)
    parser = build_parser(only="check")
    assert parser.parse_args(["check", "--", "-odd-name.yaml"]).file is not None


def test_a_top_level_mistake_judges_only_what_comes_before_the_command(capsys):
    err = _error(["--verbos", "check", "two-dc", "--json"], capsys)
    assert err.endswith("dcilab: error: unknown option --verbos (did you mean "
                        "--version?)\n"), err
