"""One error type for everything wrong with a fabric file (as faucet has one for its config)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A file of 100 000 broken entries must not print 600 000 lines: the first ones fix the file.
MAX_ISSUES = 50
# Input quoted in a message: enough to recognise it, never a megabyte of it.
# (a name is at most 64 characters, so a valid one is never cut; an optics message with
# its checked suggestions runs to about 400)
MAX_QUOTED_CHARS = 64
MAX_MESSAGE_CHARS = 1000
MAX_PATH_CHARS = 200
# A quoted run longer than a shortened one (the limit and "…"): shortening is idempotent,
# as an issue is made again from another one.
_QUOTED = re.compile(r"""'[^'\n]{%d,}'|"[^"\n]{%d,}\"""" % ((MAX_QUOTED_CHARS + 2,) * 2))


def shorten(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """`text` itself, or its first `limit` characters and how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _short_quotes(message: str) -> str:
    """Every long quoted run in `message` cut short ('QQQ…' (1000000 characters)), then
    the whole message."""
    message = _QUOTED.sub(lambda m: f"{m[0][:MAX_QUOTED_CHARS + 1]}…{m[0][0]} "
                                    f"({len(m[0]) - 2} characters)", message)
    return shorten(message, MAX_MESSAGE_CHARS)


@dataclass(frozen=True)
class FabricIssue:
    """One thing wrong with a fabric file: where (a field path such as `dci_links[1].a`) and what.

    Path and message are cut short here, the one place every issue is made, so no input
    (an unknown 1 MB key, module name or YAML tag) is echoed whole."""

    path: str
    message: str
    line: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", shorten(self.path, MAX_PATH_CHARS))
        object.__setattr__(self, "message", _short_quotes(self.message))

    def to_dict(self) -> dict:
        out = {"path": self.path, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class FabricError(ValueError):
    """A fabric file that cannot be used; carries every issue found, not just the first:
    the first MAX_ISSUES of them and, past those, how many more (`unlisted`: problems
    counted but never made into issues)."""

    def __init__(self, source: str, issues: list[FabricIssue], unlisted: int = 0):
        self.source = source
        issues = list(issues)
        more = len(issues) - MAX_ISSUES + unlisted if len(issues) > MAX_ISSUES else unlisted
        self.issues = issues[:MAX_ISSUES]
        if more > 0:
            self.issues.append(FabricIssue(
                "", f"… and {more} more problems (the first {len(self.issues)} are listed)"))
        super().__init__("\n".join(issue.format(source) for issue in self.issues))
