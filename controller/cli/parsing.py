"""argparse, naming a mistyped option and the one it may have meant.

Plain argparse said only "the following arguments are required: --gbps" for `reserve A B
--gbs 10`, and for `bench --admision` the top-level usage with "unrecognized arguments"
(a new user's typos, found by an outside tester): the option typed was never named."""

from __future__ import annotations

import argparse
import difflib
import sys


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors name the options it does not know, each with the
    closest one it does; its commands' parsers (add_subparsers) refuse what they do not
    know themselves, with their own usage."""

    _given: list[str] = []

    def __init__(self, *args, **kwargs):
        # No abbreviations: `bench --fault` ran the 200 s fault bench on the emulation as
        # `--faults` (a re-tester's typo), and a new option would break a prefix in use.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", CommandParser)
        return super().add_subparsers(**kwargs)

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def unknown_options(self) -> list[str]:
        """The options given that no option of this parser is: before its command, for a
        parser of commands (what follows is the command's to judge)."""
        out = []
        for token in self._given:
            if token == "--" or (self._subparsers is not None and not token.startswith("-")):
                break
            if (not token.startswith("-") or token == "-"
                    or self._negative_number_matcher.match(token)):
                continue
            option = token.split("=", 1)[0]
            if option not in self._option_string_actions:
                out.append(option)
        return out

    def error(self, message: str):
        unknown = self.unknown_options()
        if unknown:
            options = [o for o in self._option_string_actions if o.startswith("--")]
            named = []
            for option in unknown:
                close = difflib.get_close_matches(option, options, n=1, cutoff=0.6)
                named.append(f"{option} (did you mean {close[0]}?)" if close else option)
            said = f"unknown option{'s' if len(named) > 1 else ''} {', '.join(named)}"
            message = said if message.startswith("unrecognized arguments") else \
                f"{said}; {message}"
        super().error(message)


class CommandParser(Parser):
    """A command's parser: what it does not know is refused here, under its own usage,
    rather than handed up to `dcilab`'s."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras
