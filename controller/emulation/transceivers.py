"""The transceiver agent of an emulation: optical state, its gNMI server, its clock.

A background thread ticks the optical state (ramps move on, readings are recomputed)
every `tick_s` and applies each wavelength's effect to the data plane. It runs inside
the emulation's process, so a ramp keeps going between fault commands and `restore`
(gNMI Set delete, or `OpticalState.restore`) stops it at once.
"""

from __future__ import annotations

import logging
import threading

from ..fabric import Fabric
from .cleanup import FAULTS_STATE
from .faults import FaultBook, optical_view
from .gnmi_server import serve_gnmi
from .optical_state import DEFAULT_RECONFIGURATION_S, OpticalState
from .wavelength_effects import WavelengthEffects

log = logging.getLogger("dcilab.emulation")

TICK_S = 0.5


class TransceiverAgent:
    """Optical state + gNMI + data plane for one fabric. `apply_effects=False` serves gNMI
    on the state alone (no emulation needed)."""

    def __init__(self, fabric: Fabric, address: str = "127.0.0.1:0",
                 reconfiguration_s: float = DEFAULT_RECONFIGURATION_S,
                 apply_effects: bool = True, tick_s: float = TICK_S,
                 faults_run: float | None = None, faults_path=FAULTS_STATE):
        self.fabric = fabric
        # The injected faults of this emulation run (`dcilab fault`, another process):
        # a cut or a dark transceiver shows in what the transceivers report.
        self._faults = FaultBook(faults_path, faults_run) if faults_run is not None else None
        self._faults_seen: float | None = None
        self.state = OpticalState(fabric, reconfiguration_s=reconfiguration_s)
        self.address = address
        self.tick_s = tick_s
        self.effects = WavelengthEffects(fabric) if apply_effects else None
        self.server = None
        self.port = 0
        self._server_stop: threading.Event | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def gnmi_address(self) -> str:
        return f"{self.address.rsplit(':', 1)[0]}:{self.port}"

    def start(self) -> "TransceiverAgent":
        self.server, self.port, self._server_stop = serve_gnmi(self.state, self.address)
        self._step()
        self._thread = threading.Thread(target=self._run, name="transceivers", daemon=True)
        self._thread.start()
        return self

    def _step(self) -> None:
        self._follow_faults()
        self.state.tick()
        if self.effects is not None:
            for wavelength, effect in sorted(self.state.effects().items()):
                self.effects.apply(wavelength, effect)

    def _follow_faults(self) -> None:
        if self._faults is None:
            return
        try:
            changed = self._faults.path.stat().st_mtime_ns
        except FileNotFoundError:
            changed = None
        if changed == self._faults_seen:
            return
        self._faults_seen = changed
        self.state.set_faults(*optical_view(self.fabric, self._faults.peek()))

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self._step()
            except Exception:                      # keep serving; say what went wrong
                log.exception("transceiver agent tick failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.server is not None:
            self._server_stop.set()
            self.server.stop(grace=1).wait(3)
            self.server = None
        if self.effects is not None:
            self.effects.close()

    def __enter__(self) -> "TransceiverAgent":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
