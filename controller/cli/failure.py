"""How a command says it failed: a line on stderr, and under `--json` the one shape every
command's failure has on stdout, so a script reads an answer either way (a CLI auditor's:
`plan`, `train` and `bench` printed nothing there)."""

from __future__ import annotations

import json
import sys

USAGE = "USAGE"          # exit 2: what was asked cannot be done as asked
FAILED = "FAILED"        # exit 1: it was tried, and did not work


def json_failure(code: str, message: str) -> None:
    print(json.dumps({"ok": False, "code": code, "message": message}))


def fail(args, message: str, status: int = 2) -> int:
    """Say `message` (and under --json, on stdout too); returns `status` to exit with."""
    print(message, file=sys.stderr)
    if getattr(args, "json", False):
        json_failure(USAGE if status == 2 else FAILED, message)
    return status
