"""Where traffic goes the moment a line system fails: one detour per line-system end.

Facility protection, as MPLS fast reroute protects a link with a bypass tunnel (RFC
4090, facility backup): for each gateway end of each line system, a pre-computed path to
the far gateway that avoids the line system and every line system sharing a risk group
(SRLG: ducts, conduits that fail together) with it. The gateway's fast-failover group
tags packets with the detour's VLAN id and sends them along it when the line system's
ports go dark; switches on the detour forward tagged packets hop by hop; the far gateway
untags them and forwards as usual. No controller round trip.

Where no risk-disjoint path exists, the detour avoids only the line system itself (and
says it is not disjoint); where none exists at all, the line system's other wavelengths
are the only protection (the gateway's groups list them).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..fabric.model import DCI, Fabric
from .paths import Hop, PathEngine

MAX_VID = 4094


@dataclass(frozen=True)
class Detour:
    line_system: str          # what it protects
    gateway: str              # where packets leave the line system's path (repair point)
    tail: str                 # the far gateway, where they rejoin it
    vid: int                  # the VLAN id that labels packets on the detour
    hops: tuple[Hop, ...]     # from `gateway` to `tail`
    disjoint: bool            # shares no risk group with the line system


def shared_risk(fabric: Fabric) -> dict[str, set[str]]:
    """line system -> itself and every line system sharing an SRLG with it."""
    members: dict[str, set[str]] = {}                   # risk group -> its line systems
    for d in fabric.spec.dci_links:
        for group in d.srlg:
            members.setdefault(group, set()).add(d.name)
    return {d.name: {d.name}.union(*(members[g] for g in d.srlg)) for d in fabric.spec.dci_links}


def unlabelled(fabric: Fabric) -> list[str]:
    """The line systems past the VLAN ids there are (two a line system, in file order):
    no detour is pre-installed for them, the controller re-routes them when cut."""
    return [spec.name for i, spec in enumerate(fabric.spec.dci_links) if 2 * i + 1 > MAX_VID]


def detours(fabric: Fabric, engine: PathEngine) -> list[Detour]:
    """A detour for each end of each line system, on the live graph; VLAN ids are stable
    (file order of line systems, a-end then b-end)."""
    risk = shared_risk(fabric)
    wavelengths: dict[str, list[str]] = {}
    ends: dict[str, tuple[str, str]] = {}
    for link in fabric.links:
        if link.kind == DCI:
            wavelengths.setdefault(link.line_system, []).append(link.name)
            ends.setdefault(link.line_system, (link.a.node, link.b.node))
    # Line systems in one duct (the same risk groups, the same gateways) have the same
    # detour: search once for them all, or a ring of such ducts costs a search of the
    # whole fabric per line system (quadratic in line systems).
    disjoint_of: dict[tuple[str, str, frozenset[str]], list[Hop] | None] = {}

    def around(gateway: str, tail: str, risky: frozenset[str], own: list[str]):
        key = (gateway, tail, risky)
        if key not in disjoint_of:
            shared = frozenset(w for ls in risky for w in wavelengths.get(ls, ()))
            disjoint_of[key] = engine.detour(gateway, tail, shared)
        if disjoint_of[key] is not None:
            return disjoint_of[key], True
        return engine.detour(gateway, tail, own), False     # its own: not shared

    out = []
    vid = 0
    for spec in fabric.spec.dci_links:
        a, b = ends[spec.name]
        for gateway, tail in ((a, b), (b, a)):
            vid += 1
            if vid > MAX_VID:
                return out
            path, disjoint = around(gateway, tail, frozenset(risk[spec.name]),
                                    wavelengths[spec.name])
            if path:
                out.append(Detour(spec.name, gateway, tail, vid, tuple(path), disjoint))
    return out
