"""Rate adaptation: a wavelength whose margin falls steps down to a mode that keeps it,
instead of failing; and steps back up once a higher mode's margin has held.

Pure logic: observations (with `now`) in, decisions out; the gNMI adapter
(app/adaptation.py) feeds it what the transceivers report and carries the decisions out.

Margin. A mode's margin is the reported OSNR (per 0.1 nm, the worse end) less the mode's
required OSNR. The receiver model (optics/receiver.py) makes the pre-FEC BER reach the FEC
threshold exactly at 0 dB of that margin, as a datasheet's required OSNR means on real
hardware; OSNR per 0.1 nm does not depend on the symbol rate, so one reading gives the
margin of every mode of the module.

A change, make before break (RADWAN, Singh et al., SIGCOMM 2018, changes a wavelength's
modulation only after draining it): `Drain` (the wavelength takes no traffic; routes,
reservations and elephants move off), after `drain_s` `SetMode` (the transceivers go dark
for their reconfiguration time), and once both ends report the new mode, the link is up
and the new mode has margin, `Resume` at the new mode's rate.

Down at once: below `threshold_db` the wavelength moves to the highest mode that keeps
`threshold_db` (or its most robust mode if none does); waiting only lets the margin fall
further. So does one already down for its noise (a sudden loss: its receivers still read
the OSNR of what arrives, but cannot decode it in its mode). Up slowly: a higher mode is
taken only once its margin has stayed at least `threshold_db + hysteresis_db` for
`hold_s` without a single reading below. Each change
costs the wavelength a reconfiguration outage, and degradations come and go (a fibre
being handled, a repair in progress), so an up move must be clear (the hysteresis band
keeps a margin that wanders around the threshold from toggling between two modes) and
lasting (the hold: by default 120 s, about twice the assumed reconfiguration time, so an
up move is not undone by the next dip before it has paid for its outage).

Ends that disagree: a wavelength whose two transceivers run different modes (a gNMI Set
sent to one end only, a Set one end refused, a module swapped in at its default) is dark
and stays dark until they agree. Once they have disagreed for `mismatch_s` with no change
of ours under way (time for whoever set one end to set the other; the wait starts again
when the pair of modes changes), both are set to the mode a step down would choose: the
highest that keeps `threshold_db`, else the most robust (with no OSNR read, the more
robust of the two ends' modes; a step up follows its hold). A fix after which the ends
still disagree waits twice as long the next time. Such a wavelength carried nothing, so
its fix does not hold back the other wavelengths of its line system.

What the fabric file holds a wavelength to (`LineLimits`): a mode whose dispersion
tolerance the line exceeds is never chosen (its DSP cannot compensate the line: it would
not decode, whatever its OSNR), and one running such a mode while dark is stepped down as
if its margin had fallen; a step up must also keep the line's design `margin_db` (the
margin the plan gave every mode it could run); and a mode the file forces is a ceiling:
stepped down from when the margin falls, never stepped above.

One change at a time per line system: a degradation hits all its wavelengths at once, and
draining them all together would leave the site pair without that capacity for the whole
reconfiguration; one by one, the others carry the traffic meanwhile. Unless it is urgent:
at 0 dB (errors get through the FEC) a wavelength changes without waiting for the others.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from enum import Enum

from ..optics import Catalog, Mode, Module

DEFAULT_THRESHOLD_DB = 1.0
DEFAULT_HYSTERESIS_DB = 1.0
DEFAULT_HOLD_S = 120.0
DEFAULT_DRAIN_S = 1.0
# Time for whoever set one end to set the other (two gNMI calls by hand) before both are set.
DEFAULT_MISMATCH_S = 30.0
# A fix that did not take (an end refused it, or someone sets one end back) waits twice as
# long each time, up to this many doublings: never a Set every mismatch_s for good.
MISMATCH_BACKOFF_MAX = 5
# A change that has not come back by then is given up: the wavelength goes back in use
# at whatever mode it reports (restoration handles a link that stays down).
DEFAULT_CHANGE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Policy:
    threshold_db: float = DEFAULT_THRESHOLD_DB
    hysteresis_db: float = DEFAULT_HYSTERESIS_DB
    hold_s: float = DEFAULT_HOLD_S
    drain_s: float = DEFAULT_DRAIN_S
    change_timeout_s: float = DEFAULT_CHANGE_TIMEOUT_S
    mismatch_s: float = DEFAULT_MISMATCH_S

    def problems(self) -> list[str]:
        out = []        # written as what holds, so NaN fails too; an infinity is no setting
        # named as the options that set them (--hold-s), which is how they are given
        if not 0 <= self.threshold_db < math.inf:
            out.append(f"--margin-threshold-db must be a number of dB >= 0, got "
                       f"{self.threshold_db}")
        for name in ("hysteresis_db", "hold_s", "drain_s"):
            if not 0 <= getattr(self, name) < math.inf:
                out.append(f"--{name.replace('_', '-')} must be a number >= 0, got "
                           f"{getattr(self, name)}")
        if not 0 < self.change_timeout_s < math.inf:
            out.append(f"change timeout must be a number of seconds > 0, got "
                       f"{self.change_timeout_s}")
        if not 0 <= self.mismatch_s < math.inf:
            out.append(f"--mismatch-s must be a number >= 0, got {self.mismatch_s}")
        return out


@dataclass(frozen=True)
class LineLimits:
    """What the fabric file holds one wavelength's modes to, beyond the policy."""

    dispersion_ps_nm: float = 0.0   # the line's: a mode tolerating less cannot decode it
    margin_db: float = 0.0          # the file's design margin: a step up keeps it too
    highest: str | None = None      # the file's forced mode: never stepped above


@dataclass(frozen=True)
class Observation:
    """What both ends of one wavelength report now."""

    wavelength: str
    module: str | None          # as the transceivers name it
    mode: str | None            # None while the two ends disagree (or one is unknown)
    osnr_db: float | None       # per 0.1 nm, the worse end
    link_up: bool               # both ends report their link up
    line_system: str = ""       # wavelengths of one line system change one at a time
    # each end's mode where they disagree, both known and of the same module; else ()
    end_modes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Drain:
    wavelength: str
    from_mode: str
    to_mode: str
    reason: str


@dataclass(frozen=True)
class SetMode:
    wavelength: str
    mode: str


@dataclass(frozen=True)
class Resume:
    wavelength: str
    mode: str
    rate_gbps: float | None     # None: unknown, leave the rate as it is


Decision = Drain | SetMode | Resume


class Phase(Enum):
    IN_SERVICE = "in service"
    DRAINING = "draining"
    CHANGING = "changing mode"


@dataclass
class _Wavelength:
    phase: Phase = Phase.IN_SERVICE
    target: str | None = None
    since: float = 0.0
    up_since: dict[str, float] = field(default_factory=dict)   # higher mode -> margin held since
    mismatch_since: float | None = None     # in service with its ends disagreeing since
    mismatch_modes: tuple[str, ...] = ()    # ... running these
    fixing_mismatch: bool = False           # its change sets ends that disagreed alike


@dataclass(frozen=True)
class Change:
    """One mode change, for the timeline."""

    at: float
    wavelength: str
    from_mode: str
    to_mode: str
    reason: str


@dataclass
class Adapter:
    """Per wavelength: in service, draining, or changing mode."""

    catalog: Catalog
    policy: Policy = field(default_factory=Policy)
    # by wavelength; one not named is held to nothing beyond the policy
    limits: dict[str, LineLimits] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    _state: dict[str, _Wavelength] = field(default_factory=dict)
    _line_system: dict[str, str] = field(default_factory=dict)
    _mismatch_fixes: dict[str, int] = field(default_factory=dict)   # in a row, not taken

    def _urgent(self, obs: Observation) -> bool:
        """At the FEC threshold (0 dB): errors get through now, change without waiting."""
        margin = self.margin_db(obs)
        return margin is not None and margin < 0.0

    def _changing_on(self, obs: Observation) -> bool:
        """Another wavelength of `obs`'s line system is out of use for its own change."""
        return bool(obs.line_system) and any(
            w != obs.wavelength and self._line_system.get(w) == obs.line_system
            and st.phase != Phase.IN_SERVICE and not st.fixing_mismatch
            for w, st in self._state.items())

    def phase(self, wavelength: str) -> Phase:
        return self._state.get(wavelength, _Wavelength()).phase

    def margin_db(self, obs: Observation, mode: str | None = None) -> float | None:
        """`obs`'s margin in `mode` (default: the mode it runs)."""
        module = self._module(obs)
        mode = mode or obs.mode
        if module is None or mode is None or obs.osnr_db is None or mode not in module.mode_names:
            return None
        return obs.osnr_db - module.mode(mode).required_osnr_db

    def _module(self, obs: Observation) -> Module | None:
        return self.catalog.module(obs.module) if obs.module in self.catalog else None

    def _decodes(self, obs: Observation, mode: Mode) -> bool:
        """`mode` tolerates the dispersion of `obs`'s line."""
        limits = self.limits.get(obs.wavelength, LineLimits())
        return mode.cd_tolerance_ps_nm >= limits.dispersion_ps_nm

    def _usable(self, obs: Observation, module: Module) -> list[Mode]:
        """The modes of `module` that `obs`'s wavelength may be set to, highest rate
        first: those that decode its line, none above a mode the file forces (all of
        them if the file's limits would leave none: the file was planned with one)."""
        limits = self.limits.get(obs.wavelength, LineLimits())
        ceiling = (module.mode(limits.highest).rate_gbps
                   if limits.highest in module.mode_names else math.inf)
        usable = [m for m in module.modes if self._decodes(obs, m) and m.rate_gbps <= ceiling]
        return sorted(usable or module.modes, key=lambda m: m.rate_gbps, reverse=True)

    def observe(self, now: float, observations: list[Observation]) -> list[Decision]:
        out: list[Decision] = []
        self._line_system.update({o.wavelength: o.line_system for o in observations})
        for obs in observations:
            state = self._state.setdefault(obs.wavelength, _Wavelength())
            if (state.phase == Phase.IN_SERVICE and self._changing_on(obs)
                    and not self._urgent(obs) and not obs.end_modes):
                continue        # its line system's other wavelengths carry on meanwhile
                                # (ends that disagree: dark, nothing to carry on for)
            decision = {Phase.IN_SERVICE: self._in_service, Phase.DRAINING: self._draining,
                        Phase.CHANGING: self._changing}[state.phase](now, obs, state)
            if decision is not None:
                out.append(decision)
        return out

    def postpone(self, wavelength: str) -> None:
        """A step up just decided cannot be taken now (draining the wavelength would
        degrade what it carries): it stays in service, and is decided again while its
        margin holds."""
        state = self._state.get(wavelength)
        if state is None or state.phase != Phase.DRAINING:
            return
        self._state[wavelength] = _Wavelength(up_since=state.up_since)
        if self.changes and self.changes[-1].wavelength == wavelength:
            self.changes.pop()

    def set_mode_failed(self, now: float, wavelength: str, mode: str | None) -> Resume | None:
        """The transceivers refused the change: back in use at the mode they run."""
        state = self._state.get(wavelength)
        if state is None or state.phase == Phase.IN_SERVICE:
            return None
        self._state[wavelength] = _Wavelength()
        return Resume(wavelength, mode or "", None)

    # -- phases ------------------------------------------------------------------------

    def _in_service(self, now: float, obs: Observation, state: _Wavelength) -> Decision | None:
        module = self._module(obs)
        if obs.end_modes and module is not None:
            return self._mismatched(now, obs, state, module)
        state.mismatch_since, state.mismatch_modes = None, ()
        if obs.mode is not None:
            self._mismatch_fixes.pop(obs.wavelength, None)     # the ends agree: fixed
        margin = self.margin_db(obs)
        # Down with its OSNR still read: too noisy to decode in its mode (a sudden loss,
        # not a ramp), yet a more robust mode may carry it: stepped down like a low margin.
        # So is one dark in a mode its line's dispersion rules out (set by hand over gNMI);
        # lit, it decodes: a catalog's tolerance is a minimum, a real DSP may do better.
        undecodable = (module is not None and not obs.link_up and obs.mode in module.mode_names
                       and not self._decodes(obs, module.mode(obs.mode)))
        if module is None or margin is None or not (obs.link_up or margin < 0.0
                                                    or undecodable):
            state.up_since.clear()
            return None
        by_rate = self._usable(obs, module)
        rate = module.mode(obs.mode).rate_gbps
        keeps = [m for m in by_rate if obs.osnr_db - m.required_osnr_db >= self.policy.threshold_db]
        if margin < self.policy.threshold_db or undecodable:
            state.up_since.clear()
            target = keeps[0] if keeps else min(by_rate, key=lambda m: m.required_osnr_db)
            if target.rate_gbps >= rate:
                return None                   # nothing more robust to go to: it may fail
            limits = self.limits.get(obs.wavelength, LineLimits())
            why = (f"dispersion {limits.dispersion_ps_nm:.0f} ps/nm beyond {obs.mode}'s "
                   f"{module.mode(obs.mode).cd_tolerance_ps_nm:.0f} ps/nm" if undecodable
                   else f"margin {margin:.2f} dB < {self.policy.threshold_db:g} dB")
            return self._drain(now, obs, state, target.name, why)
        # as high a margin as the file's design asks of a mode, and clear of the threshold
        wanted = max(self.policy.threshold_db + self.policy.hysteresis_db,
                     self.limits.get(obs.wavelength, LineLimits()).margin_db)
        # each higher mode's margin must hold on its own, with no reading below, for hold_s
        higher = [m for m in by_rate if m.rate_gbps > rate]
        for m in higher:
            if obs.osnr_db - m.required_osnr_db >= wanted:
                state.up_since.setdefault(m.name, now)
            else:
                state.up_since.pop(m.name, None)
        up = next((m for m in higher if now - state.up_since.get(m.name, now) >= self.policy.hold_s
                   and m.name in state.up_since), None)
        if up is None:
            return None
        return self._drain(now, obs, state, up.name,
                           f"margin in {up.name} >= {wanted:.1f} dB for "
                           f"{now - state.up_since[up.name]:.0f} s")

    def _mismatched(self, now: float, obs: Observation, state: _Wavelength,
                    module: Module) -> Decision | None:
        """Both ends set to one mode once they have disagreed for `mismatch_s`."""
        state.up_since.clear()
        if state.mismatch_since is None or state.mismatch_modes != obs.end_modes:
            state.mismatch_since, state.mismatch_modes = now, obs.end_modes
        tries = min(self._mismatch_fixes.get(obs.wavelength, 0), MISMATCH_BACKOFF_MAX)
        if now - state.mismatch_since < self.policy.mismatch_s * 2 ** tries:
            return None
        self._mismatch_fixes[obs.wavelength] = tries + 1
        usable = self._usable(obs, module)
        if obs.osnr_db is None:
            # Not read (an end still reconfiguring): the safer end's mode, or the highest
            # usable one no faster than it where the file's limits rule that one out.
            known = [module.mode(m).rate_gbps for m in obs.end_modes if m in module.mode_names]
            slower = [m for m in usable if known and m.rate_gbps <= min(known)]
            candidates = [max(slower, key=lambda m: m.rate_gbps)] if slower else usable
        else:                           # the highest that keeps the threshold, else the safest
            candidates = [m for m in usable
                          if obs.osnr_db - m.required_osnr_db >= self.policy.threshold_db]
            if candidates:
                candidates = [max(candidates, key=lambda m: m.rate_gbps)]
        target = min(candidates or usable, key=lambda m: m.required_osnr_db)
        drain = self._drain(now, obs, state, target.name,
                            f"its ends run {' and '.join(obs.end_modes)} (dark) for "
                            f"{now - state.mismatch_since:.0f} s",
                            from_mode="/".join(obs.end_modes))
        self._state[obs.wavelength].fixing_mismatch = True
        return drain

    def _drain(self, now: float, obs: Observation, state: _Wavelength, target: str,
               reason: str, from_mode: str | None = None) -> Drain:
        # the hold kept: a step up postponed for want of room goes once there is room
        self._state[obs.wavelength] = _Wavelength(Phase.DRAINING, target, now,
                                                  dict(state.up_since))
        from_mode = from_mode or obs.mode
        self.changes.append(Change(now, obs.wavelength, from_mode, target, reason))
        return Drain(obs.wavelength, from_mode, target, reason)

    def _draining(self, now: float, obs: Observation, state: _Wavelength) -> Decision | None:
        if state.fixing_mismatch and obs.mode is not None:
            # someone set the ends alike meanwhile (an operator's second Set): theirs stands
            self._state[obs.wavelength] = _Wavelength()
            return self._resume(obs.wavelength, obs.mode, obs.module)
        if now - state.since < self.policy.drain_s:
            return None
        state.phase, state.since = Phase.CHANGING, now
        return SetMode(obs.wavelength, state.target)

    def _changing(self, now: float, obs: Observation, state: _Wavelength) -> Decision | None:
        margin = self.margin_db(obs)
        done = obs.mode == state.target and obs.link_up and margin is not None and margin >= 0.0
        if (not done and obs.mode == state.target and not obs.link_up
                and margin is not None and margin < 0.0):
            # Changed, and dark in the new mode with its light read: the line fell during
            # the change (a sudden loss as it stepped up): down from here, still drained,
            # as from service; waiting would keep it dark until the change timed out.
            self._state[obs.wavelength] = _Wavelength()
            lower = self._in_service(now, obs, self._state[obs.wavelength])
            # With nothing more robust to go to, it is back in use as it is (it stayed
            # drained for good, though up and lit: an optical re-tester's).
            return lower or self._resume(obs.wavelength, obs.mode, obs.module)
        if not done and now - state.since < self.policy.change_timeout_s:
            return None
        self._state[obs.wavelength] = _Wavelength()    # a fresh hold before any up move
        return self._resume(obs.wavelength, obs.mode, obs.module)

    def _resume(self, wavelength: str, mode: str | None, module_name: str | None) -> Resume:
        module = self.catalog.module(module_name) if module_name in self.catalog else None
        rate = (module.mode(mode).rate_gbps
                if module is not None and mode in module.mode_names else None)
        return Resume(wavelength, mode or "", rate)
