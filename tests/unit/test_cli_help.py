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
