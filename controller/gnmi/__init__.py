"""gNMI adapter: the controller's client for the fabric's coherent transceivers (grpcio with
the gNMI protos PyPI `pygnmi` ships). Protocol only: it never reads the emulation's memory."""

from .client import GnmiClientError, GnmiSecurity, TransceiverClient, TransceiverReading

__all__ = ["GnmiClientError", "GnmiSecurity", "TransceiverClient", "TransceiverReading"]
