"""The rules that enforce reservations: an aggregate's traffic (a host pair's src->dst
traffic, or the part of it a selector names) pinned hop by hop to its reserved path above
every other rule, and policed at its ingress leaf by one meter at the (scaled) sum of the
aggregate's reserved rates."""

from __future__ import annotations

from ..fabric import Fabric
from ..openflow import messages as of
from ..te.reservations import Reservation
from ..openflow.ranges import port_range_masks
from .rules import pin_action

PRIORITY_RESERVATION = 2000     # above ARP (1000), elephants and destination routes
# A reservation with a selector is matched above the pair's aggregate; a protocol selector
# above a DSCP one (a packet may match both: the protocol one takes it).
PRIORITY_DSCP = PRIORITY_RESERVATION + 1
PRIORITY_PORTS = PRIORITY_RESERVATION + 2
# A policer's burst: 100 ms at its rate (TCP needs some), and never under ten full frames.
BURST_S = 0.1
MIN_BURST_KBITS = 120


def priority(res: Reservation) -> int:
    sel = res.request.selector
    if sel is None:
        return PRIORITY_RESERVATION
    return PRIORITY_DSCP if sel.dscp is not None else PRIORITY_PORTS


def _matches(fabric: Fabric, res: Reservation) -> list:
    """The matches of the traffic of `res`: the pair's addresses, and its selector (a port
    range is several masked matches)."""
    src, dst = fabric.hosts[res.request.src_host], fabric.hosts[res.request.dst_host]
    pair = dict(eth_type=of.ETH_TYPE_IP, ipv4_src=src.ip, ipv4_dst=dst.ip)
    sel = res.request.selector
    if sel is None:
        return [of.match(**pair)]
    if sel.dscp is not None:
        return [of.match(**pair, ip_dscp=sel.dscp)]
    if not sel.has_ports:
        return [of.match(**pair, ip_proto=sel.ip_proto)]
    port = "tcp_dst" if sel.ip_proto == of.IP_PROTO_TCP else "udp_dst"
    return [of.match(**pair, ip_proto=sel.ip_proto, **{port: block})
            for block in port_range_masks(sel.port_min, sel.port_max)]


def _hops(fabric: Fabric, res: Reservation, only: set[str] | None):
    """(index, hop, the matches) for each hop of `res` on a switch in `only` (or all);
    the matches are built once, and only when some hop needs them."""
    hops = [(i, hop) for i, hop in enumerate(res.hops) if only is None or hop.switch in only]
    matches = _matches(fabric, res) if hops else []
    return [(i, hop, matches) for i, hop in hops]


def police_kbps(fabric: Fabric, bps: float) -> int:
    """The emulated rate a meter enforces for a real rate (real rate x scale), in kb/s."""
    return max(1, round(bps * fabric.scale / 1000))


def _meter(fabric: Fabric, res: Reservation, pair_bps: float, modify: bool = False):
    rate = police_kbps(fabric, pair_bps)
    burst = max(MIN_BURST_KBITS, round(rate * BURST_S))
    return (of.meter_modify if modify else of.meter_add)(res.meter_id, rate, burst)


def install(fabric: Fabric, res: Reservation, pair_bps: float,
            only: set[str] | None = None) -> dict[str, list]:
    """switch name -> messages pinning the pair of `res` there; the ingress leaf also gets
    the pair's meter at `pair_bps` (the sum of the pair's reservations). With `only`, just
    for those switches (building OpenFlow matches is not free)."""
    return _pins(fabric, res, pair_bps, only, with_meter=True)


def _pins(fabric: Fabric, res: Reservation, pair_bps: float, only: set[str] | None,
          with_meter: bool) -> dict[str, list]:
    out: dict[str, list] = {}
    prio = priority(res)
    for i, hop, matches in _hops(fabric, res, only):
        msgs = out.setdefault(hop.switch, [])
        action = pin_action(fabric, hop.switch, hop.out_port)
        if i == 0:
            if with_meter:
                msgs.append(_meter(fabric, res, pair_bps))
            msgs += [of.flow_add_metered(prio, m, res.meter_id, [action]) for m in matches]
        else:
            msgs += [of.flow_add(prio, m, [action]) for m in matches]
    return out


def move(fabric: Fabric, old: Reservation, new: Reservation,
         only: set[str] | None = None) -> dict[str, list]:
    """switch name -> messages moving a pair from `old`'s path to `new`'s, make before
    break: the new path's pins, last hop first (an ADD replaces a pin in place), then the
    pins of switches the new path leaves out. The meter stays (same ingress leaf)."""
    pins = _pins(fabric, new, 0.0, only, with_meter=False)
    out = {switch: pins[switch] for switch in reversed(list(pins))}
    kept = {h.switch for h in new.hops}
    gone = {h.switch for h in old.hops} - kept
    for switch, msgs in remove(fabric, old, gone if only is None else gone & only).items():
        out.setdefault(switch, []).extend(msgs)    # never the ingress leaf: it is kept
    return out


def resize(fabric: Fabric, res: Reservation, pair_bps: float) -> dict[str, list]:
    """The pair's path is in place; only its meter changes to `pair_bps`."""
    return {res.hops[0].switch: [_meter(fabric, res, pair_bps, modify=True)]}


def remove(fabric: Fabric, res: Reservation, only: set[str] | None = None) -> dict[str, list]:
    """switch name -> messages removing what `install` put there (`only`: as in install)."""
    out: dict[str, list] = {}
    prio = priority(res)
    for i, hop, matches in _hops(fabric, res, only):
        msgs = out.setdefault(hop.switch, [])
        msgs += [of.flow_delete_strict(prio, m) for m in matches]
        if i == 0:
            msgs.append(of.meter_delete(res.meter_id))
    return out
