"""Choosing a transceiver mode for a line, and explaining why none fits.

The rule is GNPy's: the highest-rate mode whose GSNR (per 0.1 nm, worst wavelength of
the lit spectrum, computed by GNPy) clears its required OSNR plus the system margin, and
whose dispersion tolerance covers the line. When nothing fits, the error gives the
numbers and suggestions worked out on the same line, each one checked with GNPy before
it is offered, never canned advice.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .catalog import DEFAULT_CATALOG, Catalog, Mode, Module, OpticsError
from .line import AUTO, LineSystem
from .qot import QoT, line_qot
from .spectrum import slots_that_fit

# Amplifier huts closer than this are not a realistic suggestion.
MIN_SUGGESTED_SPAN_KM = 20.0


@dataclass(frozen=True)
class ModeCheck:
    """How one mode of one module fares on a line carrying `wavelengths` of it.

    `wavelengths` None means a full band of this mode (the load a line is designed for).
    """

    module: Module
    mode: Mode
    line: LineSystem
    wavelengths: int | None = None

    @property
    def qot(self) -> QoT:
        """GNPy's figures (cached per line system and spectrum, so asking again is cheap)."""
        return line_qot(self.line, self.module, self.mode, self.wavelengths)

    @property
    def fits_band(self) -> bool:
        count = self.wavelengths or 1
        return count <= slots_that_fit(self.mode.width_ghz, self.line.band)

    @property
    def gsnr_db(self) -> float:
        """The worst wavelength's GSNR per 0.1 nm: the one the mode must clear."""
        return self.qot.worst_gsnr_db

    @property
    def needed_gsnr_db(self) -> float:
        return self.mode.required_osnr_db + self.line.margin_db

    @property
    def gsnr_ok(self) -> bool:
        return self.gsnr_db >= self.needed_gsnr_db

    @property
    def dispersion_ok(self) -> bool:
        return self.mode.cd_tolerance_ps_nm >= self.line.dispersion_ps_nm

    @property
    def feasible(self) -> bool:
        # Dispersion first: it costs nothing, GSNR costs a GNPy run.
        return self.fits_band and self.dispersion_ok and self.gsnr_ok

    def reasons(self) -> list[str]:
        """Why this mode fails, with the numbers."""
        reasons = []
        if not self.dispersion_ok:
            reasons.append(
                f"accumulated dispersion {self.line.dispersion_ps_nm:.0f} ps/nm exceeds its "
                f"{self.mode.cd_tolerance_ps_nm:.0f} ps/nm tolerance")
        if not self.gsnr_ok:
            # as many decimals as show it short: "27.10 dB is below 25.1 + 2.0" read as
            # a contradiction (a tester's); 27.098 does not
            need, places = self.mode.required_osnr_db + self.line.margin_db, 2
            while places < 6 and round(self.gsnr_db, places) >= round(need, places):
                places += 1
            reasons.append(
                f"GSNR {self.gsnr_db:.{places}f} dB (GNPy, "
                + (f"worst of {len(self.qot.gsnr_db)} wavelengths" if len(self.qot.gsnr_db) > 1
                   else "its one wavelength")
                + f" at {self.qot.launch_power_dbm:g} dBm) is below the "
                f"{self.mode.required_osnr_db:.1f} dB required + {self.line.margin_db:.1f} dB "
                f"margin")
        return reasons


def check_mode(module: Module, mode: Mode, line: LineSystem,
               wavelengths: int | None = None) -> ModeCheck:
    return ModeCheck(module, mode, line, wavelengths)


def select_mode(module: str, line: LineSystem, mode: str | None = None,
                catalog: Catalog = DEFAULT_CATALOG, wavelengths: int | None = None) -> Mode:
    """Pick the mode a module runs on a line (GNPy's rule), or the forced one if it fits.

    Parameters
    ----------
    module
        Module name in `catalog`.
    line
        The line system the wavelengths cross.
    mode
        Force this mode instead of choosing; it must still be feasible.
    catalog
        Where the module and, for suggestions, its alternatives come from.
    wavelengths
        How many wavelengths of the module the line carries (NLI grows with the load);
        None for a full band of each mode, the conservative design load.

    Returns
    -------
    Mode
        The highest-rate feasible mode (or the forced one).

    Raises
    ------
    OpticsError
        Unknown module or mode, or no feasible mode: the message gives the GSNR or
        dispersion numbers and suggestions computed and checked with GNPy on this line
        (launch power, span length, link length, other modules or modes that would work).
    """
    transceiver = catalog.module(module)
    if mode is not None:
        check = check_mode(transceiver, transceiver.mode(mode), line, wavelengths)
        if not check.fits_band or check.feasible:
            return check.mode   # too many wavelengths is the spectrum's error to give
        raise OpticsError(
            f"{transceiver.name} mode {mode} cannot cross {line.fiber_km:g} km: "
            f"{'; and '.join(check.reasons())}; {_suggest(check, catalog, forced=True)}")
    checks = [check_mode(transceiver, candidate, line, wavelengths)
              for candidate in transceiver.modes]
    in_band = [check for check in checks if check.fits_band]
    for check in in_band:
        if check.feasible:
            return check.mode
    if not in_band:
        # The spectrum's error says how many fit, at the narrowest slot there is.
        return min(transceiver.modes, key=lambda m: m.width_ghz)
    # Explain with the mode that comes closest: fewest failures, then the easiest GSNR.
    closest = min(in_band, key=lambda c: (len(c.reasons()), c.needed_gsnr_db - c.gsnr_db))
    which = (f"no mode fits, the closest ({closest.mode.name}) fails: " if len(checks) > 1
             else "")
    # At the best launch power the module runs the fastest mode that clears there: say
    # that one's power and figures (the closest mode's own best power would be another
    # figure, one that `auto` never gives).
    for other in in_band:
        if other.dispersion_ok and not other.gsnr_ok:
            launch = _launch_power_that_works(other)
            if launch is not None:
                break
    else:
        other, launch = closest, None
    suggestion = _suggest(closest, catalog, launch=other is closest)
    if other is not closest:
        clears = f"{launch}, where its {other.mode.name} mode clears"
        suggestion = (f"use {clears}, or {suggestion.removeprefix('use ')}"
                      if suggestion.startswith("use ") else f"use {clears}")
    raise OpticsError(
        f"{transceiver.name} cannot cross {line.fiber_km:g} km: {which}"
        f"{'; and '.join(closest.reasons())}; {suggestion}")


def _suggest(failed: ModeCheck, catalog: Catalog, forced: bool = False,
             launch: bool = True) -> str:
    """What would work instead: each option checked with GNPy on the changed line.
    `launch` False: the best launch power is said by the caller, for another mode."""
    line = failed.line
    options: list[str] = []
    # Launch power and span length only help when dispersion is not also in the way.
    if not failed.gsnr_ok and failed.dispersion_ok:
        best = _launch_power_that_works(failed) if launch else None
        if best is not None:
            options.append(best)
        spans = _spans_that_work(failed)
        if spans is not None:
            options.append(spans)
    if not failed.dispersion_ok:
        longest = math.floor(failed.mode.cd_tolerance_ps_nm / line.dispersion_ps_nm_km)
        # Never past the reach the module is specified for (a ZR's 120 km, though its
        # dispersion tolerance alone would allow 141 km of standard fibre).
        within = failed.module.reach_km is not None and longest > failed.module.reach_km
        if within:
            longest = math.floor(failed.module.reach_km)
        if longest > 0:
            shorter = dataclasses.replace(line, fiber_km=longest, span_extra_loss_db=(),
                                          amplifier_nf_db_each=())
            check = check_mode(failed.module, failed.mode, shorter, failed.wavelengths)
            if check.feasible:
                options.append(f"a link of at most {longest:d} km for {failed.module.name} "
                               f"at {failed.mode.name} ("
                               + ("its specified reach; " if within else "")
                               + f"GSNR there {check.gsnr_db:.2f} dB)")
    options.extend(_alternatives(failed, catalog, forced))
    if not options:
        return ("no module or mode in the catalog can cross this line; shorten the link or "
                "regenerate part way")
    # NLI grows with the load: a line judged on the few wavelengths it lights loses
    # margin when filled later (a tester read an 800G suggestion over 900 km as general).
    load = (f" (each GSNR with the {failed.wavelengths} wavelength"
            f"{'s' if failed.wavelengths != 1 else ''} this line lights: more lower it)"
            if failed.wavelengths else "")
    return "use " + (options[0] if len(options) == 1
                     else ", ".join(options[:-1]) + " or " + options[-1]) + load


def _launch_power_that_works(failed: ModeCheck) -> str | None:
    """The best launch power for this load, if the GSNR clears there and it is not in use."""
    line = failed.line
    if line.launch_power_dbm == AUTO:
        return None
    best = check_mode(failed.module, failed.mode, dataclasses.replace(line, launch_power_dbm=AUTO),
                      failed.wavelengths)
    if not best.feasible or abs(best.qot.launch_power_dbm - line.launch_power_dbm) < 0.05:
        return None
    return (f"launch_power_dbm: auto ({best.qot.launch_power_dbm:g} dBm per wavelength here, "
            f"GSNR {best.gsnr_db:.2f} dB)")


def _spans_that_work(failed: ModeCheck) -> str | None:
    """The fewest spans (hops not below MIN_SUGGESTED_SPAN_KM) that clear the GSNR.

    More, shorter spans cut ASE but add NLI (each span's NLI barely depends on its
    length), so GSNR rises with the span count to a peak and falls after it. Bisect on the
    slope for the peak; if the peak clears, bisect the rising side for the fewest spans.
    The answer is a GNPy run like any other.
    """
    line = failed.line
    if line.span_extra_loss_db or line.amplifier_nf_db_each:
        return None     # a degraded line is repaired, not re-spanned
    low, high = line.spans, math.floor(line.fiber_km / MIN_SUGGESTED_SPAN_KM)
    if high <= low:
        return None

    def trial(spans: int) -> ModeCheck:
        return check_mode(failed.module, failed.mode,
                          dataclasses.replace(line, span_km=line.fiber_km / spans),
                          failed.wavelengths)

    top, bottom = high, low                 # the peak is in [bottom, top]
    while top > bottom:
        middle = (bottom + top) // 2
        if trial(middle + 1).gsnr_db > trial(middle).gsnr_db:
            bottom = middle + 1
        else:
            top = middle
    if top == low or not trial(top).gsnr_ok:
        return None
    while top - low > 1:                    # trial(low) fails, trial(top) clears
        middle = (low + top) // 2
        if trial(middle).gsnr_ok:
            top = middle
        else:
            low = middle
    check = trial(top)
    if not check.feasible:
        return None
    return (f"shorter spans (span_km <= {line.fiber_km / top:.1f} km, {top} spans, "
            f"GSNR {check.gsnr_db:.2f} dB)")


def _alternatives(failed: ModeCheck, catalog: Catalog, forced: bool = False) -> list[str]:
    """The best feasible mode of each catalog module on the same line, this module first;
    where the line's launch power is fixed, also a better mode that its best launch power
    lets cross (one change at a time is not always enough: a weak launch and the wrong
    module together). The module's own other modes at the best power are `select_mode`'s
    to say, unless the mode was `forced` (then nothing else tries them)."""
    modules = sorted(catalog, key=lambda m: m.name != failed.module.name)
    at_auto = (None if failed.line.launch_power_dbm == AUTO
               else dataclasses.replace(failed.line, launch_power_dbm=AUTO))
    options = []
    for module in modules:
        found = _first_feasible(failed, module, failed.line)
        if found is not None:
            options.append(f"{module.name} at {found.mode.name} ({_detail(failed, found.mode)}, "
                           f"GSNR here {found.gsnr_db:.2f} dB)")
        # At the best power, only a mode above the one found at this power is news.
        faster = found.mode.rate_gbps if found is not None else 0
        best = (_first_feasible(failed, module, at_auto, above_gbps=faster)
                if at_auto is not None and (forced or module != failed.module) else None)
        if best is not None:
            options.append(f"launch_power_dbm: auto with {module.name} at {best.mode.name} "
                           f"({_detail(failed, best.mode)}, GSNR there "
                           f"{best.gsnr_db:.2f} dB at {best.qot.launch_power_dbm:g} dBm)")
    return options


def _first_feasible(failed: ModeCheck, module, line: LineSystem,
                    above_gbps: float = 0) -> ModeCheck | None:
    """`module`'s highest-rate mode that crosses `line` (faster than `above_gbps`), other
    than the one that failed."""
    for mode in module.modes:
        if mode.rate_gbps <= above_gbps:
            break                               # highest rate first: none faster is left
        if (module, mode) == (failed.module, failed.mode):     # its power: said apart
            continue
        check = check_mode(module, mode, line, failed.wavelengths)
        if check.feasible:
            return check
    return None


def _detail(failed: ModeCheck, mode) -> str:
    """The figure that answers the failure: dispersion tolerance or the OSNR needed."""
    if not failed.dispersion_ok:
        return f"tolerates up to {mode.cd_tolerance_ps_nm:.0f} ps/nm"
    return f"needs {mode.required_osnr_db:.1f} dB"


__all__ = ["MIN_SUGGESTED_SPAN_KM", "ModeCheck", "check_mode", "select_mode"]
