"""argparse types that check a number's range and say what was expected."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable


def checked(convert: Callable[[str], float], accept: Callable[[float], bool], expected: str,
            must: str) -> Callable[[str], float]:
    """An argparse type: `convert(text)`, else "expected <expected>"; then `accept(value)`
    (False for NaN too, when written as a comparison), else "<must>, got <text>"."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{must}, got {text}")
        return value
    return parse


POSITIVE_SECONDS = checked(float, lambda v: 0 < v <= 86_400, "a number of seconds",
                           "must be over 0 and at most a day")
AT_LEAST_ONE = checked(int, lambda v: v >= 1, "a whole number", "must be 1 or more")
NON_NEGATIVE = checked(int, lambda v: v >= 0, "a whole number", "must be 0 or more")
NON_NEGATIVE_NUMBER = checked(float, lambda v: 0 <= v < math.inf, "a number",
                              "must be 0 or more, and finite")
WHOLE_SECONDS = checked(int, lambda v: 1 <= v <= 86_400, "a whole number of seconds",
                        "must be 1 to a day (86400): iperf3 runs whole seconds")
SECONDS = checked(float, lambda v: 0 <= v <= 86_400, "a number of seconds",
                  "must be 0 to a day (86400)")


def file_path(text: str) -> Path:
    """A file name: Path("") is ".", so an empty one was said to be a directory (and an
    empty --token-file taken as none given: a re-tester's)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty file name")
    return Path(text)


def file_name(text: str) -> str:
    """`file_path`'s check, the name kept as text (for options read as strings)."""
    return str(file_path(text))
