"""Degrade and restore a running emulation's line systems, from any process, over gNMI.

The optical state lives in the emulation's process (its transceiver agent), which ramps
values on its own clock; this module is what a fault command calls: it finds the agent's
gNMI address in the emulation manifest (/run/dcilab/emulation.json) and sets the
line-system knobs (see openconfig.py). `restore` stops any ramp at once.

`dcilab fault degrade LINK --span N --extra-loss-db X [--ramp-s S]` (or `--amp N --nf-db X`,
`--launch-power-dbm P`) calls `degrade` through `Faults.degrade`, which records it with
the other faults; `dcilab fault restore LINK` (or `restore` alone) calls `restore`.
"""

from __future__ import annotations

import json

import grpc
from pygnmi.spec.v080 import gnmi_pb2, gnmi_pb2_grpc

from .cleanup import Manifest


class OpticalFaultError(RuntimeError):
    """`bad_input`: the knobs given are wrong (a span the line lacks, a figure out of
    range), not the emulation's state."""

    def __init__(self, message: str, bad_input: bool = False):
        super().__init__(message)
        self.bad_input = bad_input


def running_gnmi_address() -> str:
    """The gNMI address of the running emulation's transceivers."""
    manifest = Manifest.load()
    if manifest is None:
        raise OpticalFaultError("no emulation is running (no manifest)")
    address = manifest.services.get("gnmi")
    if not address:
        raise OpticalFaultError(f"the running emulation of {manifest.fabric!r} does not serve "
                                "its transceivers over gNMI (start it with gNMI enabled)")
    return address


def _path(*elems: tuple[str, dict]) -> gnmi_pb2.Path:
    return gnmi_pb2.Path(elem=[gnmi_pb2.PathElem(name=n, key={k: str(v) for k, v in keys.items()})
                               for n, keys in elems])


def _set(address: str, request: gnmi_pb2.SetRequest, timeout_s: float) -> None:
    with grpc.insecure_channel(address) as channel:
        try:
            gnmi_pb2_grpc.gNMIStub(channel).Set(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise OpticalFaultError(f"{exc.details()} ({exc.code().name}, gNMI {address})",
                                    exc.code() == grpc.StatusCode.INVALID_ARGUMENT) from None


def degrade(line_system: str, *, span: int | None = None, extra_loss_db: float | None = None,
            amplifier: int | None = None, nf_db: float | None = None,
            launch_power_dbm: float | None = None, ramp_s: float = 0.0,
            address: str | None = None, timeout_s: float = 5.0) -> None:
    """Set one or more knobs of `line_system`, each reached linearly over `ramp_s` s."""
    line = ("line-system", {"name": line_system})
    knobs = []
    if (span is None) != (extra_loss_db is None):
        raise OpticalFaultError("--span and --extra-loss-db go together", bad_input=True)
    if (amplifier is None) != (nf_db is None):
        raise OpticalFaultError("--amp and --nf-db go together", bad_input=True)
    if span is not None:
        knobs.append((_path(("line-systems", {}), line, ("spans", {}), ("span", {"index": span}),
                            ("config", {}), ("extra-loss", {})), extra_loss_db))
    if amplifier is not None:
        knobs.append((_path(("line-systems", {}), line, ("amplifiers", {}),
                            ("amplifier", {"index": amplifier}), ("config", {}),
                            ("noise-figure", {})), nf_db))
    if launch_power_dbm is not None:
        knobs.append((_path(("line-systems", {}), line, ("config", {}), ("launch-power", {})),
                      launch_power_dbm))
    if not knobs:
        raise OpticalFaultError("nothing to degrade: give --span/--extra-loss-db, "
                                "--amp/--nf-db or a launch power", bad_input=True)
    updates = [gnmi_pb2.Update(path=path, val=gnmi_pb2.TypedValue(json_val=json.dumps(
        {"value": value, "ramp-s": ramp_s}).encode())) for path, value in knobs]
    _set(address or running_gnmi_address(), gnmi_pb2.SetRequest(update=updates), timeout_s)


def restore(line_system: str, address: str | None = None, timeout_s: float = 5.0) -> None:
    """Put `line_system` back as designed, stopping any ramp on it."""
    path = _path(("line-systems", {}), ("line-system", {"name": line_system}))
    _set(address or running_gnmi_address(), gnmi_pb2.SetRequest(delete=[path]), timeout_s)
