"""Proactive forwarding rules: every host reaches every host by the latency-shortest path.

Tables of each switch:
  0 classify  reservation pins (2000, see reservation_rules) | ARP from a host port ->
              controller, which answers from the fabric file (1000) | on leaves, IPv4 from
              a host port: count it per flow in table 1, then forward (10) | the rest: forward
  1 flows     (leaves) a miss learns an exact 5-tuple entry for each TCP/UDP flow (OVS
              `learn`), so the switch counts every flow entering the fabric without a
              packet-in; the controller reads these counters to find elephants
  2 forward   elephant pins (1500, see elephant_rules) | IPv4 to each host's /32 (100): the
              one next hop, or a select group hashing the 5-tuple over every equal-latency
              next hop (the spines of a site, the parallel wavelengths of a line system)
Anything else is dropped (table miss; switches run fail-mode secure).

Why `learn` rather than reactive per-flow rules: a new flow is counted from its first
packets and forwarded without waiting for the controller, and a burst of short mice
costs the controller nothing.
"""

from __future__ import annotations

from ..fabric import Fabric
from ..fabric.model import LEAF
from ..openflow import messages as of
from ..te.paths import LatencyGraph

TABLE_CLASSIFY, TABLE_FLOWS, TABLE_FORWARD = 0, 1, 2
PRIORITY_ARP = 1000
PRIORITY_MONITOR = 10
PRIORITY_DEFAULT = 0
PRIORITY_LEARN = 1
PRIORITY_HOST_ROUTE = 100
LEARNED_PRIORITY = 10
FLOW_IDLE_TIMEOUT_S = 10      # a learned flow counter disappears 10 s after its last packet


def forwarding(fabric: Fabric, graph: LatencyGraph,
               spread: bool = True) -> dict[str, dict[str, tuple[int, ...]]]:
    """switch -> host ip -> its next-hop ports (one Dijkstra per destination leaf).

    With `spread` off (the `shortest` policy) each switch keeps only one next hop: one
    path, one wavelength per site pair.
    """
    table: dict[str, dict[str, tuple[int, ...]]] = {name: {} for name in fabric.switches}
    for leaf in (s for s in fabric.switches.values() if s.role == LEAF):
        local = [h for h in fabric.hosts.values() if h.leaf == leaf.name]
        hops = graph.next_hops(leaf.name)
        for host in local:
            table[leaf.name][host.ip] = (host.port,)
            for switch, choices in hops.items():
                ports = tuple(sorted({h.out_port for h in choices}))
                table[switch][host.ip] = ports if spread else ports[:1]
    return table


def compile_switch(fabric: Fabric, switch: str, routes: dict[str, tuple[int, ...]]) -> list:
    """The full rule set of one switch, starting from empty tables (safe to re-apply)."""
    msgs: list = [of.flow_delete_all(), of.group_delete_all(), of.meter_delete_all()]
    # One select group per distinct set of next hops, numbered in a stable order.
    group_ids = {ports: i for i, ports in enumerate(
        sorted({p for p in routes.values() if len(p) > 1}), start=1)}
    msgs += [of.select_group_add(gid, ports) for ports, gid in group_ids.items()]
    msgs.append(of.flow_add_goto(PRIORITY_DEFAULT, of.match(), TABLE_CLASSIFY, TABLE_FORWARD))
    hosts = [h for h in fabric.hosts.values() if h.leaf == switch]
    for host in hosts:
        msgs.append(of.flow_add(PRIORITY_ARP, of.match(in_port=host.port,
                                                        eth_type=of.ETH_TYPE_ARP),
                                [of.output(of.ofp.OFPP_CONTROLLER)]))
        msgs.append(of.flow_add_goto(PRIORITY_MONITOR,
                                     of.match(in_port=host.port, eth_type=of.ETH_TYPE_IP),
                                     TABLE_CLASSIFY, TABLE_FORWARD,
                                     [of.resubmit(TABLE_FLOWS)]))
    if hosts:
        for proto in (of.IP_PROTO_TCP, of.IP_PROTO_UDP):
            msgs.append(of.flow_add(
                PRIORITY_LEARN, of.match(eth_type=of.ETH_TYPE_IP, ip_proto=proto),
                [of.learn_five_tuple(TABLE_FLOWS, proto, LEARNED_PRIORITY, FLOW_IDLE_TIMEOUT_S)],
                table_id=TABLE_FLOWS))
    for ip, ports in sorted(routes.items()):
        action = of.group(group_ids[ports]) if len(ports) > 1 else of.output(ports[0])
        msgs.append(of.flow_add(PRIORITY_HOST_ROUTE,
                                of.match(eth_type=of.ETH_TYPE_IP, ipv4_dst=ip), [action],
                                table_id=TABLE_FORWARD))
    return msgs


def compile_fabric(fabric: Fabric, graph: LatencyGraph | None = None,
                   spread: bool = True) -> dict[str, list]:
    """switch name -> the messages that program it from scratch."""
    graph = graph or LatencyGraph(fabric)
    routes = forwarding(fabric, graph, spread)
    return {name: compile_switch(fabric, name, routes[name]) for name in fabric.switches}
