"""The cheapest optics that carry a site pair's sync in time, and classic WDM beside it.

Every (module, mode) the optics model finds feasible at the pair's distance, at the launch
power the fabric file is written with (`auto`), and within the module's specified reach
is a candidate (`check_mode`, so the QoT is the optics package's, whatever model it uses);
its wavelengths are the required rate over the mode's goodput (`GOODPUT_OF_LINE_RATE` of
its rate), rounded up; its line systems are fibre pairs lit in the C band, or in C+L for
a module specified for the L band too, when that saves fibre pairs and still reaches
(`slots_that_fit`).
Capex and power count a module at both ends of every wavelength. The winner is the
cheapest, then the least power, then the fewest line systems. Its figures come from
`plan_link`, one per line system.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..optics import (AUTO, Catalog, LineSystem, LinkPlan, Module, OpticsError, check_mode,
                      plan_link, select_mode)
from ..optics.plan import MODULES_PER_WAVELENGTH
from ..optics.spectrum import slots_that_fit
from .traffic import GOODPUT_OF_LINE_RATE, required_gbps

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
# Launch power of every planned line: the best for its lit spectrum (GNPy, `optics.qot`),
# what a fabric file's `launch_power_dbm: auto` asks for; `--fabric-out` writes it so, and
# `dcilab check` finds what the plan found. (At 0 dBm 800ZR+ fell short at ~400 km: 2-4 dBm
# is best for 800G, REFERENCE.md.)
LAUNCH_POWER_DBM = AUTO
# Modules specified for the L band as well as the C band. The OIF 400ZR and 800ZR
# implementation agreements, the OpenZR+ MSA and OpenROADM's 131 GBd mode all define C-band
# channel plans (191.3-196.1 THz): none of the catalog's modules is planned in C+L.
L_BAND_MODULES: frozenset[str] = frozenset()
# Fibre pairs (line systems) one site pair may get: a plan beyond is a job no DCI carries
# (100 C-band pairs of 64 x 400G are 2.56 Pb/s), and planning it would take hours.
MAX_LINE_SYSTEMS = 100


class NoFeasibleChoice(ValueError):
    """No module of the catalog carries a site pair's sync in time; the message says why."""


def unsplit_capacity(wavelengths: int, rate_gbps: float, flows: int) -> float:
    """What `flows` equal flows, each on one of `wavelengths` wavelengths of `rate_gbps`,
    carry together while the busiest wavelength (ceil(flows / wavelengths) of them) is
    full: flows / ceil(flows / wavelengths) wavelengths' worth (8 flows on 5 wavelengths:
    3 carry two each and finish last, no sooner than on 4)."""
    return flows / math.ceil(flows / wavelengths) * rate_gbps


def whole_flow_share(rates_gbps: list[float], flows: int) -> float:
    """The most each of `flows` equal flows can send at once with every flow kept whole
    on one of wavelengths of `rates_gbps`: the largest r at which they fit, sum of
    floor(rate / r) >= flows (a wavelength over ceil(flows / wavelengths) where the rates
    are equal; 0 without a wavelength)."""
    if not rates_gbps or flows < 1:
        return 0.0
    fits = [rate / k for rate in rates_gbps for k in range(1, flows + 1)]
    return max(r for r in fits
               if sum(math.floor(rate / r * (1 + 1e-9)) for rate in rates_gbps) >= flows)


def unsplit_wavelengths(need_gbps: float, rate_gbps: float, flows: int) -> int | None:
    """The fewest wavelengths of `rate_gbps` on which `flows` unsplit flows carry
    `need_gbps`, or None when even one flow per wavelength falls short."""
    for wavelengths in range(max(1, math.ceil(need_gbps / rate_gbps - 1e-9)), flows + 1):
        if unsplit_capacity(wavelengths, rate_gbps, flows) >= need_gbps * (1 - 1e-9):
            return wavelengths
    return None


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

    def carried_gbps(self, flows: int) -> float:
        """What `flows` unsplit flows carry of the capacity (`unsplit_capacity`)."""
        return self.capacity_gbps * unsplit_capacity(self.wavelengths, 1.0, flows) \
            / self.wavelengths

    @property
    def capex_usd(self) -> float:
        return sum(link.cost_usd for link in self.links)

    @property
    def power_w(self) -> float:
        return sum(link.power_w for link in self.links)

    @property
    def latency_ms(self) -> float:
        return self.links[0].latency_ms

    @property
    def launch_power_dbm(self) -> float:
        """The launch power chosen per wavelength (`auto`: the best for the lit spectrum)."""
        return self.links[0].launch_power_dbm


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


def planned_line(km: float, band: str = "C") -> LineSystem:
    """The line system a plan designs for a fibre route: the defaults a fabric file's link
    has, at the planner's launch power."""
    return LineSystem(fiber_km=km, band=band, launch_power_dbm=LAUNCH_POWER_DBM)


def line_systems_for(wavelengths: int, width_ghz: float,
                     l_band: bool = False) -> list[tuple[int, str]]:
    """Fibre pairs and band for `wavelengths` of `width_ghz`: C, and for a module that
    runs in the L band C+L too where it saves fibre pairs (fewer pairs rank first, but a
    full C+L band may not reach where a full C band does: both are candidates)."""
    in_c = math.ceil(wavelengths / slots_that_fit(width_ghz, "C"))
    in_cl = math.ceil(wavelengths / slots_that_fit(width_ghz, "C+L"))
    return [(in_c, "C")] + ([(in_cl, "C+L")] if l_band and in_cl < in_c else [])


def km_text(km: float) -> str:
    """A distance as said in a refusal: to 10 cm, so that 120.0001 km is not "120"."""
    return f"{km:.4f}".rstrip("0").rstrip(".")


def beyond_spec(module: Module, km: float) -> str | None:
    """Why `module` is not planned at `km` though the optics might carry it (past the
    reach it is specified for: OIF's 120 km for ZR, REFERENCE.md), or None."""
    if module.reach_km is None or km <= module.reach_km:
        return None
    return (f"{module.name}: specified for links up to {module.reach_km:g} km (OIF), not "
            f"{km_text(km)} km")


@dataclass(frozen=True)
class Option:
    """One (module, mode) sized for a site pair, before the optics say whether it reaches."""

    module: str
    mode: str
    rate_gbps: int
    required_gbps: float
    wavelengths: int
    line_systems: int
    band: str
    one_way_latency_s: float
    capex_usd: float
    power_w: float

    @property
    def rank(self) -> tuple:
        """Cheapest, then least power, then fewest line systems, then the faster mode."""
        return (self.capex_usd, self.power_w, self.line_systems, -self.rate_gbps, self.module)


def cheapest(a: str, b: str, km: float, bytes_per_sync: float, window_s: float,
             latency_hops: int, other_latency_s: float, catalog: Catalog,
             available: tuple[str, ...], explain: bool = True) -> Option:
    """The cheapest (module, mode) that reaches `km` and carries the sync in time.

    Every option is sized first (no optics needed); the optics are then asked in order of
    rank, and the first that reaches wins, so a plan runs GNPy for few of them.

    Parameters
    ----------
    bytes_per_sync
        The busier direction's bytes per sync.
    window_s
        Time the sync may take, before the latencies come off.
    latency_hops, other_latency_s
        One-way latencies of this pair a sync waits for (a ring's 2(M-1), a chain's 2),
        and the latency beyond this pair it waits for (`JobTraffic.other_latency_s`).
    catalog, available
        The modules (with the job's price and power overrides) and those the plan may use.
    explain
        On refusal, say for each module out of reach why, and what would work instead
        (select_mode's message: more GNPy runs); otherwise only that no mode reaches.

    Raises
    ------
    NoFeasibleChoice
        Every module fails: out of reach at this distance, or latency alone fills the
        window; the message gives each module's reason.
    """
    line = planned_line(km)
    options: list[Option] = []
    reasons: list[str] = []
    latency_bound = 0
    for name in available:
        module = catalog.module(name)
        if out_of_spec := beyond_spec(module, km):
            reasons.append(out_of_spec)
            continue
        latency_s = (line.propagation_latency_us + module.dsp_latency_us) / 1e6
        waits_s = latency_hops * latency_s + other_latency_s
        need = required_gbps(bytes_per_sync, window_s, waits_s)
        if need is None:
            latency_bound += 1
            reasons.append(f"{name}: {waits_s * 1e3:.3f} ms of latency ({latency_hops} one-way "
                           f"latencies of {latency_s * 1e3:.3f} ms"
                           + (f" and {other_latency_s * 1e3:.3f} ms over the other stage "
                              f"boundaries" if other_latency_s else "")
                           + f") fill the {window_s * 1e3:.4g} ms window")
            continue
        for mode in module.modes:
            wavelengths = max(1, math.ceil(need / (mode.rate_gbps * GOODPUT_OF_LINE_RATE)
                                           - 1e-9))
            for count, band in line_systems_for(wavelengths, mode.width_ghz,
                                                name in L_BAND_MODULES):
                options.append(Option(name, mode.name, mode.rate_gbps, need, wavelengths,
                                      count, band, latency_s,
                                      MODULES_PER_WAVELENGTH * wavelengths * module.price_usd,
                                      MODULES_PER_WAVELENGTH * wavelengths * module.power_w))
    oversized = [o for o in options if o.line_systems > MAX_LINE_SYSTEMS]
    if oversized:
        # Sized before any GNPy run: a job this large gets its answer, not an hour of
        # planning thousands of fibre pairs.
        fewest = min(oversized, key=lambda o: o.line_systems)
        reasons.append(f"{fewest.module} at {fewest.mode} and every other option needs "
                       f"{fewest.line_systems} fibre pairs or more ({fewest.wavelengths} "
                       f"wavelengths for {fewest.required_gbps:,.0f} Gb/s), over the "
                       f"{MAX_LINE_SYSTEMS} a site pair may have"
                       if len(oversized) == len(options) else
                       f"{len(oversized)} option(s) need more than {MAX_LINE_SYSTEMS} fibre pairs")
        options = [o for o in options if o.line_systems <= MAX_LINE_SYSTEMS]
    for option in sorted(options, key=lambda o: o.rank):
        module = catalog.module(option.module)
        # A full band of the option's own band: the load the line is designed for, and
        # what `choose` then plans (fewer wavelengths only fare better).
        lit = planned_line(km, option.band)
        if check_mode(module, module.mode(option.mode), lit).feasible:
            return option
    # Suggestions come from the modules the job may use, not the ones it turned off.
    usable = Catalog(tuple(m for m in catalog if m.name in available
                           and not beyond_spec(m, km)))
    for name in dict.fromkeys(o.module for o in options):     # none reaches: say why
        if not explain:
            reasons.append(f"{name}: no mode reaches {km_text(km)} km (GSNR or dispersion)")
            continue
        try:
            select_mode(name, line, None, usable)
        except OpticsError as exc:
            reasons.append(str(exc))
    head = _refusal_head(km, options, oversized, latency_bound, len(available))
    # "the catalog" in select_mode's words is what the job may use: say what it turned off
    off = [m.name for m in catalog if m.name not in available]
    raise NoFeasibleChoice(f"{a} - {b} ({km_text(km)} km): {head}: " + "; ".join(reasons)
                           + (f" (the job turned off {', '.join(off)})" if off else ""))


def _refusal_head(km: float, options: list[Option], oversized: list[Option],
                  latency_bound: int, modules: int) -> str:
    """The cause of a refusal, in a few words: what every module ran into."""
    if not options and not oversized:
        if not latency_bound:                    # every one is out of its specified reach
            return f"no module the job may use is specified for {km_text(km)} km"
        return ("latency alone fills the sync's window, whatever the module"
                if latency_bound == modules else
                f"latency alone fills the sync's window for every module specified for "
                f"{km_text(km)} km, and the others are not specified for it")
    if not options:
        return "no module carries the sync in time"
    # Every option left carries the sync in time at its rate; what fails is reach.
    return f"no module reaches {km_text(km)} km at a rate that carries the sync in time"


def choose(a: str, b: str, km: float, bytes_per_sync: float, window_s: float,
           latency_hops: int, other_latency_s: float, catalog: Catalog,
           available: tuple[str, ...], name: str | None = None) -> Choice:
    """The cheapest feasible hardware for one site pair (`cheapest`), with its line
    systems planned (`plan_link`: the figures of the wavelengths actually lit) and named
    `name` (default "a-b"), with "-1", "-2" ... when there are several."""
    best = cheapest(a, b, km, bytes_per_sync, window_s, latency_hops, other_latency_s,
                    catalog, available)
    try:
        links = tuple(
            plan_link(line_system_name(name or f"{a}-{b}", i, best.line_systems), best.module, n,
                      planned_line(km, best.band), best.mode, catalog)
            for i, n in enumerate(split(best.wavelengths, best.line_systems), start=1))
    except OpticsError as exc:      # the feasibility check above should make this unreachable
        raise NoFeasibleChoice(f"{a} - {b} ({km_text(km)} km): {best.module} at {best.mode} in the "
                               f"{best.band} band: {exc}") from None
    return Choice(a, b, km, best.module, best.mode, best.rate_gbps, best.required_gbps,
                  best.wavelengths, best.band, links, best.one_way_latency_s)


def line_system_name(base: str, index: int, count: int) -> str:
    """The name of a site pair's line system `index` of `count` in a generated fabric."""
    return base if count == 1 else f"{base}-{index}"


# Room a base name leaves for "-<index>" (at most MAX_LINE_SYSTEMS) under the fabric
# file's 48 characters for a link name.
MAX_BASE_NAME_CHARS = 48 - len(f"-{MAX_LINE_SYSTEMS}")


def pair_names(pairs: list[tuple[str, str]]) -> list[str]:
    """Base names for the site pairs' line systems: "a-b", unless one is too long for a
    fabric file or two could clash (sites "a" + "b-c" and "a-b" + "c" both give "a-b-c";
    "x-y" with two line systems gives "x-y-1"); then "dci1", "dci2" ... for every pair."""
    natural = [f"{a}-{b}" for a, b in pairs]
    clash = any(len(n) > MAX_BASE_NAME_CHARS for n in natural) or any(
        m == n or m.startswith(n + "-") for i, n in enumerate(natural)
        for j, m in enumerate(natural) if i != j)
    return [f"dci{k}" for k in range(1, len(pairs) + 1)] if clash else natural
