"""The cheapest optics that carry a site pair's sync in time, and classic WDM beside it.

Every (module, mode) the optics model finds feasible at the pair's distance is a candidate
(`select_mode`, so the QoT is the optics package's, whatever model it uses); its
wavelengths are the required rate over the mode's rate, rounded up; its line systems are
fibre pairs lit in the C band, or in C+L when that saves fibre pairs (`slots_that_fit`).
Capex and power count a module at both ends of every wavelength. The winner is the
cheapest, then the least power, then the fewest line systems. Its figures come from
`plan_link`, one per line system.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..optics import Catalog, LineSystem, LinkPlan, OpticsError, plan_link, select_mode
from ..optics.plan import MODULES_PER_WAVELENGTH
from ..optics.spectrum import slots_that_fit
from .traffic import required_gbps

# Classic WDM transponders (the comparison). No credible public price or power after 2024
# (REFERENCE.md): dated, marked assumptions, overridable in the job file (`wdm:`).
WDM_RATE_GBPS = 400
WDM_PRICE_USD = 16_150.0
WDM_POWER_W = 80.0
WDM_SOURCES = {
    "rate_gbps": "assumption (2024-10): a 400G coherent transponder line port",
    "price_usd": "assumption (2024-10): 5x the 400ZR price of $3,230 per end; no public list "
                 "price for transponders",
    "power_w": "assumption (2024-10): ~0.2 W per Gb/s for transponder-based WDM against "
               "~0.04 W per Gb/s for 400ZR (REFERENCE.md), 80 W per 400G end",
}
# Fewer than this many Gb/s needs no wavelength at all (a job whose ring skips a direction).
_NOTHING_GBPS = 1e-9


class NoFeasibleChoice(ValueError):
    """No module of the catalog carries a site pair's sync in time; the message says why."""


@dataclass(frozen=True)
class Choice:
    """What one site pair gets: the module, its mode, wavelengths and line systems."""

    a: str
    b: str
    km: float
    module: str
    mode: str
    rate_gbps: int
    required_gbps: float
    wavelengths: int
    band: str
    links: tuple[LinkPlan, ...]       # one per line system (fibre pair)
    one_way_latency_s: float

    @property
    def line_systems(self) -> int:
        return len(self.links)

    @property
    def capacity_gbps(self) -> float:
        return float(sum(link.capacity_gbps for link in self.links))

    @property
    def capex_usd(self) -> float:
        return sum(link.cost_usd for link in self.links)

    @property
    def power_w(self) -> float:
        return sum(link.power_w for link in self.links)

    @property
    def latency_ms(self) -> float:
        return self.links[0].latency_ms


@dataclass(frozen=True)
class Wdm:
    """The same capacity with classic WDM transponders (assumption figures)."""

    rate_gbps: int
    price_usd: float
    power_w: float

    def for_capacity(self, capacity_gbps: float) -> dict:
        wavelengths = math.ceil(capacity_gbps / self.rate_gbps - 1e-9) if capacity_gbps else 0
        transponders = MODULES_PER_WAVELENGTH * wavelengths
        return {"wavelengths": wavelengths, "transponders": transponders,
                "capex_usd": transponders * self.price_usd,
                "power_w": transponders * self.power_w}


def split(total: int, parts: int) -> list[int]:
    """`total` wavelengths over `parts` line systems, as evenly as possible."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def line_systems_for(wavelengths: int, width_ghz: float) -> tuple[int, str]:
    """Fibre pairs and band for `wavelengths` of `width_ghz`: C unless C+L saves fibre."""
    in_c = math.ceil(wavelengths / slots_that_fit(width_ghz, "C"))
    in_cl = math.ceil(wavelengths / slots_that_fit(width_ghz, "C+L"))
    return (in_c, "C") if in_c <= in_cl else (in_cl, "C+L")


def choose(a: str, b: str, km: float, bytes_per_sync: float, window_s: float,
           ring_latencies: int, catalog: Catalog, available: tuple[str, ...]) -> Choice:
    """The cheapest feasible hardware for one site pair.

    Parameters
    ----------
    bytes_per_sync
        The busier direction's bytes per sync.
    window_s
        Time the sync may take, before the ring's latencies come off.
    ring_latencies
        One-way latencies of this pair a sync waits for (2(M-1)).
    catalog, available
        The modules (with the job's price and power overrides) and those the plan may use.

    Raises
    ------
    NoFeasibleChoice
        Every module fails: out of reach at this distance, or latency alone fills the
        window; the message gives each module's reason.
    """
    candidates: list[tuple[tuple, Choice]] = []
    reasons: list[str] = []
    for name in available:
        module = catalog.module(name)
        line = LineSystem(fiber_km=km)
        latency_s = (line.propagation_latency_us + module.dsp_latency_us) / 1e6
        need = required_gbps(bytes_per_sync, window_s, ring_latencies, latency_s)
        if need is None:
            reasons.append(f"{name}: {ring_latencies} one-way latencies of "
                           f"{latency_s * 1e3:.3f} ms fill the {window_s:.3f} s window")
            continue
        modes_ok = 0
        for mode in module.modes:
            try:
                select_mode(name, line, mode.name, catalog)
            except OpticsError as exc:
                if mode is module.modes[-1] and not modes_ok:
                    reasons.append(str(exc))
                continue
            modes_ok += 1
            wavelengths = max(1, math.ceil(need / mode.rate_gbps - 1e-9)) \
                if need > _NOTHING_GBPS else 1
            count, band = line_systems_for(wavelengths, mode.width_ghz)
            capex = MODULES_PER_WAVELENGTH * wavelengths * module.price_usd
            power = MODULES_PER_WAVELENGTH * wavelengths * module.power_w
            key = (capex, power, count, -mode.rate_gbps, name)
            candidates.append((key, (name, mode.name, mode.rate_gbps, need, wavelengths, count,
                                     band, latency_s)))
    if not candidates:
        raise NoFeasibleChoice(f"{a} - {b} ({km:g} km): no module carries the sync in time: "
                               + "; ".join(reasons))
    _, best = min(candidates, key=lambda c: c[0])
    name, mode, rate, need, wavelengths, count, band, latency_s = best
    links = tuple(
        plan_link(pair_link_name(a, b, i, count), name, n,
                  LineSystem(fiber_km=km, band=band), mode, catalog)
        for i, n in enumerate(split(wavelengths, count), start=1))
    return Choice(a, b, km, name, mode, rate, need, wavelengths, band, links, latency_s)


def pair_link_name(a: str, b: str, index: int, count: int) -> str:
    """The line system's name in a generated fabric file."""
    return f"{a}-{b}" if count == 1 else f"{a}-{b}-{index}"
