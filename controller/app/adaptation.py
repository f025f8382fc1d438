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

from ..core.adaptation import (DEFAULT_MISMATCH_S, Adapter, Change, Drain, LineLimits,
                               Observation, Phase,
                               Policy, Resume, SetMode)
from ..fabric.model import optical_line
from ..optics import OpticsError

log = logging.getLogger("dcilab.adaptation")

INTERVAL_S = 0.5


def observe(service, client, wavelengths: dict[str, str]) -> list[Observation]:
    """What both ends of each wavelength report (`wavelengths`: wavelength -> its line
    system), from the gNMI client's latest readings."""
    ends: dict[str, list] = {}
    for (wavelength, _), reading in client.readings().items():
        if wavelength in wavelengths:
            ends.setdefault(wavelength, []).append(reading)
    # a wavelength is back only once the switches see it too (carrier and BFD
    # liveness on both gateway ports), not just its transceivers
    with service.lock:
        ports_up = {l.wavelength: service.core.engine.link_up(l.name)
                    for l in service.fabric.wavelengths()}
    out = []
    for wavelength, readings in sorted(ends.items()):
        ids = {r.mode_id for r in readings}
        named = client.mode_name(next(iter(ids))) if len(ids) == 1 else None
        if len(readings) < 2 or None in ids:
            named = None
        osnrs = [r.osnr_db for r in readings if r.osnr_db is not None]
        module = named[0] if named else _module_of(client, readings)
        out.append(Observation(wavelength, module, named[1] if named else None,
                               min(osnrs) if osnrs else None,
                               len(readings) >= 2 and all(r.link_up for r in readings)
                               and ports_up.get(wavelength, False),
                               wavelengths[wavelength], _end_modes(client, readings)))
    return out


def _end_modes(client, readings) -> tuple[str, ...]:
    """Each end's mode, where two ends of one module report different modes; else ()."""
    named = [client.mode_name(r.mode_id) for r in readings]
    if (len(named) < 2 or None in named or len({n[0] for n in named}) > 1
            or len({n[1] for n in named}) < 2):
        return ()
    return tuple(sorted({n[1] for n in named}))


def _module_of(client, readings) -> str | None:
    for r in readings:
        named = client.mode_name(r.mode_id)
        if named:
            return named[0]
    return None


def _line_systems(fabric) -> dict[str, str]:
    return {l.wavelength: l.line_system or l.name for l in fabric.wavelengths()}


def line_limits(fabric) -> dict[str, LineLimits]:
    """What the fabric file holds each wavelength's modes to: its line's dispersion, the
    line's design margin, and the mode the file forces, if any."""
    specs = {d.name: d for d in fabric.spec.dci_links}
    out = {}
    for link in fabric.wavelengths():
        spec = specs[link.line_system]
        out[link.wavelength] = LineLimits(optical_line(spec).dispersion_ps_nm,
                                          spec.margin_db, spec.mode)
    return out


class _Periodic:
    """`step()` every `interval_s` on a thread of its own, until `stop()`; a step that
    fails is logged (as `what`), and the next one runs."""

    what = "step"

    def __init__(self, service, client, interval_s: float):
        self.service = service
        self.client = client
        self.interval_s = interval_s
        self._wavelengths = _line_systems(service.fabric)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        raise NotImplementedError

    def start(self):
        self._thread = threading.Thread(target=self._run, name=self.what, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except Exception:                   # keep going; say what went wrong
                log.exception("%s failed", self.what)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class RateAdaptation(_Periodic):
    """Runs an `Adapter` on a gNMI `TransceiverClient`'s readings for one service."""

    what = "rate adaptation"

    def __init__(self, service, client, policy: Policy = Policy(), interval_s: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(service, client, interval_s)
        self.adapter = Adapter(service.fabric.catalog, policy,
                               limits=line_limits(service.fabric))
        self.clock = clock
        self._waiting: dict[str, str] = {}     # wavelength -> why its step up waits (said once)
        # A mode it did not set (an operator's gNMI Set, or found at start) is followed
        # too, on wavelengths it is not changing itself: else capacity stayed at the old
        # rate, and admission overbooked a wavelength its transceivers had slowed.
        self._follower = ModeFollower(service, client, interval_s)

    @property
    def changes(self) -> list[Change]:
        return list(self.adapter.changes)

    def observations(self) -> list[Observation]:
        return observe(self.service, self.client, self._wavelengths)

    def _is_up(self, drain: Drain) -> bool:
        module = self.service.fabric.catalog.module(
            self.service.fabric.line_systems[self._wavelengths[drain.wavelength]].module)
        # ends that disagreed (from "a/b") are dark: nothing on them to find room for
        return (drain.from_mode in module.mode_names
                and module.mode(drain.to_mode).rate_gbps > module.mode(drain.from_mode).rate_gbps)

    def step(self) -> None:
        now = self.clock()
        observations = self.observations()
        self._follower.follow([o for o in observations
                               if self.adapter.phase(o.wavelength) == Phase.IN_SERVICE])
        for decision in self.adapter.observe(now, observations):
            if isinstance(decision, Drain):
                self._drain(decision)
            elif isinstance(decision, SetMode):
                self._set_mode(now, decision)
            elif isinstance(decision, Resume):
                self._resume(decision)

    def _drain(self, decision: Drain) -> None:
        """Drain the wavelength for its mode change; a step up only if what it carries
        has room elsewhere, checked in the same step as the drain (a request admitted in
        between could fill that room, and the drain would degrade what it carries)."""
        up, why = self._is_up(decision), ""

        def drain(core):
            nonlocal why
            why = core.drain_room(decision.wavelength) if up else ""
            if why:
                return None
            return core.wavelength_service(
                decision.wavelength, f"changing mode {decision.from_mode} -> "
                f"{decision.to_mode}: {decision.reason}")
        self.service.apply(drain)
        if why:
            self.adapter.postpone(decision.wavelength)
            if self._waiting.get(decision.wavelength) != why:
                log.info("wavelength %s could run %s, not yet: %s",
                         decision.wavelength, decision.to_mode, why)
            self._waiting[decision.wavelength] = why
            return
        self._waiting.pop(decision.wavelength, None)
        (log.info if up else log.warning)(
            "wavelength %s: %s; draining it to change %s -> %s", decision.wavelength,
            decision.reason, decision.from_mode, decision.to_mode)

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
                                                                decision.rate_gbps,
                                                                decision.mode))



class ModeFollower(_Periodic):
    """Without rate adaptation, the controller still follows the mode each wavelength's
    transceivers run (both ends agreeing): set over gNMI by an operator, or found at start
    unlike the plan. Capacity, admission, `dcilab links` and the metrics then use that
    mode's rate, and reservations it can no longer carry move off. Seen while the
    wavelength is still dark from the change, so it comes back at its new capacity."""

    what = "following the transceivers' modes"

    def __init__(self, service, client, interval_s: float = INTERVAL_S,
                 mismatch_s: float = DEFAULT_MISMATCH_S):
        super().__init__(service, client, interval_s)
        self.mismatch_s = mismatch_s
        self._links = {l.wavelength: l for l in service.fabric.wavelengths()}
        self._unknown: set[tuple[str, str, str]] = set()     # said once each
        self._disagree: dict[str, float | None] = {}   # ends disagree since; None: said

    def step(self) -> None:
        observations = observe(self.service, self.client, self._wavelengths)
        self._say_disagreements(observations, time.monotonic())
        self.follow(observations)

    def _say_disagreements(self, observations: list[Observation], now: float) -> None:
        """Without rate adaptation nothing sets a wavelength's modes: ends left running
        different modes keep it dark until someone sets them alike, so say so, once."""
        for o in observations:
            if not o.end_modes:
                self._disagree.pop(o.wavelength, None)
                continue
            since = self._disagree.setdefault(o.wavelength, now)
            if since is not None and now - since >= self.mismatch_s:
                self._disagree[o.wavelength] = None
                log.warning("wavelength %s: its transceivers run different modes (%s) and it "
                            "is dark until they agree: set both ends to one mode (with "
                            "--adapt the controller sets them itself)", o.wavelength,
                            " and ".join(o.end_modes))

    def follow(self, observations: list[Observation]) -> None:
        """Capacity follows the mode each of `observations` runs, where it differs."""
        catalog = self.service.fabric.catalog
        for o in observations:
            if o.mode is None or o.module is None:
                continue                # the ends disagree (a change under way), or unknown
            try:
                rate = catalog.module(o.module).mode(o.mode).rate_gbps
            except OpticsError:         # a module or mode the catalog does not know
                if (o.wavelength, o.module, o.mode) not in self._unknown:
                    self._unknown.add((o.wavelength, o.module, o.mode))
                    log.warning("wavelength %s reports %s %s, which dcilab's catalog does "
                                "not know: its capacity is left as it was", o.wavelength,
                                o.module, o.mode)
                continue
            engine, link = self.service.core.engine, self._links[o.wavelength]
            if engine.mode(link) != o.mode or engine.rate_gbps(link) != rate:
                self.service.apply(lambda core, o=o, rate=rate: core.wavelength_mode(
                    o.wavelength, o.mode, rate))
