"""Every `dcilab` command's `--help` renders: argparse formats help texts with %, so a
stray percent sign in one breaks only that command's help, at the moment a user asks."""

from __future__ import annotations

import argparse

from dcilab.cli import build_parser


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _subparsers(sub)


def test_every_command_has_a_help_that_renders():
    parser = build_parser()
    commands = list(_subparsers(parser))
    assert len(commands) >= 10 and "dcilab" in parser.format_help()
    for sub in commands:
        text = sub.format_help()
        assert text.startswith("usage:") and "%(" not in text, sub.prog



def _commands(parser: argparse.ArgumentParser) -> set[str]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def test_each_command_parses_with_only_its_own_module_loaded():
    """`dcilab links` loads the client module alone: the map of the client's commands must
    name every command the client registers, and each command its module."""
    from dcilab.cli import CLIENT_MODULE_OF
    every = _commands(build_parser())
    assert set(CLIENT_MODULE_OF) == _commands(build_parser(only="client"))
    for name in every:
        assert name in _commands(build_parser(only=CLIENT_MODULE_OF.get(name, name))), name


def test_version_answers_as_argparse_would(capsys):
    from dcilab import __version__
    from dcilab.cli import main
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"dcilab {__version__}\n"


def test_a_refused_controller_option_loads_neither_grpc_nor_the_controller():
    # Refusals answer at once (0.7 s, was 3 s): options are checked before the fabric's
    # GNPy run and before gRPC, os-ken and the MILP solver load.
    import subprocess
    import sys
    code = ("import sys; from dcilab.cli import main; "
            "rc = main(['controller', '--topology', 'two-dc', '--tls-cert', '/etc/hostname']); "
            "print(rc, *(m in sys.modules for m in ('grpc', 'os_ken', 'gnpy', 'scipy.optimize')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["2", "False", "False", "False", "False"], done
    assert "--tls-cert and --tls-key go together" in done.stderr
