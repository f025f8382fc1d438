"""Rate adaptation over gNMI: what the transceivers report in, mode changes out.

Every `interval_s` it turns the gNMI client's latest readings into observations (both
ends' mode, the worse end's OSNR, link state), asks the pure `core.adaptation.Adapter`
what to do, and does it: drains and resumes go to the core through the service (under its
lock, messages sent at once), mode changes go to the transceivers with gNMI Set. The
controller knows the transceivers only through the protocol.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..core.adaptation import Adapter, Change, Drain, Observation, Policy, Resume, SetMode

log = logging.getLogger("dcilab.adaptation")

INTERVAL_S = 0.5


class RateAdaptation:
    """Runs an `Adapter` on a gNMI `TransceiverClient`'s readings for one service."""

    def __init__(self, service, client, policy: Policy = Policy(), interval_s: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        self.service = service
        self.client = client
        self.adapter = Adapter(service.fabric.catalog, policy)
        self.interval_s = interval_s
        self.clock = clock
        self._wavelengths = {l.wavelength: l.line_system or l.name
                             for l in service.fabric.wavelengths()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def changes(self) -> list[Change]:
        return list(self.adapter.changes)

    def observations(self) -> list[Observation]:
        ends: dict[str, list] = {}
        for (wavelength, _), reading in self.client.readings().items():
            if wavelength in self._wavelengths:
                ends.setdefault(wavelength, []).append(reading)
        # a wavelength is back only once the switches see it too (carrier and BFD
        # liveness on both gateway ports), not just its transceivers
        with self.service.lock:
            ports_up = {l.wavelength: self.service.core.engine.link_up(l.name)
                        for l in self.service.fabric.wavelengths()}
        out = []
        for wavelength, readings in sorted(ends.items()):
            ids = {r.mode_id for r in readings}
            named = self.client.mode_name(next(iter(ids))) if len(ids) == 1 else None
            if len(readings) < 2 or None in ids:
                named = None
            osnrs = [r.osnr_db for r in readings if r.osnr_db is not None]
            module = named[0] if named else self._module_of(readings)
            out.append(Observation(wavelength, module, named[1] if named else None,
                                   min(osnrs) if osnrs else None,
                                   len(readings) >= 2 and all(r.link_up for r in readings)
                                   and ports_up.get(wavelength, False),
                                   self._wavelengths[wavelength]))
        return out

    def _module_of(self, readings) -> str | None:
        for r in readings:
            named = self.client.mode_name(r.mode_id)
            if named:
                return named[0]
        return None

    def step(self) -> None:
        now = self.clock()
        for decision in self.adapter.observe(now, self.observations()):
            if isinstance(decision, Drain):
                log.warning("wavelength %s: %s; draining it to change %s -> %s",
                            decision.wavelength, decision.reason, decision.from_mode,
                            decision.to_mode)
                self.service.apply(lambda core, d=decision: core.wavelength_service(
                    d.wavelength, f"changing mode {d.from_mode} -> {d.to_mode}: {d.reason}"))
            elif isinstance(decision, SetMode):
                self._set_mode(now, decision)
            elif isinstance(decision, Resume):
                self._resume(decision)

    def _set_mode(self, now: float, decision: SetMode) -> None:
        from ..gnmi.client import GnmiClientError
        try:
            self.client.set_mode(decision.wavelength, decision.mode)
        except GnmiClientError as exc:
            log.error("wavelength %s: mode change to %s refused: %s; back in use as it is",
                      decision.wavelength, decision.mode, exc)
            current = next((o.mode for o in self.observations()
                            if o.wavelength == decision.wavelength), None)
            resume = self.adapter.set_mode_failed(now, decision.wavelength, current)
            if resume is not None:
                self._resume(resume)

    def _resume(self, decision: Resume) -> None:
        log.info("wavelength %s runs %s: back in use", decision.wavelength, decision.mode)
        self.service.apply(lambda core: core.wavelength_service(decision.wavelength, None,
                                                                decision.rate_gbps))

    def start(self) -> "RateAdaptation":
        self._thread = threading.Thread(target=self._run, name="rate-adaptation", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except Exception:                   # keep adapting; say what went wrong
                log.exception("rate adaptation step failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
