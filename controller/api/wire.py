"""Protobuf's well-known types from Python figures: light (no server or domain code), for
the client as for the server."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration


def duration(seconds: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d
