"""Choosing a transceiver mode for a line, and explaining why none fits.

The rule is GNPy's: the highest-rate mode whose OSNR clears its requirement plus the
system margin and whose dispersion tolerance covers the line. When nothing fits, the error
gives the numbers and suggestions worked out on the same line, never canned advice.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .catalog import DEFAULT_CATALOG, Catalog, Mode, Module, OpticsError
from .line import LineSystem, db_to_linear, linear_to_db

# Above about +3 dBm per channel fibre nonlinearity (not modelled here) costs more OSNR
# than extra launch power buys, so a higher launch power is never suggested.
MAX_SUGGESTED_LAUNCH_DBM = 3.0
# Amplifier huts closer than this are not a realistic suggestion.
MIN_SUGGESTED_SPAN_KM = 20.0


@dataclass(frozen=True)
class ModeCheck:
    """How one mode of one module fares on a line."""

    module: Module
    mode: Mode
    line: LineSystem

    @property
    def osnr_db(self) -> float:
        return self.line.osnr_db(self.module.tx_osnr_db)

    @property
    def needed_osnr_db(self) -> float:
        return self.mode.required_osnr_db + self.line.margin_db

    @property
    def osnr_ok(self) -> bool:
        return self.osnr_db >= self.needed_osnr_db

    @property
    def dispersion_ok(self) -> bool:
        return self.mode.cd_tolerance_ps_nm >= self.line.dispersion_ps_nm

    @property
    def feasible(self) -> bool:
        return self.osnr_ok and self.dispersion_ok

    def reasons(self) -> list[str]:
        """Why this mode fails, with the numbers."""
        reasons = []
        if not self.dispersion_ok:
            reasons.append(
                f"accumulated dispersion {self.line.dispersion_ps_nm:.0f} ps/nm exceeds its "
                f"{self.mode.cd_tolerance_ps_nm:.0f} ps/nm tolerance")
        if not self.osnr_ok:
            reasons.append(
                f"OSNR {self.osnr_db:.1f} dB is below the {self.mode.required_osnr_db:.1f} dB "
                f"required + {self.line.margin_db:.1f} dB margin")
        return reasons


def check_mode(module: Module, mode: Mode, line: LineSystem) -> ModeCheck:
    return ModeCheck(module, mode, line)


def select_mode(module: str, line: LineSystem, mode: str | None = None,
                catalog: Catalog = DEFAULT_CATALOG) -> Mode:
    """Pick the mode a module runs on a line (GNPy's rule), or the forced one if it fits.

    Parameters
    ----------
    module
        Module name in `catalog`.
    line
        The line system the wavelength crosses.
    mode
        Force this mode instead of choosing; it must still be feasible.
    catalog
        Where the module and, for suggestions, its alternatives come from.

    Returns
    -------
    Mode
        The highest-rate feasible mode (or the forced one).

    Raises
    ------
    OpticsError
        Unknown module or mode, or no feasible mode: the message gives the OSNR or dispersion
        numbers and suggestions computed on this line (span length, launch power, link
        length, other modules or modes that would work).
    """
    transceiver = catalog.module(module)
    if mode is not None:
        check = check_mode(transceiver, transceiver.mode(mode), line)
        if check.feasible:
            return check.mode
        raise OpticsError(
            f"{transceiver.name} mode {mode} cannot cross {line.fiber_km:g} km: "
            f"{'; and '.join(check.reasons())}; {_suggest(check, catalog)}")
    checks = [check_mode(transceiver, candidate, line) for candidate in transceiver.modes]
    for check in checks:
        if check.feasible:
            return check.mode
    # Explain with the mode that comes closest: fewest failures, then the easiest OSNR.
    closest = min(checks, key=lambda c: (len(c.reasons()), c.needed_osnr_db - c.osnr_db))
    even = f"even its {closest.mode.name} mode fails: " if len(checks) > 1 else ""
    raise OpticsError(
        f"{transceiver.name} cannot cross {line.fiber_km:g} km: {even}"
        f"{'; and '.join(closest.reasons())}; {_suggest(closest, catalog)}")


def _suggest(failed: ModeCheck, catalog: Catalog) -> str:
    """What would work instead, each option checked on the failed line."""
    line = failed.line
    options: list[str] = []
    # Span length and launch power only help when dispersion is not also in the way.
    if not failed.osnr_ok and failed.dispersion_ok:
        spans = _spans_for_osnr(failed)
        if spans is not None:
            options.append(f"shorter spans (span_km <= {line.fiber_km / spans:.1f} km, "
                           f"{spans} spans)")
        launch = _launch_power_for_osnr(failed)
        if launch is not None:
            options.append(f"a higher launch power (launch_power_dbm >= {launch:.1f})")
    if not failed.dispersion_ok and line.dispersion_ps_nm_km > 0:
        longest = math.floor(failed.mode.cd_tolerance_ps_nm / line.dispersion_ps_nm_km)
        shorter = dataclasses.replace(line, fiber_km=longest)
        if longest > 0 and check_mode(failed.module, failed.mode, shorter).feasible:
            options.append(f"a link of at most {longest:d} km for {failed.module.name} "
                           f"at {failed.mode.name}")
    options.extend(_alternatives(failed, catalog))
    if not options:
        return ("no module or mode in the catalog can cross this line; shorten the link or "
                "regenerate part way")
    return "use " + (options[0] if len(options) == 1
                     else ", ".join(options[:-1]) + " or " + options[-1])


def _spans_for_osnr(failed: ModeCheck) -> int | None:
    """The fewest spans (shortest hops not below MIN_SUGGESTED_SPAN_KM) that clear the OSNR."""
    line = failed.line
    most = math.floor(line.fiber_km / MIN_SUGGESTED_SPAN_KM)
    for spans in range(line.spans + 1, most + 1):
        trial = dataclasses.replace(line, span_km=line.fiber_km / spans)
        if check_mode(failed.module, failed.mode, trial).osnr_ok:
            return spans
    return None


def _launch_power_for_osnr(failed: ModeCheck) -> float | None:
    """Launch power at which the OSNR clears, if below MAX_SUGGESTED_LAUNCH_DBM.

    Line OSNR rises dB for dB with launch power; the transmitter's own noise does not, so
    the line must reach 1/OSNR_line = 1/needed − 1/OSNR_tx.
    """
    module, line = failed.module, failed.line
    headroom = 1 / db_to_linear(failed.needed_osnr_db) - 1 / db_to_linear(module.tx_osnr_db)
    if headroom <= 0:
        return None  # the transmitter alone is noisier than the mode allows
    launch = line.launch_power_dbm + (-linear_to_db(headroom) - line.line_osnr_db)
    return launch if launch <= MAX_SUGGESTED_LAUNCH_DBM else None


def _alternatives(failed: ModeCheck, catalog: Catalog) -> list[str]:
    """The best feasible mode of each catalog module on the same line, this module first."""
    modules = sorted(catalog, key=lambda m: m.name != failed.module.name)
    options = []
    for module in modules:
        for mode in module.modes:
            check = check_mode(module, mode, failed.line)
            if (module, mode) == (failed.module, failed.mode) or not check.feasible:
                continue
            # Say the figure that answers the failure: dispersion tolerance or OSNR needed.
            if not failed.dispersion_ok:
                detail = f"tolerates up to {mode.cd_tolerance_ps_nm:.0f} ps/nm"
            else:
                detail = f"needs {mode.required_osnr_db:.1f} dB"
            options.append(f"{module.name} at {mode.name} ({detail}, "
                           f"OSNR here {check.osnr_db:.1f} dB)")
            break
    return options
