"""The controller's state machine: events in, OpenFlow messages out (no I/O, no clock)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .controller import FabricController, Outbox
    from .rules import compile_fabric

__all__ = ["FabricController", "Outbox", "compile_fabric"]

# Loaded on first use: the light modules here (errors, adaptation's policy) are imported by
# the command line to parse options, and the controller brings os-ken and the MILP solver.
_HOME = {"FabricController": ".controller", "Outbox": ".controller", "compile_fabric": ".rules"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name], __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
