"""The lint and the layers of DESIGN.md hold: ruff and import-linter, configured in
pyproject.toml, pass on the whole tree (`make lint` runs the same two)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff():
    done = _run(str(BIN / "ruff"), "check", "--no-cache", "controller", "tests", "tools")
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_contracts():
    done = _run(str(BIN / "lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert "0 broken" in done.stdout
