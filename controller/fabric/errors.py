"""One error type for everything wrong with a fabric file (as faucet has one for its config)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FabricIssue:
    """One thing wrong with a fabric file: where (a field path such as `dci_links[1].a`) and what."""

    path: str
    message: str
    line: int | None = None

    def to_dict(self) -> dict:
        out = {"path": self.path, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class FabricError(ValueError):
    """A fabric file that cannot be used; carries every issue found, not just the first."""

    def __init__(self, source: str, issues: list[FabricIssue]):
        self.source = source
        self.issues = list(issues)
        super().__init__("\n".join(issue.format(source) for issue in self.issues))
