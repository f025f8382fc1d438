"""The rules that pin one elephant flow (its exact 5-tuple) to a path, hop by hop, in the
forwarding table, above the destination routes and their hashing."""

from __future__ import annotations

from ..fabric import Fabric
from ..openflow import messages as of
from ..te.elephants import FlowKey
from .rules import TABLE_FORWARD, pin_action

PRIORITY_ELEPHANT = 1500
PIN_COOKIE = of.COOKIE | 1 << 32        # a switch's pins, deleted together (`unpin_all`)


def _match(key: FlowKey):
    l4 = ({"tcp_src": key.src_port, "tcp_dst": key.dst_port} if key.ip_proto == of.IP_PROTO_TCP
          else {"udp_src": key.src_port, "udp_dst": key.dst_port})
    return of.match(eth_type=of.ETH_TYPE_IP, ip_proto=key.ip_proto, ipv4_src=key.src_ip,
                    ipv4_dst=key.dst_ip, **l4)


def pin(fabric: Fabric, key: FlowKey, hops: list[tuple[str, int]]) -> dict[str, list]:
    """switch name -> the message pinning `key` out of `port` there, for (switch, port) hops;
    out of a DCI port through that port's fast-failover group, so the pin survives a cut."""
    return {switch: [of.flow_add(PRIORITY_ELEPHANT, _match(key), [pin_action(fabric, switch, port)],
                                 table_id=TABLE_FORWARD, cookie=PIN_COOKIE)]
            for switch, port in hops}


def unpin_all() -> list:
    """Every pin of a switch: before its pins are sent again whole."""
    return [of.flow_delete_cookie(PIN_COOKIE, TABLE_FORWARD)]


def unpin(key: FlowKey, switches: list[str]) -> dict[str, list]:
    return {switch: [of.flow_delete_strict(PRIORITY_ELEPHANT, _match(key), TABLE_FORWARD)]
            for switch in switches}
