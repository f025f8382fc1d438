"""Proactive forwarding rules: every host reaches every host by the latency-shortest live
path, and every DCI hop has a pre-installed way around its line system.

Tables of each switch:
  0 classify  protection detours (3000): a packet tagged with a detour's VLAN id goes to
              the detour's next hop, and at its end is untagged and classified again; a
              PROTECTED reservation's standby the same way, by VLAN ids of its own range
              (3000, reservation_rules.PRIORITY_STANDBY) | on leaves, a packet from a host
              port with the reserved class's source MAC: dropped (2500) | reservation pins (2000, see
              reservation_rules) | link probes (LLDP, 1500): to the controller (core/wiring.py)
              | ARP from a host port by the file's host
              there (its MAC and address) -> table 3 (1001; and a copy to the controller
              while another host has been heard on the port), by anyone else -> table 3 and
              a copy to the controller, which says so (1000: a host on the wrong port, or
              with another MAC or address, gets no traffic, since routes and ARP answers
              are the file's) | on leaves, IPv4 from a host port: count it per flow in
              table 1, then forward (10) | the rest: forward
  1 flows     (leaves) a miss learns an exact 5-tuple entry for each TCP/UDP flow (OVS
              `learn`), so the switch counts every flow entering the fabric without a
              packet-in; the controller reads these counters to find elephants
  2 forward   elephant pins (1500, see elephant_rules) | IPv4 to each host's /32 (100): the
              one next hop, or a select group hashing the 5-tuple over every equal-latency
              next hop (the spines of a site, the parallel wavelengths of a line system)
  3 arp       (leaves) a request for a fabric host is answered by the switch itself, from
              the fabric file, out of the port it came in (100): hosts keep resolving
              their peers while no controller is connected | other ARP -> controller (0)
Anything else is dropped (table miss; switches run fail-mode secure).

Protection, in the switch and without the controller (see te.protection):
  - every select bucket watches its port: a dead spine link or wavelength leaves the hash;
  - at a gateway, hashed flows go to the wavelengths with nothing booked while any is live,
    and only then to the booked ones (`spread_tiers`): a wavelength serves its reserved
    traffic first, so a hashed elephant there gets only what the bookings leave;
  - at a gateway, a route over DCI ports goes through a fast-failover group: first the
    hashed wavelengths (live while any is: the unbooked, then the booked), then the detour
    of their line system;
  - a pin (elephant or reservation) out of a DCI port goes through that port's own
    fast-failover group: the port, then the line system's other wavelengths, then the
    detour (`pin_action`).
The controller then restores (recomputes all of this on the live graph) make-before-break:
`diff` adds and modifies groups before the flows that use them, and deletes after.

Why `learn` rather than reactive per-flow rules: a new flow is counted from its first
packets and forwarded without waiting for the controller, and a burst of short mice
costs the controller nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..fabric import Fabric
from ..fabric.model import DCI, GATEWAY, LEAF, RESERVED_CLASS_MAC, Host, Link
from ..openflow import messages as of
from ..te.paths import PathEngine
from ..te.protection import Detour, detours

TABLE_CLASSIFY, TABLE_FLOWS, TABLE_FORWARD, TABLE_ARP = 0, 1, 2, 3
PRIORITY_PROBE = 1500         # link discovery LLDP to the controller (core/wiring.py); no
                              # other rule matches LLDP, and reservations (2000) stay on top
PRIORITY_DETOUR = 3000
PRIORITY_NOT_RESERVED_CLASS = 2500   # above reservation pins (2000-2002): see static_rules
PRIORITY_ARP_HOST = 1001      # ARP from a host port by the file's host: table 3 ...
PRIORITY_ARP = 1000           # ... by anyone else: table 3, and a copy to the controller
PRIORITY_ARP_ANSWER = 100     # ... where the switch answers for a fabric host itself
PRIORITY_MONITOR = 10
PRIORITY_DEFAULT = 0
# Packets a switch sends its controller (ARP it cannot answer, LLDP), per second: far more
# than a programmed fabric sends (a probe per cable at programming), far less than a host
# can. The burst takes the probes of a gateway's every port at once.
PACKET_IN_PPS, PACKET_IN_BURST = 500, 1000
PRIORITY_LEARN = 1
PRIORITY_HOST_ROUTE = 100
LEARNED_PRIORITY = 10
FLOW_IDLE_TIMEOUT_S = 10      # a learned flow counter disappears 10 s after its last packet
PIN_GROUP_BASE = 0x10000      # + DCI port number: that port's fast-failover group
WEIGHT_STEPS = 16             # select bucket weights beside reservations: sixteenths of a
                              # wavelength, so most changes of a booking change no group
SPREAD_HOLD_S = 10.0          # a wavelength whose last booking ended keeps its weight
                              # this long: a change of tier or weight re-hashes the line
                              # system's best-effort flows (TCP reorders each), and
                              # reservations that come and go would do it at each
SELECT, FAST_FAILOVER = of.ofp.OFPGT_SELECT, of.ofp.OFPGT_FF

# A bucket or action list as plain tuples, cheap to compare when diffing programs:
# actions (("out", port) | ("group", id) | ("vlan", vid) | ("pop",) | ("goto", table)
#          | ("again",): look the packet up in table 0 again (OVS resubmit)
#          | ("turn",): forget the in_port, so the packet may leave where it came in)
# bucket (watch_port or None, watch_group or None, weight, actions)
Actions = tuple[tuple, ...]
Bucket = tuple[int | None, int | None, int, Actions]


@dataclass
class Routing:
    """What failures change on one switch: groups, destination routes, detour rules."""

    groups: dict[int, tuple[int, tuple[Bucket, ...]]] = field(default_factory=dict)
    routes: dict[str, Actions] = field(default_factory=dict)      # host ip -> actions
    detours: dict[int, Actions] = field(default_factory=dict)     # VLAN id -> actions


def forwarding(fabric: Fabric, engine: PathEngine,
               spread: bool = True) -> dict[str, dict[str, tuple[int, ...]]]:
    """switch -> host ip -> its next-hop ports on live shortest paths (one Dijkstra per
    destination leaf). With `spread` off (the `shortest` policy) each switch keeps only one
    next hop: one path, one wavelength per site pair."""
    table: dict[str, dict[str, tuple[int, ...]]] = {name: {} for name in fabric.switches}
    local: dict[str, list] = {}
    for host in fabric.hosts.values():
        local.setdefault(host.leaf, []).append(host)
    for leaf in (s for s in fabric.switches.values() if s.role == LEAF):
        # the same ports for every host of the leaf: worked out once, not once a host
        # (a reviewer's 16-site fabric: 7.5 s of a port status's 9.5 s went to them)
        ports = {switch: tuple(sorted({h.out_port for h in choices}))
                 for switch, choices in engine.next_hops(leaf.name).items() if choices}
        if not spread:
            ports = {switch: p[:1] for switch, p in ports.items()}
        for host in local.get(leaf.name, ()):
            table[leaf.name][host.ip] = (host.port,)
            for switch, p in ports.items():
                table[switch][host.ip] = p
    return table


class GroupIds:
    """Stable group ids per switch: the same next-hop set keeps its id across
    recomputations, so a restoration modifies groups in place instead of renumbering."""

    def __init__(self) -> None:
        self._ids: dict[str, dict[tuple, int]] = {}

    def __call__(self, switch: str, key: tuple) -> int:
        ids = self._ids.setdefault(switch, {})
        if key not in ids:
            if len(ids) + 1 >= PIN_GROUP_BASE:       # the pins' fast-failover groups' ids
                raise RuntimeError(f"{switch} would need more than {PIN_GROUP_BASE - 1} "
                                   f"routing groups")
            ids[key] = len(ids) + 1
        return ids[key]


def spread_tiers(booked_steps: Mapping[int, int],
                 ports: tuple[int, ...]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The hashed spread over `ports` as fast-failover tiers, each (ports, bucket weights),
    from the sixteenths of each port's wavelength that reservations book (ports not in
    `booked_steps` hold none). First the wavelengths with nothing booked, 1 each (elephants'
    placement keeps off reserved wavelengths alike, te.placement); then the booked, by what
    is left of them. Tiers rather than a weight of 0: OVS takes a select group whose live
    buckets all weigh 0 for live and drops what it is given, so a weight of 0 would black-hole
    hashed flows from the moment the unbooked wavelengths die until the controller heard."""
    free = tuple(p for p in ports if not booked_steps.get(p))
    booked = tuple(p for p in ports if booked_steps.get(p))
    tiers = [(free, (1,) * len(free))] if free else []
    if booked:
        tiers.append((booked, tuple(max(1, WEIGHT_STEPS - booked_steps[p]) for p in booked)))
    return tiers


def pin_action(fabric: Fabric, switch: str, port: int):
    """The action a pin uses to leave `switch` by `port`: a DCI port's fast-failover group
    at a gateway (so the pin survives its wavelength), the port itself elsewhere."""
    link = fabric.ports(switch).get(port)
    if link is not None and link.kind == DCI:
        return of.group(PIN_GROUP_BASE + port)
    return of.output(port)


def _detour_bucket(d: Detour, first: int) -> Bucket:
    return (first, None, 0, (("vlan", d.vid), ("turn",), ("out", first)))


def routing(fabric: Fabric, engine: PathEngine, switch: str, routes: dict[str, tuple[int, ...]],
            by_gateway: dict[tuple[str, str], Detour], on_switch: dict[int, Actions],
            ids: GroupIds, protect: bool = True,
            booked_steps: Mapping[int, int] | None = None) -> Routing:
    """The failure-dependent part of `switch`'s program. Without `protect` (the baseline
    the fault bench compares with): buckets watch nothing and there are no detours, so only
    the controller reacts to a failure, as before protection existed. `booked_steps`: DCI
    port -> sixteenths of its wavelength booked: what fails over in the switch (hashed
    flows, detours, pins) goes to wavelengths with the least booked first."""
    ports = fabric.ports(switch)
    is_gateway = fabric.switches[switch].role == GATEWAY
    booked = booked_steps or {}

    def port_of(link: Link) -> int:
        return link.end(switch).port

    def rank(link: Link) -> tuple[bool, int]:
        # Held down last (back from a failure: used only where nothing else goes), then
        # the least booked.
        return engine.held(link.name), booked.get(port_of(link), 0)

    ranked: dict[str, list[Link]] = {}

    def siblings(link: Link) -> list[Link]:
        """The other live wavelengths of `link`'s line system, best first (once a call:
        every route and pin of the gateway asks)."""
        found = ranked.get(link.name)
        if found is None:
            others = [l for l in engine.live_wavelengths(link.line_system) if l is not link]
            found = ranked[link.name] = sorted(others, key=lambda l: (*rank(l), port_of(l)))
        return found

    def least_booked(port: int) -> int:
        # A detour crosses a line system on one wavelength, fixed when it was found: all
        # of a line system's hashed traffic at once, which fills a reservation's there.
        link = ports.get(port)
        if not booked.get(port) or link is None or link.kind != DCI:
            return port
        return port_of(min([link, *siblings(link)], key=lambda l: (*rank(l), l is not link)))

    out = Routing(detours={vid: tuple(("out", least_booked(a[1])) if a[0] == "out" else a
                                      for a in acts)
                           for vid, acts in on_switch.items()})

    def line_systems(port_set) -> list[str]:
        return sorted({ports[p].line_system for p in port_set
                       if p in ports and ports[p].kind == DCI})

    def detour_buckets(port_set) -> list[Bucket]:
        found = [by_gateway[(switch, ls)] for ls in line_systems(port_set)
                 if (switch, ls) in by_gateway]
        return [_detour_bucket(d, least_booked(d.hops[0].out_port)) for d in found]

    def hashed(key: tuple, tier_ports: tuple[int, ...], weights: tuple[int, ...]) -> Bucket:
        # A fast-failover bucket over `tier_ports`; its actions are a route's alone. The
        # group id is the tier's, not its ports': which wavelengths are booked changes
        # with every reservation, and ids by port subset would grow without end.
        if len(tier_ports) == 1:
            return (tier_ports[0], None, 0, (("out", tier_ports[0]),))
        sel = ids(switch, key)
        out.groups[sel] = (SELECT, tuple((p if protect else None, None, w, (("out", p),))
                                         for p, w in zip(tier_ports, weights)))
        return (None, sel, 0, (("group", sel),))

    actions: dict[tuple[int, ...], Actions] = {}     # many hosts, few next-hop sets
    for ip, port_set in routes.items():
        action = actions.get(port_set)
        if action is None:
            tiers = spread_tiers(booked, port_set)
            # Without protection only the controller reacts to a failure: the first tier.
            primaries = [hashed((kind, port_set), *tier) for kind, tier
                         in zip(("select", "booked"), tiers if protect else tiers[:1])]
            backups = detour_buckets(port_set) if is_gateway and protect else []
            action = primaries[0][3]
            if len(primaries) + len(backups) > 1:
                ff = ids(switch, ("protect", port_set))
                out.groups[ff] = (FAST_FAILOVER, (*primaries, *backups))
                action = (("group", ff),)
            actions[port_set] = action
        out.routes[ip] = action
    if is_gateway:
        for port, link in sorted(ports.items()):
            if link.kind != DCI:
                continue
            buckets = [(port, None, 0, (("out", port),))]
            if protect:
                # The line system's other wavelengths before the detour: one wavelength lost
                # (its transceiver dark, its port's BFD down) leaves the pin on its fibre, at
                # its latency; a cut takes them all at once, and the detour is next. The
                # least booked first: by port, every pin failed over onto w1, where
                # admission puts the first reservation (an emulation tester's).
                buckets += [*((p, None, 0, (("out", p),)) for p in map(port_of, siblings(link))),
                            *detour_buckets((port,))]
            out.groups[PIN_GROUP_BASE + port] = (FAST_FAILOVER, tuple(buckets))
    return out


def _actions(spec: Actions) -> list:
    acts: list = []
    for item in spec:
        kind = item[0]
        if kind == "out":
            acts.append(of.output(item[1]))
        elif kind == "group":
            acts.append(of.group(item[1]))
        elif kind == "vlan":
            acts += of.push_vlan(item[1])
        elif kind == "pop":
            acts.append(of.pop_vlan())
        elif kind == "turn":
            acts.append(of.forget_in_port())
        elif kind == "again":
            acts.append(of.resubmit(TABLE_CLASSIFY))
    return acts


def _group_msg(gid: int, group: tuple[int, tuple[Bucket, ...]], command: int):
    gtype, buckets = group
    return of.group_mod(gid, gtype, [of.bucket(_actions(acts), weight, wp, wg)
                                     for wp, wg, weight, acts in buckets], command)


def _route_msg(ip: str, spec: Actions):
    return of.flow_add(PRIORITY_HOST_ROUTE, of.match(eth_type=of.ETH_TYPE_IP, ipv4_dst=ip),
                       _actions(spec), table_id=TABLE_FORWARD)


def _route_delete(ip: str):
    return of.flow_delete_strict(PRIORITY_HOST_ROUTE, of.match(eth_type=of.ETH_TYPE_IP, ipv4_dst=ip),
                                 TABLE_FORWARD)


def _detour_msg(vid: int, spec: Actions):
    if spec and spec[-1][0] == "goto":
        return of.flow_add_goto(PRIORITY_DETOUR, of.vlan_match(vid), TABLE_CLASSIFY, spec[-1][1],
                                _actions(spec[:-1]))
    return of.flow_add(PRIORITY_DETOUR, of.vlan_match(vid), _actions(spec))


def _group_order(groups, gids, reverse=False):
    # Select groups before the fast-failover groups that watch them (and the reverse for
    # deletion), so no group ever refers to one that does not exist.
    return sorted(gids, key=lambda g: (groups[g][0] == FAST_FAILOVER) != reverse)


def diff(old: Routing | None, new: Routing) -> list:
    """Messages taking a switch from `old` to `new` (None: from empty tables), make before
    break: groups added or changed, then flows, then groups no longer used removed."""
    old = old or Routing()
    msgs = []
    added = [g for g in new.groups if g not in old.groups]
    changed = [g for g in new.groups if g in old.groups and old.groups[g] != new.groups[g]]
    msgs += [_group_msg(g, new.groups[g], of.ofp.OFPGC_ADD)
             for g in _group_order(new.groups, added)]
    msgs += [_group_msg(g, new.groups[g], of.ofp.OFPGC_MODIFY)
             for g in _group_order(new.groups, changed)]
    msgs += [_detour_msg(vid, spec) for vid, spec in sorted(new.detours.items())
             if old.detours.get(vid) != spec]
    msgs += [_route_msg(ip, spec) for ip, spec in sorted(new.routes.items())
             if old.routes.get(ip) != spec]
    msgs += [of.flow_delete_strict(PRIORITY_DETOUR, of.vlan_match(vid))
             for vid in sorted(set(old.detours) - set(new.detours))]
    msgs += [_route_delete(ip) for ip in sorted(set(old.routes) - set(new.routes))]
    gone = [g for g in old.groups if g not in new.groups]
    msgs += [of.group_delete(g) for g in _group_order(old.groups, gone, reverse=True)]
    return msgs


def host_arp_rule(host: Host, listen: bool = False) -> of.parser.OFPFlowMod:
    """ARP from `host` on its own port: on to table 3. With `listen`, a copy to the
    controller too: while another host has been heard on that port, the file's host's
    return is then seen at once (core/wiring.py `stranger`)."""
    return of.flow_add_goto(PRIORITY_ARP_HOST,
                            of.match(in_port=host.port, eth_type=of.ETH_TYPE_ARP,
                                     arp_sha=host.mac, arp_spa=host.ip),
                            TABLE_CLASSIFY, TABLE_ARP,
                            [of.output(of.ofp.OFPP_CONTROLLER)] if listen else [])


def static_rules(fabric: Fabric, switch: str) -> list:
    """What never changes on `switch`, from empty tables: classification, ARP, counting.
    Meters stay: reservations' own are set again by their installs (`of.meter_set`)."""
    msgs: list = [*of.packet_in_limit(PACKET_IN_PPS, PACKET_IN_BURST),
                  of.flow_delete_all(), of.group_delete_all()]
    msgs.append(of.flow_add_goto(PRIORITY_DEFAULT, of.match(), TABLE_CLASSIFY, TABLE_FORWARD))
    msgs.append(of.flow_add(PRIORITY_PROBE, of.match(eth_type=of.ETH_TYPE_LLDP),
                            [of.output(of.ofp.OFPP_CONTROLLER)], table_id=TABLE_CLASSIFY))
    hosts = [h for h in fabric.hosts.values() if h.leaf == switch]
    for host in hosts:
        msgs.append(host_arp_rule(host))
        msgs.append(of.flow_add_goto(PRIORITY_ARP, of.match(in_port=host.port,
                                                             eth_type=of.ETH_TYPE_ARP),
                                     TABLE_CLASSIFY, TABLE_ARP,
                                     [of.output(of.ofp.OFPP_CONTROLLER)]))
        msgs.append(of.flow_add_goto(PRIORITY_MONITOR,
                                     of.match(in_port=host.port, eth_type=of.ETH_TYPE_IP),
                                     TABLE_CLASSIFY, TABLE_FORWARD,
                                     [of.resubmit(TABLE_FLOWS)]))
        # Every link serves packets from the reserved class's MAC first, unmetered past
        # the leaves: a host never sends as it.
        msgs.append(of.flow_add(PRIORITY_NOT_RESERVED_CLASS,
                                of.match(in_port=host.port, eth_src=RESERVED_CLASS_MAC), []))
    if hosts:
        msgs += [of.arp_answer(PRIORITY_ARP_ANSWER, h.ip, h.mac, TABLE_ARP)
                 for h in fabric.hosts.values()]
        msgs.append(of.flow_add(PRIORITY_DEFAULT, of.match(), [of.output(of.ofp.OFPP_CONTROLLER)],
                                table_id=TABLE_ARP))
        for proto in (of.IP_PROTO_TCP, of.IP_PROTO_UDP):
            msgs.append(of.flow_add(
                PRIORITY_LEARN, of.match(eth_type=of.ETH_TYPE_IP, ip_proto=proto),
                [of.learn_five_tuple(TABLE_FLOWS, proto, LEARNED_PRIORITY, FLOW_IDLE_TIMEOUT_S)],
                table_id=TABLE_FLOWS))
    return msgs


class Programs:
    """Every switch's routing on the current live graph, and what it takes to get there."""

    def __init__(self, fabric: Fabric, engine: PathEngine, spread: bool = True,
                 protect: bool = True):
        self.fabric, self.engine, self.spread, self.protect = fabric, engine, spread, protect
        self.ids = GroupIds()
        self._version = -1
        self._routing: dict[str, Routing] = {}       # built when first asked for
        self._routes: dict[str, dict[str, tuple[int, ...]]] = {}
        self._by_gateway: dict[tuple[str, str], Detour] = {}
        self._on_switch: dict[str, dict[int, Actions]] = {}
        self._booked: dict[str, dict[int, int]] = {}  # gateway -> DCI port -> sixteenths
        # (gateway, port) whose last booking ended -> (when, its sixteenths then)
        self._unbooked: dict[tuple[str, int], tuple[float, int]] = {}

    def current(self, switch: str) -> Routing:
        self._compute()
        found = self._routing.get(switch)
        if found is None:
            found = self._routing[switch] = routing(
                self.fabric, self.engine, switch, self._routes[switch], self._by_gateway,
                self._on_switch.get(switch, {}), self.ids, self.protect,
                self._booked.get(switch))
        return found

    def book(self, booked: Mapping[tuple[str, str], float], now: float) -> bool:
        """What reservations book on each directed wavelength, (link name, sending gateway)
        -> b/s, at `now` (s). True when a gateway's sixteenths booked change: `current`
        then gives its routing again (the caller sends what differs). Cheap when they do
        not (called every tick). A wavelength whose last booking ended keeps the
        sixteenths it had for SPREAD_HOLD_S more."""
        steps: dict[str, dict[int, int]] = {}
        for (name, sender), bps in booked.items():
            link = self.fabric.link(name)
            rate_bps = self.engine.rate_gbps(link) * 1e9
            if bps <= 0.0 or rate_bps <= 0.0:
                continue
            port = link.end(sender).port
            share = min(1.0, bps / rate_bps)
            steps.setdefault(sender, {})[port] = max(1, math.ceil(share * WEIGHT_STEPS))
        for gateway, ports in self._booked.items():
            for port in ports.keys() - steps.get(gateway, {}).keys():
                self._unbooked.setdefault((gateway, port), (now, ports[port]))
        for (gateway, port), (since, held) in list(self._unbooked.items()):
            if port in steps.get(gateway, {}) or now - since >= SPREAD_HOLD_S:
                del self._unbooked[gateway, port]           # booked again, or held long enough
            else:
                steps.setdefault(gateway, {})[port] = held
        changed = {g for g in steps.keys() | self._booked.keys()
                   if steps.get(g) != self._booked.get(g)}
        self._booked = steps
        for gateway in changed:
            self._routing.pop(gateway, None)
        return bool(changed)

    def _compute(self) -> None:
        if self._version == self.engine.version:
            return
        self._version = self.engine.version
        self._routes = forwarding(self.fabric, self.engine, self.spread)
        found = detours(self.fabric, self.engine) if self.protect else []
        self._by_gateway = {(d.gateway, d.line_system): d for d in found}
        self._on_switch = {}
        for d in found:
            for hop in d.hops[1:]:
                self._on_switch.setdefault(hop.switch, {})[d.vid] = (("out", hop.out_port),)
            # Untagged at its end, the packet is classified again: a reservation's pin
            # there takes its own (and gives it back its host's source MAC), the rest is
            # forwarded by destination.
            self._on_switch.setdefault(d.tail, {})[d.vid] = (("pop",), ("turn",), ("again",))
        self._routing = {}

    def route(self, src_leaf: str, dst_ip: str) -> tuple[tuple[str, str], ...] | None:
        """The DCI links (name, sending switch) a packet from `src_leaf` to `dst_ip`
        crosses on the destination routes, first next hop at each switch (with `spread`
        off, the only one); None when no live route leads there."""
        self._compute()
        crossed, switch = [], src_leaf
        for _ in range(len(self.fabric.switches)):
            ports = self._routes[switch].get(dst_ip)
            if not ports:
                return None
            link = self.fabric.ports(switch).get(ports[0])
            if link is None:
                return None
            nxt = link.other(switch).node
            if nxt not in self.fabric.switches:
                return tuple(crossed)              # the host's own port: arrived
            if link.kind == DCI:
                crossed.append((link.name, switch))
            switch = nxt
        return None                                # a loop: not a route

    def full(self, switch: str) -> list:
        """The whole program of `switch` from empty tables (safe to re-apply)."""
        return static_rules(self.fabric, switch) + diff(None, self.current(switch))


def compile_fabric(fabric: Fabric, engine: PathEngine | None = None,
                   spread: bool = True) -> dict[str, list]:
    """switch name -> the messages that program it from scratch."""
    programs = Programs(fabric, engine or PathEngine(fabric), spread)
    return {name: programs.full(name) for name in fabric.switches}


