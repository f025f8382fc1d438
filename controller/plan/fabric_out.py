"""A fabric file for a planned job: its DCI links as planned, small sites, a safe scale.

The DCI links are exactly the plan's line systems (module, pinned mode, wavelengths,
band, launch power `auto` as planned), so the emulated capacity of every site pair is the
planned capacity times `scale`.
Sites are small leaf-spine fabrics (the emulation needs hosts to send from, not a real
site's thousands of GPUs), with one gateway per line system they terminate and a fabric
rate 1.5 x their DCI capacity so that the wavelengths stay the bottleneck.

`scale` keeps the emulation honest on a 2-core machine (ENVIRONMENT.md): the job's
concurrent sync, every loaded direction at full planned capacity, stays within
`CPU_BUDGET_MBPS` in all (userspace OVS forwards only 0.6-0.9 Gb/s over several hops),
and no link exceeds Mininet's 1000 Mb/s.
"""

from __future__ import annotations

import yaml

from ..fabric.model import HTB_MIN_MBPS, MININET_MAX_MBPS, rounded, sum_by_site
from ..fabric.schema import MAX_FABRIC_GBPS
from .hardware import LAUNCH_POWER_DBM
from .planner import JobPlan
from .traffic import offered_gbps

CPU_BUDGET_MBPS = 40.0
MAX_SCALE = 1e-4
SPINES, LEAVES, HOSTS_PER_LEAF = 1, 2, 2
MAX_GATEWAYS = 8
# Sites' links run this much faster than their DCI capacity, so that the wavelengths, not
# a spine or host link, are the bottleneck even with TCP's overhead.
FABRIC_HEADROOM = 1.5


class FabricOutError(ValueError):
    """A plan whose fabric file `dcilab check` would refuse; the message names the limit."""


def emulation_scale(plan: JobPlan) -> float:
    """The largest scale (two significant digits, rounded down) within the CPU budget; but
    never one that puts a wavelength under what htb shapes faithfully (a job of many
    wavelengths then offers more than the budget, which `train` warns of)."""
    site_gbps = max(_site_gbps(plan).values()) * FABRIC_HEADROOM
    within = round_down_2(min(MAX_SCALE, CPU_BUDGET_MBPS / (_loaded_gbps(plan) * 1000),
                              MININET_MAX_MBPS / (site_gbps * 1000)))
    slowest = min(c.rate_gbps for c in plan.choices)
    floor = HTB_MIN_MBPS / (slowest * 1000)
    return within if within >= floor else round_up_2(floor)


def at_htb_floor(plan: JobPlan, scale: float) -> bool:
    """Whether `scale` is the htb floor's (`emulation_scale`), over the CPU budget."""
    return _loaded_gbps(plan) * 1000 * scale > CPU_BUDGET_MBPS * 1.01


def _loaded_gbps(plan: JobPlan) -> float:
    """What the job's sync offers the DCI at the plan's full capacity, real Gb/s."""
    return offered_gbps(plan.traffic, {(c.a, c.b): c.capacity_gbps for c in plan.choices})


def round_up_2(x: float) -> float:
    """`x` (> 0) rounded up to two significant digits."""
    return rounded(x, 2, up=True)


def round_down_2(x: float) -> float:
    """`x` (> 0) rounded down to two significant digits: never over the budget it meets."""
    return rounded(x, 2, up=False)


def site_fabric_gbps(site: str, dci_gbps: float) -> float:
    """A site's link rate: FABRIC_HEADROOM x its DCI capacity (at least 400G); a rate over
    the fabric file's limit is refused, naming both."""
    gbps = max(400.0, FABRIC_HEADROOM * dci_gbps)
    if gbps > MAX_FABRIC_GBPS:
        raise FabricOutError(
            f"site {site}: its DCI capacity of {dci_gbps:,.0f} Gb/s needs fabric_gbps "
            f"{gbps:,.0f} ({FABRIC_HEADROOM:g} x, so that the wavelengths stay the "
            f"bottleneck), over a fabric file's limit of {MAX_FABRIC_GBPS:,.0f}: no fabric "
            f"file can emulate this plan")
    return gbps


def _site_gbps(plan: JobPlan) -> dict[str, float]:
    return sum_by_site((s.name for s in plan.job.spec.sites),
                       ((c.a, c.b, c.capacity_gbps) for c in plan.choices))


def fabric_data(plan: JobPlan) -> dict:
    site_gbps = _site_gbps(plan)
    ends = sum_by_site((s.name for s in plan.job.spec.sites),
                       ((c.a, c.b, c.line_systems) for c in plan.choices))
    sites = [{"name": s.name, "spines": SPINES, "leaves": LEAVES,
              "hosts_per_leaf": HOSTS_PER_LEAF,
              "gateways": max(1, min(MAX_GATEWAYS, ends[s.name])),
              "fabric_gbps": site_fabric_gbps(s.name, site_gbps[s.name])}
             for s in plan.job.spec.sites]
    links = []
    for c in plan.choices:
        for link in c.links:
            links.append({"name": link.name, "a": c.a, "b": c.b, "fiber_km": c.km,
                          "module": c.module, "mode": c.mode,
                          "wavelengths": len(link.channels), "band": c.band,
                          "launch_power_dbm": LAUNCH_POWER_DBM})
    data = {"name": plan.job.name[:64], "scale": emulation_scale(plan), "sites": sites,
            "dci_links": links}
    # The job's prices and power for the modules used, so `check` costs the links as the
    # plan did.
    modules = {}
    for name in dict.fromkeys(c.module for c in plan.choices):
        choice = plan.job.spec.modules.get(name)
        figures = {k: v for k, v in (("price_usd", choice and choice.price_usd),
                                     ("power_w", choice and choice.power_w)) if v is not None}
        if figures:
            modules[name] = figures
    if modules:
        data["modules"] = modules
    return data


def fabric_yaml(plan: JobPlan) -> str:
    """The fabric file's text, with a header saying where it came from."""
    data = fabric_data(plan)
    floor = at_htb_floor(plan, data["scale"])
    header = (f"# Generated by `dcilab plan` for job {plan.job.name!r}: the planned DCI line "
              f"systems,\n# small leaf-spine sites, and a scale ({data['scale']:g}) that "
              + (f"keeps every wavelength at the\n# {HTB_MIN_MBPS:g} Mb/s htb shapes "
                 f"faithfully: more than the {CPU_BUDGET_MBPS:g} Mb/s in all a 2-core machine\n"
                 f"# forwards, for a job of this many wavelengths.\n" if floor else
                 f"keeps the job's sync within\n# {CPU_BUDGET_MBPS:g} Mb/s in all on the "
                 f"emulation.\n"))
    return header + yaml.safe_dump(data, sort_keys=False)
