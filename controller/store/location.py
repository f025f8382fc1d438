"""Where a controller keeps its state by default (apart from the store, so that parsing the
controller's options loads no SQLite code or controller)."""

from __future__ import annotations

import os
from pathlib import Path


def default_state_path(fabric: str | None = None) -> Path:
    """$XDG_DATA_HOME/dcilab/<fabric>.db, or ~/.local/share/dcilab/<fabric>.db: one file
    per fabric, so two fabrics' controllers never meet in one by default. Without a fabric
    name, state.db."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "dcilab" / (f"{fabric}.db" if fabric else "state.db")
