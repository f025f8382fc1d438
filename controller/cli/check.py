"""`dcilab check FILE [--json]`: validate a fabric file and summarize what it describes."""

from __future__ import annotations

import json
import sys

from ..emulation.topo import rate_problems
from ..fabric import Fabric, FabricError, load_fabric
from ..fabric.model import GATEWAY, LEAF, SPINE
from ..te.paths import PathEngine
from ..te.long_ways import fabric_lines, long_ways
from ..te.placement import DEFAULT_MAX_STRETCH
from ..te.protection import detours, unlabelled
from ..resources import bundled_topologies, shipped_hint, topology_arg
from .progress import optical_model


def register(sub) -> None:
    p = sub.add_parser("check", help="validate a fabric file and print its summary",
                       description="Validate a fabric file. Exit status 0 if it is usable, "
                                   "2 if not; every problem is named with its field path.")
    p.add_argument("file", type=topology_arg,
                   help="fabric file (YAML), or the name of one shipped with dcilab "
                        f"({', '.join(bundled_topologies())})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def summary(fabric: Fabric) -> dict:
    """The JSON form of a checked fabric."""
    sites = []
    roles_of: dict[str, list[str]] = {}
    for sw in fabric.switches.values():
        roles_of.setdefault(sw.site, []).append(sw.role)
    idle = _idle_gateways(fabric)
    hosts_of: dict[str, int] = {}
    for host in fabric.hosts.values():
        hosts_of[host.site] = hosts_of.get(host.site, 0) + 1
    for site in fabric.sites:
        roles = roles_of.get(site.name, [])
        sites.append({"name": site.name, "spines": roles.count(SPINE),
                      "leaves": roles.count(LEAF), "gateways": roles.count(GATEWAY),
                      "hosts": hosts_of.get(site.name, 0), "fabric_gbps": site.fabric_gbps,
                      "gateways_without_dci_link": idle.get(site.name, [])})
    links = []
    beyond = unlabelled(fabric)              # line systems past the VLAN ids of detours
    protection, shared = _protection(fabric, beyond)
    first_of: dict[str, object] = {}         # one pass: linear in the links
    for link in fabric.wavelengths():
        first_of.setdefault(link.line_system, link)
    for spec in fabric.spec.dci_links:
        plan = fabric.line_systems[spec.name]
        first = first_of[spec.name]
        links.append({"name": spec.name, "a": spec.a, "b": spec.b,
                      "a_gateway": first.a.node, "b_gateway": first.b.node,
                      "fiber_km": spec.fiber_km, "band": spec.band, "srlg": list(spec.srlg),
                      "protection": protection[spec.name], **plan.to_dict()})
    return {
        "ok": True, "name": fabric.name, "scale": fabric.scale, "sites": sites,
        "switches": len(fabric.switches), "hosts": len(fabric.hosts),
        # what a switch built by hand must be: its datapath id, and what each port reaches
        "switch_ports": [{"name": sw.name, "dpid": f"{sw.dpid:#018x}", "role": sw.role,
                          "ports": {str(port): link.name
                                    for port, link in sorted(fabric.ports(sw.name).items())}}
                         for sw in fabric.switches.values()],
        # what a host attached by hand must be given: its address, on which leaf port
        "host_addresses": [{"name": h.name, "ip": f"{h.ip}/{h.prefix_len}", "mac": h.mac,
                            "site": h.site, "leaf": h.leaf, "port": h.port}
                           for h in fabric.hosts.values()],
        "wavelength_count": sum(1 for _ in fabric.wavelengths()),
        "dci_links": links,
        "capacity_by_site_pair": [{"a": a, "b": b, "capacity_gbps": c}
                                  for (a, b), c in sorted(fabric.capacity_by_site_pair().items())],
        "warnings": sorted(set(rate_problems(fabric))) + _detour_warnings(fabric, beyond)
        + _case_warnings(fabric) + _long_way_warnings(fabric) + _shared_risk_warnings(shared)
        + _spec_warnings(fabric) + _narrow_site_warnings(fabric),
        "errors": [],
    }


def _spec_warnings(fabric: Fabric) -> list[str]:
    """Line systems longer than their module is specified for, or with wavelengths in the
    L band it is not specified for: the optics may close (GNPy says so above), but a vendor
    supports the module only within its specification, and `dcilab plan` never plans it
    there. Also a line whose wavelength count leaves its faster modes no room in the band,
    so that it runs a slower mode than its optics allow."""
    from ..optics.spectrum import C_BAND, slots_that_fit
    from ..plan.hardware import L_BAND_MODULES, beyond_spec
    out = []
    for spec in fabric.spec.dci_links:
        plan = fabric.line_systems[spec.name]
        module = fabric.catalog.module(plan.module)
        if why := beyond_spec(module, spec.fiber_km):
            out.append(f"line system {spec.name}: {why}; the optics close here, but outside "
                       f"the module's specification (`dcilab plan` chooses a ZR+ module at "
                       f"this distance)")
        count = len(plan.channels)
        running = module.mode(plan.mode)
        crowded = [] if spec.mode else [
            m for m in module.modes
            if m.rate_gbps > running.rate_gbps and slots_that_fit(m.width_ghz, spec.band) < count]
        if crowded:
            best, fit = crowded[0], slots_that_fit(crowded[0].width_ghz, spec.band)
            out.append(f"line system {spec.name}: {count} wavelengths of {best.name} "
                       f"({best.width_ghz:g} GHz) do not fit in the {spec.band} band (only "
                       f"{fit} do), so it runs {plan.mode} in narrower slots: "
                       f"{plan.capacity_gbps:g} Gb/s, where {fit} x {best.name} would carry "
                       f"{fit * best.rate_gbps:g}")
        in_l = sum(1 for c in plan.channels if c.frequency_thz * 1e6 < C_BAND.low_mhz)
        if in_l and plan.module not in L_BAND_MODULES:
            out.append(f"line system {spec.name}: {in_l} wavelength(s) in the L band, where "
                       f"{plan.module} is not specified (its implementation agreement or MSA "
                       f"defines C-band channels): an assumption; `dcilab plan` adds fibre "
                       f"pairs instead")
    return out[:10] + ([f"... and {len(out) - 10} more line systems outside their module's "
                        f"specification"] if len(out) > 10 else [])


def _narrow_site_warnings(fabric: Fabric) -> list[str]:
    """Sites whose own fabric carries less than their line systems: every gateway meets
    every spine, and every leaf every spine, at `fabric_gbps`, so DCI traffic to or from
    the site's hosts is bounded by the narrower of the two, whatever the wavelengths
    carry (a tester's 1-spine site ran its wavelengths at 23 % and wondered why)."""
    dci: dict[str, float] = {}
    used: dict[str, set[str]] = {}             # the gateways line systems end on
    for link in fabric.wavelengths():
        for site, end in ((link.site_a, link.a.node), (link.site_b, link.b.node)):
            used.setdefault(site, set()).add(end)
        for site in {link.site_a, link.site_b}:
            dci[site] = dci.get(site, 0.0) + link.rate_gbps
    out = []
    for site in fabric.spec.sites:
        ends = len(used.get(site.name, ()))
        gateways = ends * site.spines * site.fabric_gbps
        uplinks = site.leaves * site.spines * site.fabric_gbps
        if dci.get(site.name, 0.0) > min(gateways, uplinks) * (1 + 1e-9):
            out.append(f"site {site.name}: its line systems carry {dci[site.name]:g} Gb/s, "
                       f"but the {ends} gateway(s) they end on reach its spines with "
                       f"{gateways:g} Gb/s ({ends} x {site.spines} x {site.fabric_gbps:g}) "
                       f"and its leaves the spines with {uplinks:g} ({site.leaves} x "
                       f"{site.spines} x {site.fabric_gbps:g}): the site's fabric, not its "
                       f"wavelengths, bounds its DCI traffic (raise fabric_gbps or spines, "
                       f"or end line systems on more gateways)")
    return out[:10] + ([f"... and {len(out) - 10} more sites narrower than their line "
                        f"systems"] if len(out) > 10 else [])


def _detour_warnings(fabric: Fabric, beyond: list[str]) -> list[str]:
    if not beyond:
        return []
    first = len(fabric.spec.dci_links) - len(beyond)
    return [f"{len(beyond)} line system(s) after the first {first} ({beyond[0]} on) "
            f"get no pre-installed detour: the VLAN ids that label detours run out; the "
            f"controller re-routes them when cut"]


def _idle_gateways(fabric: Fabric) -> dict[str, list[str]]:
    """Per site, its gateways no line system ends on: line systems are dealt to a site's
    gateways round robin, pinned ones counted, so a pin (or more gateways than line
    systems) leaves one carrying nothing between sites."""
    used = {end.node for link in fabric.wavelengths() for end in (link.a, link.b)}
    idle: dict[str, list[str]] = {}
    for sw in fabric.switches.values():
        if sw.role == GATEWAY and sw.name not in used:
            idle.setdefault(sw.site, []).append(sw.name)
    return idle


def _long_way_warnings(fabric: Fabric) -> list[str]:
    """Line systems the routes between their sites pass by (`te/long_ways.py`): their
    capacity still counts in the site pair's, so say so."""
    long = long_ways(fabric_lines(fabric))
    return [f"line system {w.line} ({w.latency_ms:.3f} ms) is over {DEFAULT_MAX_STRETCH:g} x "
            f"the shortest way between {w.a} and {w.b} ({w.shortest_ms:.3f} ms): traffic "
            f"between them takes that way, and elephants are steered only within "
            f"{DEFAULT_MAX_STRETCH:g} x "
            f"(controller --max-stretch), so {w.line} carries theirs only when it fails; "
            f"reservations, and routes between other sites, may use it. The capacity per "
            f"site pair counts it"
            for w in long[:10]] + (
        [f"... and {len(long) - 10} more line systems over {DEFAULT_MAX_STRETCH:g} x the "
         f"shortest way"] if len(long) > 10 else [])


def _case_warnings(fabric: Fabric) -> list[str]:
    """Risk groups whose names differ only in case: names are compared exactly, so
    `Duct-7` and `duct-7` are two groups, and line systems in both get detours through
    each other. Most likely one typo'd duct, so it is said (a few names, not thousands)."""
    spelled: dict[str, list[str]] = {}
    for spec in fabric.spec.dci_links:
        for group in spec.srlg:
            names = spelled.setdefault(group.casefold(), [])
            if group not in names:
                names.append(group)
    clashes = [names for names in spelled.values() if len(names) > 1]
    sites: dict[str, list[str]] = {}
    for site in fabric.spec.sites:
        sites.setdefault(site.name.casefold(), []).append(site.name)
    same_site = [f"sites {' and '.join(repr(n) for n in names[:4])} differ only in case: a "
                 f"typo, or names a reader will confuse" for names in sites.values()
                 if len(names) > 1][:10]
    return same_site + [f"risk groups {' and '.join(repr(n) for n in names[:4])} differ only in case: "
            f"they are {len(names)} groups, and line systems in one may be protected through "
            f"the other" for names in clashes[:10]] + (
        [f"... and {len(clashes) - 10} more risk groups differing only in case"]
        if len(clashes) > 10 else [])


def _shared_risk_warnings(shared: list[str]) -> list[str]:
    return [f"line system {name} has detours only through line systems sharing one of its "
            f"risk groups: a cut of that group (one duct) takes the detours with it"
            for name in shared[:10]] + (
        [f"... and {len(shared) - 10} more line systems whose detours share a risk group"]
        if len(shared) > 10 else [])


def _protection(fabric: Fabric, beyond: list[str]) -> tuple[dict[str, str], list[str]]:
    """How each line system is protected when it is cut, in words; and the line systems
    with detours, none of them risk-disjoint."""
    found = {}
    disjoint: dict[str, bool] = {}
    for d in detours(fabric, PathEngine(fabric)):
        disjoint[d.line_system] = disjoint.get(d.line_system, False) or d.disjoint
        via = list(dict.fromkeys(h.link.line_system for h in d.hops if h.link.line_system))
        kind = "risk-disjoint" if d.disjoint else "shares a risk group"
        found.setdefault(d.line_system, []).append(f"{d.gateway}: via {', '.join(via)} ({kind})")
    for name in beyond:
        found[name] = [f"no detour pre-installed: the VLAN ids that label detours run out "
                       f"after the first {len(fabric.spec.dci_links) - len(beyond)} line "
                       f"systems; when it is cut, the controller re-routes what it carried"]
    return ({spec.name: "; ".join(found.get(spec.name, [])) or
             "no detour: only its other wavelengths protect it"
             for spec in fabric.spec.dci_links},
            [spec.name for spec in fabric.spec.dci_links if disjoint.get(spec.name) is False])


_PLURAL = {"switch": "switches", "leaf": "leaves"}


def _n(count: int, word: str) -> str:
    """`count word`, the word plural unless one (1 spine, 2 spines, 1 DCI link)."""
    return f"{count} {word if count == 1 else _PLURAL.get(word, word + 's')}"


def _address_range(ips: list[str]) -> str:
    """10.1.1.1-4 for a leaf's hosts (numbered from 1, in order), else the list."""
    heads = {ip.rsplit(".", 1)[0] for ip in ips}
    ends = [int(ip.rsplit(".", 1)[1]) for ip in ips]
    if len(heads) == 1 and ends == list(range(ends[0], ends[0] + len(ends))):
        return ips[0] if len(ips) == 1 else f"{ips[0]}-{ends[-1]}"
    return ", ".join(ips)


def _print_text(path: str, s: dict) -> None:
    print(f"{path}: fabric {s['name']!r} is valid (scale {s['scale']:g})")
    print(f"  {_n(len(s['sites']), 'site')}, {_n(s['switches'], 'switch')}, "
          f"{_n(s['hosts'], 'host')}, {_n(len(s['dci_links']), 'DCI link')}, "
          f"{_n(s['wavelength_count'], 'wavelength')}")
    on_leaf_of: dict[str, dict[str, list[str]]] = {}         # site -> leaf -> addresses
    for host in s["host_addresses"]:
        on_leaf_of.setdefault(host["site"], {}).setdefault(host["leaf"], []).append(
            host["ip"].split("/")[0])
    for site in s["sites"]:
        idle = site["gateways_without_dci_link"]
        print(f"  site {site['name']}: {_n(site['spines'], 'spine')}, "
              f"{_n(site['leaves'], 'leaf')}, {_n(site['gateways'], 'gateway')}"
              + (f" ({', '.join(idle)}: no DCI link ends there)" if idle else "")
              + f", {_n(site['hosts'], 'host')}, {site['fabric_gbps']:g} Gb/s")
        on_leaf = on_leaf_of.get(site["name"], {})
        if on_leaf:
            print("    hosts: " + ", ".join(f"{_address_range(ips)} on {leaf}"
                                          for leaf, ips in on_leaf.items()))
    for link in s["dci_links"]:
        print(f"\n  DCI link {link['name']}: {link['a_gateway']} <-> {link['b_gateway']}, "
              f"{link['fiber_km']:g} km in {link['spans']} span{'s' if link['spans'] != 1 else ''}, "
              f"{link['band']} band, "
              f"{link['module']} {link['mode']}, launch {link['launch_power_dbm']:g} dBm"
              f"{' (auto)' if link['launch_power_auto'] else ''}, "
              f"{link['capacity_gbps']:g} Gb/s, {link['latency_ms']:.3f} ms, "
              f"{link['power_w']:g} W, ${link['cost_usd']:,.0f}")
        print(f"    SRLG: {', '.join(link['srlg']) or 'none'}; if cut: {link['protection']}")
        print(f"    {'wavelength':<18} {'THz':>9} {'mode':>6} {'Gb/s':>6} {'GSNR dB':>8} "
              f"{'OSNR dB':>8} {'req dB':>7} {'margin':>7} {'ps/nm':>8} {'ms':>8}")
        for w in link["wavelengths"]:
            print(f"    {w['name']:<18} {w['frequency_thz']:>9.4f} {w['mode']:>6} "
                  f"{w['rate_gbps']:>6g} {w['gsnr_db']:>8.2f} {w['osnr_ase_db']:>8.2f} "
                  f"{w['required_osnr_db']:>7.2f} "
                  f"{w['margin_db']:>7.2f} {w['dispersion_ps_nm']:>8.0f} {w['latency_ms']:>8.4f}")
    print("\n  capacity per site pair:")
    for pair in s["capacity_by_site_pair"]:
        print(f"    {pair['a']} <-> {pair['b']}: {pair['capacity_gbps']:g} Gb/s")
    for warning in s["warnings"]:
        print(f"  warning: {warning}")


def run(args) -> int:
    try:
        fabric = load_fabric(args.file, optical_model("check"))
    except FabricError as exc:
        if args.json:
            print(json.dumps({"ok": False, "file": args.file,
                              "errors": [i.to_dict() for i in exc.issues]}, indent=2))
        else:
            print(f"{exc}{shipped_hint(args.file)}", file=sys.stderr)
        return 2
    s = summary(fabric)
    if args.json:
        print(json.dumps({"file": args.file, **s}, indent=2))
    else:
        _print_text(args.file, s)
    return 0
