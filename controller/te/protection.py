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

from collections.abc import Container, Iterable
from dataclasses import dataclass

from ..fabric.model import DCI, Fabric
from .paths import Hop, PathEngine

# The VLAN ids the switches match in table 0 (priority 3000, on the id alone), in two
# ranges that never meet: facility detours take 1..MAX_VID, two per line system in file
# order (so 1023 line systems have one pre-installed); PROTECTED aggregates' standbys take
# STANDBY_VID_BASE.. by meter id (core/reservation_rules.py), repeating only once more
# than STANDBY_VIDS meters are in use at once.
MAX_VID = 2047
STANDBY_VID_BASE, STANDBY_VIDS = 2048, 2047      # up to 4094, the last VLAN id


@dataclass(frozen=True)
class Detour:
    line_system: str          # what it protects
    gateway: str              # where packets leave the line system's path (repair point)
    tail: str                 # the far gateway, where they rejoin it
    vid: int                  # the VLAN id that labels packets on the detour
    hops: tuple[Hop, ...]     # from `gateway` to `tail`
    disjoint: bool            # shares no risk group with the line system


class SharedRisk:
    """Which line systems share a risk group (SRLG) with which, without listing every
    pair: a duct of N line systems would be N sets of N (a fabric of 8 000 line systems
    in one duct took 2.4 GB). `risk[ls]` lists those sharing with `ls` on demand;
    `avoiding(line_systems)` is the set of links a path clear of their risks must not
    use, tested link by link."""

    def __init__(self, fabric: Fabric):
        self.groups_of = {d.name: frozenset(d.srlg) for d in fabric.spec.dci_links}
        self.members: dict[str, list[str]] = {}           # risk group -> its line systems
        for d in fabric.spec.dci_links:
            for group in d.srlg:
                self.members.setdefault(group, []).append(d.name)
        self.line_system_of = {link.name: link.line_system for link in fabric.links
                               if link.kind == DCI}

    def __getitem__(self, line_system: str) -> set[str]:
        """`line_system` and every line system sharing a risk group with it."""
        return {line_system}.union(*(self.members[g] for g in self.groups_of[line_system]))

    def key(self, line_system: str):
        """Equal for line systems whose risks are the same links: the same groups, but
        for groups of one line system (a conduit id of its own adds nothing to what a
        shared duct already names)."""
        shared = frozenset(g for g in self.groups_of[line_system] if len(self.members[g]) > 1)
        return shared or line_system

    def avoiding(self, line_systems: Iterable[str]) -> "RiskAvoid":
        own = frozenset(line_systems)
        return RiskAvoid(self, own, frozenset().union(*(self.groups_of[ls] for ls in own)))


class RiskAvoid(Container[str]):
    """The wavelengths of some line systems and of every one sharing a risk group with
    them, as a container of link names (what a path search's `avoid` asks of it)."""

    __slots__ = ("_risk", "_own", "_groups", "_links")

    def __init__(self, risk: SharedRisk, own: frozenset[str], groups: frozenset[str],
                 links: frozenset[str] = frozenset()):
        self._risk, self._own, self._groups, self._links = risk, own, groups, links

    def also(self, links) -> "RiskAvoid":
        """These, and other links by name besides."""
        return RiskAvoid(self._risk, self._own, self._groups, self._links | frozenset(links))

    def __contains__(self, link_name: object) -> bool:
        if link_name in self._links:
            return True
        line_system = self._risk.line_system_of.get(link_name)     # type: ignore[arg-type]
        return line_system is not None and (
            line_system in self._own
            or not self._risk.groups_of[line_system].isdisjoint(self._groups))

    def __bool__(self) -> bool:
        return bool(self._own or self._links)


def unlabelled(fabric: Fabric) -> list[str]:
    """The line systems past the VLAN ids there are (two a line system, in file order):
    no detour is pre-installed for them, the controller re-routes them when cut."""
    # line system i has ids 2i+1 (its a end) and 2i+2 (its b end): one without both is here
    return [spec.name for i, spec in enumerate(fabric.spec.dci_links) if 2 * i + 2 > MAX_VID]


def detours(fabric: Fabric, engine: PathEngine) -> list[Detour]:
    """A detour for each end of each line system, on the live graph; VLAN ids are stable
    (file order of line systems, a-end then b-end)."""
    risk = SharedRisk(fabric)
    wavelengths: dict[str, list[str]] = {}
    ends: dict[str, tuple[str, str]] = {}
    for link in fabric.links:
        if link.kind == DCI:
            wavelengths.setdefault(link.line_system, []).append(link.name)
            ends.setdefault(link.line_system, (link.a.node, link.b.node))
    # Line systems in one duct (the same risk groups, the same gateways) have the same
    # detour: search once for them all, or a ring of such ducts costs a search of the
    # whole fabric per line system (quadratic in line systems).
    disjoint_of: dict[tuple, list[Hop] | None] = {}
    # A risk group whose line systems alone leave no way between two gateways (a building
    # entry every line system crosses): then no line system in it has a disjoint detour
    # there, whatever its other groups. Learnt once per group from a failed search, or
    # one failed search of the whole fabric per line system.
    cuts: dict[tuple[str, str, str], bool] = {}

    def cut_by_a_group(gateway: str, tail: str, line_system: str) -> bool:
        return any(cuts.get((gateway, tail, g), False) for g in risk.groups_of[line_system])

    def learn_cuts(gateway: str, tail: str, line_system: str) -> None:
        for g in risk.groups_of[line_system]:
            if len(risk.members[g]) > 2 and (gateway, tail, g) not in cuts:
                cuts[gateway, tail, g] = engine.detour(
                    gateway, tail, RiskAvoid(risk, frozenset({line_system}), frozenset({g}))
                ) is None

    def around(gateway: str, tail: str, line_system: str):
        key = (gateway, tail, risk.key(line_system))
        if key not in disjoint_of:
            if cut_by_a_group(gateway, tail, line_system):
                disjoint_of[key] = None
            else:
                disjoint_of[key] = engine.detour(gateway, tail, risk.avoiding([line_system]))
                if disjoint_of[key] is None:
                    learn_cuts(gateway, tail, line_system)
        if disjoint_of[key] is not None:
            return disjoint_of[key], True
        own = frozenset(wavelengths[line_system])                    # its own: not shared
        return engine.detour(gateway, tail, own), False

    out = []
    vid = 0
    for spec in fabric.spec.dci_links:
        a, b = ends[spec.name]
        for gateway, tail in ((a, b), (b, a)):
            vid += 1
            if vid > MAX_VID:
                return out
            path, disjoint = around(gateway, tail, spec.name)
            if path:
                out.append(Detour(spec.name, gateway, tail, vid, tuple(path), disjoint))
    return out
