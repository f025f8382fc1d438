"""Checks across fields of a schema-valid fabric file: references, names, address space."""

from __future__ import annotations

import networkx as nx

from .errors import FabricIssue
from .schema import FabricSpec

# Hosts get 10.S.L.n: one octet each for the site, the leaf and the host within the site.
MAX_HOSTS_PER_SITE = 254


def _duplicates(names: list[str], field: str) -> list[FabricIssue]:
    first: dict[str, int] = {}
    issues = []
    for i, name in enumerate(names):
        if name in first:
            issues.append(FabricIssue(f"{field}[{i}].name",
                                      f"name {name!r} is already used by {field}[{first[name]}]"))
        else:
            first[name] = i
    return issues


def _node_names(spec: FabricSpec) -> dict[str, str]:
    """Every switch and host name the sites make (model.py names them so), to what it is."""
    names = {}
    for site in spec.sites:
        for role, count in (("spine", site.spines), ("leaf", site.leaves),
                            ("gw", site.gateways)):
            names.update((f"{site.name}-{role}{k}", f"a switch of site {site.name!r}")
                         for k in range(1, count + 1))
        names.update((f"{site.name}-h{k}", f"a host of site {site.name!r}")
                     for k in range(1, site.leaves * site.hosts_per_leaf + 1))
    return names


def _link_name_clashes(spec: FabricSpec) -> list[FabricIssue]:
    """A DCI link named like another link's wavelength (`l.w1`), a switch or a host: every
    command (`dcilab fault`, `links`) takes these names, so each must name one thing."""
    wavelengths = {f"{d.name}.w{k}": i for i, d in enumerate(spec.dci_links)
                   for k in range(1, d.wavelengths + 1)}
    nodes = _node_names(spec) if len(spec.dci_links) else {}
    issues = []
    for i, link in enumerate(spec.dci_links):
        if link.name in wavelengths:
            j = wavelengths[link.name]
            issues.append(FabricIssue(
                f"dci_links[{i}].name",
                f"name {link.name!r} is already the name of a wavelength of dci_links[{j}] "
                f"({spec.dci_links[j].name!r}): wavelengths are named LINK.wK; rename one link"))
        elif link.name in nodes:
            issues.append(FabricIssue(
                f"dci_links[{i}].name",
                f"name {link.name!r} is already the name of {nodes[link.name]}; rename the link"))
    return issues


def check_spec(spec: FabricSpec) -> list[FabricIssue]:
    """Every cross-field problem of `spec`, in file order."""
    issues = _duplicates([s.name for s in spec.sites], "sites")
    issues += _duplicates([d.name for d in spec.dci_links], "dci_links")
    issues += _link_name_clashes(spec)
    sites = {s.name: s for s in spec.sites}

    for i, site in enumerate(spec.sites):
        hosts = site.leaves * site.hosts_per_leaf
        if hosts > MAX_HOSTS_PER_SITE:
            issues.append(FabricIssue(
                f"sites[{i}]", f"site {site.name!r} has {hosts} hosts ({site.leaves} leaves x "
                f"{site.hosts_per_leaf}); at most {MAX_HOSTS_PER_SITE} fit its 10.S.L.n addresses"))

    graph = nx.Graph()
    graph.add_nodes_from(sites)
    for i, link in enumerate(spec.dci_links):
        for end in ("a", "b"):
            site_name = getattr(link, end)
            site = sites.get(site_name)
            if site is None:
                issues.append(FabricIssue(
                    f"dci_links[{i}].{end}",
                    f"unknown site {site_name[:64]!r} (sites: "
                    f"{', '.join(list(sites)[:20])}{', ...' if len(sites) > 20 else ''})"))
                continue
            pinned = getattr(link, f"{end}_gateway")
            if pinned is not None and pinned > site.gateways:
                issues.append(FabricIssue(
                    f"dci_links[{i}].{end}_gateway",
                    f"site {site_name!r} has {site.gateways} gateway(s); there is no gateway {pinned}"))
        for j, group in enumerate(link.srlg):
            if group in link.srlg[:j]:
                issues.append(FabricIssue(f"dci_links[{i}].srlg[{j}]",
                                          f"risk group {group!r} is listed twice"))
        if link.a == link.b:
            issues.append(FabricIssue(f"dci_links[{i}].b",
                                      f"a DCI link joins two different sites; both ends are {link.a!r}"))
        elif link.a in sites and link.b in sites:
            graph.add_edge(link.a, link.b)

    if not issues and len(sites) > 1 and not nx.is_connected(graph):
        parts = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
        issues.append(FabricIssue(
            "dci_links", "the sites are not all joined by DCI links, so some hosts could not reach "
                         "others: " + " | ".join(", ".join(p) for p in parts)))
    return issues
