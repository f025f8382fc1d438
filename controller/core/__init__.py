"""The controller's state machine: events in, OpenFlow messages out (no I/O, no clock)."""

from .controller import FabricController, Outbox
from .rules import compile_fabric

__all__ = ["FabricController", "Outbox", "compile_fabric"]
