"""`dcilab train FABRIC --job JOB`: a training job's sync traffic on the emulation."""
from __future__ import annotations


def register(sub) -> None:
    pass
