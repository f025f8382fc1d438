"""A checked fabric file expanded into what exists: switches, ports, hosts, links, wavelengths.

Everything here is derived deterministically from the file, so the emulation and the
controller, each reading the same file, agree on every switch, port number and address
before a switch connects.

Naming (Linux interface names are at most 15 characters, so OVS names are short):
  switch  user name `<site>-spine1` / `<site>-leaf1` / `<site>-gw1`;
          bridge `dl<S>sp1` / `dl<S>lf1` / `dl<S>gw1` (S = site index from 1, file order)
  port    interface `<bridge>p<port>`
  host    user name `<site>-h<n>`, node `dl<S>h<n>`, address 10.S.L.n/8 (L = leaf index)
Port numbers:
  leaf    1..H hosts, then one port per spine
  spine   one port per leaf, then one per gateway
  gateway one port per spine, then one per wavelength ending there (links in file order)
A DCI link ends on one gateway per site, round-robin over the link ends at that site in
file order (the n-th end lands on gateway ((n-1) mod gateways) + 1) unless `a_gateway` /
`b_gateway` pins it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable, Iterable, Iterator

from ..optics import (DEFAULT_CATALOG, Catalog, Channel, LineSystem, LinkPlan, OpticsError,
                      plan_link)
from ..optics.catalog import OverrideError
from ..optics.line import LAUNCH_POWER_RANGE_DBM
from ..optics.spectrum import slots_that_fit
from ..names import NAME_PREFIX
from .errors import FabricIssue
from .schema import DciLinkSpec, FabricSpec, SiteSpec

class Role(StrEnum):
    """A switch's role; the one definition (the API, metrics and CLI use these values)."""
    SPINE = "spine"
    LEAF = "leaf"
    GATEWAY = "gateway"


SPINE, LEAF, GATEWAY = Role.SPINE, Role.LEAF, Role.GATEWAY
_ROLE_CODE = {SPINE: 1, LEAF: 2, GATEWAY: 3}
_ROLE_SHORT = {SPINE: "sp", LEAF: "lf", GATEWAY: "gw"}
_ROLE_LABEL = {SPINE: "spine", LEAF: "leaf", GATEWAY: "gw"}

# Reserved traffic crosses the fabric, leaf to leaf, with this source MAC (locally
# administered), and the egress leaf puts the sending host's back: every link between
# switches queues it ahead of best effort by it, as a router queues by class of service.
# Not a DSCP or a VLAN priority: a DSCP rewrite loses the host's own marking (a reservation
# may select by it), VLAN ids already label detours and standbys, and OVS's userspace
# datapath hands the kernel's queues no `set_queue` priority. On a routed hop the source
# MAC is the sender's.
RESERVED_CLASS_MAC = "02:dc:00:00:00:01"

# An intra-site hop: ~200 m of fibre plus a switch. Small against any DCI link, and equal
# for every hop, so among equal-latency DCI paths the one with fewer hops wins.
INTRA_SITE_LATENCY_MS = 0.001

class LinkKind(StrEnum):
    """A link's kind: host-leaf, inside a site, or a DCI wavelength; the one definition."""
    HOST = "host"
    FABRIC = "fabric"
    DCI = "dci"


HOST, FABRIC, DCI = LinkKind.HOST, LinkKind.FABRIC, LinkKind.DCI


@dataclass(frozen=True)
class Switch:
    name: str        # user-facing, e.g. dc1-leaf2
    bridge: str      # OVS bridge / Mininet node name, e.g. dl1lf2
    dpid: int
    role: str        # spine | leaf | gateway
    site: str
    index: int       # 1-based within its role and site

    def interface(self, port: int) -> str:
        return f"{self.bridge}p{port}"


@dataclass(frozen=True)
class Host:
    name: str        # e.g. dc1-h3
    node: str        # Mininet node name, e.g. dl1h3
    site: str
    leaf: str        # switch name
    port: int        # port on its leaf
    ip: str
    mac: str
    prefix_len: int = 8

    @property
    def interface(self) -> str:
        return f"{self.node}-eth0"


@dataclass(frozen=True)
class Endpoint:
    node: str        # switch name, or host name for the host end of an access link
    port: int        # 0 on a host


@dataclass(frozen=True)
class Link:
    """A point-to-point link; every wavelength of a DCI line system is one Link."""

    name: str
    kind: str                 # host | fabric | dci
    a: Endpoint
    b: Endpoint
    rate_gbps: float          # real (unscaled) rate
    latency_ms: float
    site_a: str
    site_b: str
    line_system: str | None = None     # DCI link name, for a wavelength
    channel: Channel | None = None     # its optical channel

    @property
    def wavelength(self) -> str | None:
        return self.channel.name if self.channel else None

    def other(self, node: str) -> Endpoint:
        return self.b if self.a.node == node else self.a

    def end(self, node: str) -> Endpoint:
        """The end at `node` (its port there is the link's out port from `node`)."""
        return self.a if self.a.node == node else self.b


@dataclass
class Fabric:
    """The expanded fabric. Build it with `build_fabric`; treat it as read-only."""

    spec: FabricSpec
    switches: dict[str, Switch]
    hosts: dict[str, Host]
    links: list[Link]
    line_systems: dict[str, LinkPlan]
    _ports: dict[str, dict[int, Link]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for link in self.links:
            for end in (link.a, link.b):
                if end.node in self.switches:
                    self._ports.setdefault(end.node, {})[end.port] = link
        self._by_dpid = {s.dpid: s for s in self.switches.values()}
        self._by_ip = {h.ip: h for h in self.hosts.values()}
        self._by_name = {link.name: link for link in self.links}

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def scale(self) -> float:
        return self.spec.scale

    @property
    def sites(self) -> list[SiteSpec]:
        return list(self.spec.sites)

    @property
    def catalog(self) -> Catalog:
        """The modules its line systems were planned with (the file's overrides applied)."""
        return module_catalog(self.spec)

    def switch_by_dpid(self, dpid: int) -> Switch | None:
        return self._by_dpid.get(dpid)

    def host_by_ip(self, ip: str) -> Host | None:
        return self._by_ip.get(ip)

    def link(self, name: str) -> Link:
        return self._by_name[name]

    def ports(self, switch: str) -> dict[int, Link]:
        """Port number -> link, for every port the file gives `switch`."""
        return self._ports.get(switch, {})

    def hosts_of(self, site: str) -> list[Host]:
        return [h for h in self.hosts.values() if h.site == site]

    def wavelengths(self) -> Iterator[Link]:
        return (link for link in self.links if link.kind == DCI)

    def capacity_by_site_pair(self) -> dict[tuple[str, str], float]:
        """Total DCI capacity (Gb/s, real) between each pair of sites joined directly."""
        out: dict[tuple[str, str], float] = {}
        specs = {d.name: d for d in self.spec.dci_links}
        for plan_name, plan in self.line_systems.items():
            spec = specs[plan_name]
            pair = tuple(sorted((spec.a, spec.b)))
            out[pair] = out.get(pair, 0.0) + plan.capacity_gbps
        return out

    def dci_gbps_by_site(self) -> dict[str, float]:
        """Each site's DCI capacity (Gb/s, real), over all its site pairs."""
        return sum_by_site((s.name for s in self.sites),
                           ((a, b, gbps) for (a, b), gbps in self.capacity_by_site_pair().items()))


def sum_by_site(sites: Iterable[str], between: Iterable[tuple[str, str, float]]
                ) -> dict[str, float]:
    """Each site's total of the values of the site pairs it is an end of (a fabric's
    line systems, or a plan's before any fabric exists)."""
    out = dict.fromkeys(sites, 0)
    for a, b, value in between:
        out[a] += value
        out[b] += value
    return out


def _dpid(site_index: int, role: str, index: int) -> int:
    return (site_index << 16) | (_ROLE_CODE[role] << 8) | index


def _switch(site: SiteSpec, site_index: int, role: str, index: int) -> Switch:
    return Switch(
        name=f"{site.name}-{_ROLE_LABEL[role]}{index}",
        bridge=f"{NAME_PREFIX}{site_index}{_ROLE_SHORT[role]}{index}",
        dpid=_dpid(site_index, role, index), role=role, site=site.name, index=index)


def optical_line(spec: DciLinkSpec) -> LineSystem:
    """The line system (fibre, spans, amplifiers, launch power, band) a DCI link describes."""
    return LineSystem(
        fiber_km=spec.fiber_km, span_km=spec.span_km,
        attenuation_db_per_km=spec.attenuation_db_per_km, amplifier_nf_db=spec.amplifier_nf_db,
        launch_power_dbm=spec.launch_power_dbm, margin_db=spec.margin_db,
        dispersion_ps_nm_km=spec.dispersion_ps_nm_km, band=spec.band)


def module_catalog(spec: FabricSpec) -> Catalog:
    """The modules the fabric is planned with: the default catalog with the file's
    `modules:` overrides applied (OpticsError when one does not make sense)."""
    if not spec.modules:
        return DEFAULT_CATALOG
    from ..optics.ber import threshold_osnr_db    # scipy: only for a file that overrides
    catalog = DEFAULT_CATALOG.with_overrides(
        {name: o.model_dump(exclude_none=True) for name, o in spec.modules.items()})
    for name, override in spec.modules.items():
        for mode_name, figures in (override.modes or {}).items():
            if figures.required_osnr_db is None and mode_name in DEFAULT_CATALOG.module(
                    name).mode_names:
                continue                     # its required OSNR is the catalog's, sourced
            mode = catalog.module(name).mode(mode_name)
            ideal = threshold_osnr_db(mode)
            if mode.required_osnr_db < ideal:
                raise OverrideError(
                    f"required_osnr_db {mode.required_osnr_db:g} of {name} {mode_name} is "
                    f"below the {ideal:.1f} dB an ideal {mode.modulation} receiver needs at "
                    f"{mode.baud_gbd:g} GBd to reach the {mode.fec} threshold: no real "
                    f"transceiver does better", (name, "modes", mode_name))
    return catalog


# GNPy's work a fabric file may ask for: fibre spans propagated, summed over its distinct
# line systems (identical ones are computed once). A span costs about 1 ms (3 where no
# mode of the module crosses the line and every other is tried), so this is 20-60 s at
# most: 16 384 identical line systems fit, as do 500 distinct ones of 3 000 km in 80 km
# spans; 499 distinct lines of 500 ten-kilometre spans (a 48 kB file an outside tester
# wrote, 3 min 17 s under the old bound of 250 000) do not.
MAX_GNPY_SPANS = 20_000


def plan_line_systems(spec: FabricSpec, progress: Callable[[int, int], None] | None = None
                      ) -> tuple[dict[str, LinkPlan], list[FabricIssue]]:
    """The optical plan of every DCI link; infeasible links become issues at `dci_links[i]`.
    `progress(done, total)` is told after each line system (GNPy runs can take minutes)."""
    issues: list[FabricIssue] = []
    try:
        catalog = module_catalog(spec)
    except OpticsError as exc:
        # Plan on the catalog as it stands, so a link's own errors are reported too.
        keys = exc.keys if isinstance(exc, OverrideError) else ()   # the module (and mode)
        issues.append(FabricIssue(".".join(("modules", *keys)), str(exc)))
        catalog = DEFAULT_CATALOG
    refused: dict[int, FabricIssue] = {}              # by link, reported in file order
    lines: dict[int, LineSystem] = {}
    for i, link in enumerate(spec.dci_links):         # no GNPy yet: what it would be asked
        try:
            line = optical_line(link)
            _refuse_beyond_reach(link, line, catalog)
            lines[i] = line
        except OpticsError as exc:
            refused[i] = FabricIssue(f"dci_links[{i}]{_field_at_fault(link, catalog)}",
                                     str(exc))
    distinct = {(line, spec.dci_links[i].module, spec.dci_links[i].wavelengths,
                 spec.dci_links[i].mode): line.spans for i, line in lines.items()}
    spans = sum(distinct.values())
    if spans > MAX_GNPY_SPANS:
        return {}, issues + [refused[i] for i in sorted(refused)] + [FabricIssue("dci_links", (
            f"its optical model would propagate {spans:,} fibre spans through GNPy "
            f"({len(distinct):,} distinct line systems; a millisecond or more each); at "
            f"most {MAX_GNPY_SPANS:,}: fewer distinct line systems, or longer spans "
            f"(span_km)"))]
    plans = {}
    for done, (i, line) in enumerate(lines.items(), start=1):
        link = spec.dci_links[i]
        try:
            plans[link.name] = plan_link(link.name, link.module, link.wavelengths,
                                         line, mode=link.mode, catalog=catalog)
        except OpticsError as exc:
            refused[i] = FabricIssue(f"dci_links[{i}]{_field_at_fault(link, catalog)}",
                                     str(exc))
        if progress is not None:
            progress(done, len(lines))
    return plans, issues + [refused[i] for i in sorted(refused)]


# Planck's constant; the lowest frequency either band reaches (L band, THz), where a
# photon's noise is least; the OSNR reference bandwidth (0.1 nm).
_PLANCK = 6.62607015e-34
_LOWEST_THZ = 184.0
_REFERENCE_HZ = 12.5e9


def osnr_ase_bound_db(line: LineSystem) -> float:
    """An upper bound of the OSNR (per 0.1 nm) any wavelength can have at the end of
    `line`, whatever its mode: amplifier noise alone (no NLI, no transmitter noise, gain
    minus one), at the highest launch power a line may use, whatever the file sets: a
    line refused on this bound is refused for every launch power, so no suggestion of
    one is lost. GNPy's GSNR is below it (measured: 0.7 to 40 dB below, 1 to 500 spans);
    computing it costs no GNPy run."""
    gain = 10 ** (line.span_loss_db / 10)
    noise_w = (line.spans * 10 ** (line.amplifier_nf_db / 10) * (gain - 1)
               * _PLANCK * _LOWEST_THZ * 1e12 * _REFERENCE_HZ)
    return math.inf if noise_w <= 0 else \
        LAUNCH_POWER_RANGE_DBM[1] - 30 - 10 * math.log10(noise_w)


def _refuse_beyond_reach(link: DciLinkSpec, line: LineSystem, catalog: Catalog) -> None:
    """OpticsError, before any GNPy run, when no mode of any module in the catalog can
    cross `line`: each exceeds its dispersion tolerance or needs more OSNR than even the
    bound above. GNPy would otherwise propagate every mode of every module, with
    suggestions, over up to 500 spans: a second and a half per link, for an answer
    known beforehand. A line some mode might cross is left to GNPy, so its figures and
    suggestions are as before."""
    bound = osnr_ase_bound_db(line)
    for module in catalog:
        for mode in module.modes:
            if (mode.cd_tolerance_ps_nm >= line.dispersion_ps_nm
                    and mode.required_osnr_db + line.margin_db <= bound):
                return
    try:
        module = catalog.module(link.module)
    except OpticsError:
        return                  # the planner names the unknown module
    # Say only what rules its modes out: dispersion for some, noise for the others.
    too_dispersed = [m for m in module.modes if m.cd_tolerance_ps_nm < line.dispersion_ps_nm]
    too_noisy = [m for m in module.modes if m not in too_dispersed]
    widest_cd = max(module.modes, key=lambda m: m.cd_tolerance_ps_nm)
    dispersion = (f"accumulated dispersion {line.dispersion_ps_nm:.0f} ps/nm exceeds "
                  + (f"every mode's tolerance (its most tolerant, {widest_cd.name}, takes "
                     f"{widest_cd.cd_tolerance_ps_nm:.0f})" if not too_noisy else
                     f"the tolerance of {', '.join(m.name for m in too_dispersed)}"))
    noise = ""
    if too_noisy:
        least = min(too_noisy, key=lambda m: m.required_osnr_db)
        noise = ((f"for {', '.join(m.name for m in too_noisy)} " if too_dispersed else "")
                 + f"the amplifier noise of {line.spans} spans leaves an OSNR of at most "
                 f"{bound:.1f} dB even at the highest launch power, under the "
                 f"{least.required_osnr_db:.1f} dB + {line.margin_db:.1f} dB margin "
                 + (f"even {least.name} needs" if too_dispersed
                    else f"its least demanding mode, {least.name}, needs"))
    why = "; and ".join(x for x in (dispersion if too_dispersed else "", noise) if x)
    raise OpticsError(
        f"{module.name} cannot cross {line.fiber_km:g} km, nor can any module in the "
        f"catalog: {why}; shorten the link or regenerate part way")


def _field_at_fault(link: DciLinkSpec, catalog: Catalog) -> str:
    """The field a link's optics error is about, when it is one field: an unknown module
    or mode, or more wavelengths than the band holds; "" for the line as a whole."""
    try:
        module = catalog.module(link.module)
    except OpticsError:
        return ".module"
    if link.mode is not None and link.mode not in module.mode_names:
        return ".mode"
    modes = [module.mode(link.mode)] if link.mode else module.modes
    if all(link.wavelengths > slots_that_fit(m.width_ghz, link.band) for m in modes):
        return ".wavelengths"
    return ""


def build_fabric(spec: FabricSpec, plans: dict[str, LinkPlan]) -> Fabric:
    """Expand a checked spec (see checks.check_spec) and its optical plans into a Fabric."""

    switches: dict[str, Switch] = {}
    hosts: dict[str, Host] = {}
    links: list[Link] = []
    site_index = {s.name: i for i, s in enumerate(spec.sites, start=1)}

    def fabric_link(a: Switch, pa: int, b: Switch, pb: int, rate: float) -> Link:
        return Link(f"{a.name}~{b.name.removeprefix(a.site + '-')}", FABRIC,
                    Endpoint(a.name, pa), Endpoint(b.name, pb), rate, INTRA_SITE_LATENCY_MS,
                    a.site, b.site)

    for site in spec.sites:
        s = site_index[site.name]
        spines = [_switch(site, s, SPINE, j) for j in range(1, site.spines + 1)]
        leaves = [_switch(site, s, LEAF, i) for i in range(1, site.leaves + 1)]
        gateways = [_switch(site, s, GATEWAY, g) for g in range(1, site.gateways + 1)]
        switches.update((sw.name, sw) for sw in spines + leaves + gateways)
        n = 0
        for leaf in leaves:
            for k in range(1, site.hosts_per_leaf + 1):
                n += 1
                host = Host(name=f"{site.name}-h{n}", node=f"{NAME_PREFIX}{s}h{n}", site=site.name,
                            leaf=leaf.name, port=k, ip=f"10.{s}.{leaf.index}.{n}",
                            mac=f"02:00:0a:{s:02x}:{leaf.index:02x}:{n:02x}")
                hosts[host.name] = host
                links.append(Link(host.name, HOST, Endpoint(host.name, 0), Endpoint(leaf.name, k),
                                  site.fabric_gbps, INTRA_SITE_LATENCY_MS, site.name, site.name))
            for j, spine in enumerate(spines, start=1):
                links.append(fabric_link(leaf, site.hosts_per_leaf + j, spine, leaf.index,
                                         site.fabric_gbps))
        for gw in gateways:
            for j, spine in enumerate(spines, start=1):
                links.append(fabric_link(gw, j, spine, site.leaves + gw.index, site.fabric_gbps))

    # DCI: each wavelength is its own link between the two gateways.
    sites = {s.name: s for s in spec.sites}
    ends_seen = {s.name: 0 for s in spec.sites}
    next_port = {sw.name: sites[sw.site].spines + 1 for sw in switches.values() if sw.role == GATEWAY}
    for dci in spec.dci_links:
        gw = {}
        for end in ("a", "b"):
            site = sites[getattr(dci, end)]
            pinned = getattr(dci, f"{end}_gateway")
            index = pinned if pinned is not None else ends_seen[site.name] % site.gateways + 1
            ends_seen[site.name] += 1
            gw[end] = switches[f"{site.name}-gw{index}"]
        plan = plans[dci.name]
        for channel in plan.channels:
            pa, pb = next_port[gw["a"].name], next_port[gw["b"].name]
            next_port[gw["a"].name] += 1
            next_port[gw["b"].name] += 1
            links.append(Link(channel.name, DCI, Endpoint(gw["a"].name, pa),
                              Endpoint(gw["b"].name, pb), channel.rate_gbps, channel.latency_ms,
                              dci.a, dci.b, line_system=dci.name, channel=channel))
    return Fabric(spec, switches, hosts, links, plans)


# Mininet's TCLink refuses rates above this (Mb/s).
MININET_MAX_MBPS = 1000.0
# Linux's htb, which Mininet shapes every link with, gives a class a quantum of its rate
# over r2q (10) bytes, and below 1000 bytes it warns and shapes loosely: a link under this
# rate (Mb/s) is not emulated faithfully (an outside tester's scale 1e-9: 152 warnings, 11 %
# of pings lost inside one site, iperf3 never ended).
HTB_MIN_MBPS = 0.08


def rounded(x: float, digits: int, up: bool) -> float:
    """`x` (> 0) rounded up or down to `digits` significant digits: a limit said as a
    figure to use must itself keep to the limit (1.33e-07 suggested for 1.3333e-07
    still fell short: a re-tester's)."""
    exponent = math.floor(math.log10(x)) - digits + 1
    # 2.9e-5 / 1e-6 is 28.999...: floor would take it to 28 without the hair added back.
    scaled = x / 10 ** exponent
    mantissa = math.ceil(scaled * (1 - 1e-12)) if up else math.floor(scaled * (1 + 1e-12))
    return float(f"{mantissa}e{exponent}")


def scaled_mbps(fabric: Fabric, rate_gbps: float) -> float:
    """The emulated rate of a real rate, in Mb/s, to 12 significant digits: 1562.5 Gb/s
    at scale 0.00064 is 1000 Mb/s, which floating point makes 1000.0000000000001, over
    Mininet's limit (it then ignores the limit; `check` suggested that scale)."""
    return float(f"{rate_gbps * 1000.0 * fabric.scale:.12g}")
