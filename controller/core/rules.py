"""Proactive forwarding rules: every host reaches every host by the latency-shortest path.

Table 0 of each switch holds, from high priority to low:
  ARP from a host port (leaves)  -> controller, which answers from the fabric file
  IPv4 to each host's /32        -> the one next-hop port, or a select group hashing the
                                    5-tuple over every equal-latency next hop (the spines
                                    of a site, the parallel wavelengths of a line system)
Anything else is dropped (table miss; switches run fail-mode secure).
"""

from __future__ import annotations

from ..fabric import Fabric
from ..fabric.model import LEAF
from ..openflow import messages as of
from ..te.paths import LatencyGraph

PRIORITY_ARP = 1000
PRIORITY_HOST_ROUTE = 100


def _forwarding(fabric: Fabric, graph: LatencyGraph) -> dict[str, dict[str, tuple[int, ...]]]:
    """switch -> host ip -> its next-hop ports (one Dijkstra per destination leaf)."""
    table: dict[str, dict[str, tuple[int, ...]]] = {name: {} for name in fabric.switches}
    for leaf in (s for s in fabric.switches.values() if s.role == LEAF):
        local = [h for h in fabric.hosts.values() if h.leaf == leaf.name]
        hops = graph.next_hops(leaf.name)
        for host in local:
            table[leaf.name][host.ip] = (host.port,)
            for switch, choices in hops.items():
                table[switch][host.ip] = tuple(sorted({h.out_port for h in choices}))
    return table


def compile_switch(fabric: Fabric, switch: str, routes: dict[str, tuple[int, ...]]) -> list:
    """The full rule set of one switch, starting from empty tables (safe to re-apply)."""
    msgs: list = [of.flow_delete_all(), of.group_delete_all()]
    # One select group per distinct set of next hops, numbered in a stable order.
    group_ids = {ports: i for i, ports in enumerate(
        sorted({p for p in routes.values() if len(p) > 1}), start=1)}
    msgs += [of.select_group_add(gid, ports) for ports, gid in group_ids.items()]
    for host in fabric.hosts.values():
        if host.leaf == switch:
            msgs.append(of.flow_add(PRIORITY_ARP, of.match(in_port=host.port,
                                                            eth_type=of.ETH_TYPE_ARP),
                                    [of.output(of.ofp.OFPP_CONTROLLER)]))
    for ip, ports in sorted(routes.items()):
        action = of.group(group_ids[ports]) if len(ports) > 1 else of.output(ports[0])
        msgs.append(of.flow_add(PRIORITY_HOST_ROUTE,
                                of.match(eth_type=of.ETH_TYPE_IP, ipv4_dst=ip), [action]))
    return msgs


def compile_fabric(fabric: Fabric, graph: LatencyGraph | None = None) -> dict[str, list]:
    """switch name -> the messages that program it from scratch."""
    graph = graph or LatencyGraph(fabric)
    forwarding = _forwarding(fabric, graph)
    return {name: compile_switch(fabric, name, forwarding[name]) for name in fabric.switches}
