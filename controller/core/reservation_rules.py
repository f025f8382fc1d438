"""The rules that enforce reservations: an aggregate's traffic (a host pair's src->dst
traffic, or the part of it a selector names) pinned hop by hop to its reserved path above
every other rule, and policed at its ingress leaf by one meter at the (scaled) sum of the
aggregate's reserved rates. From its ingress leaf to its egress leaf it carries the
reserved class's source MAC (`RESERVED_CLASS_MAC`), which every link's queues serve ahead of
best effort (admission books every link of the path, inside the sites too); the egress
leaf puts the sending host's back."""

from __future__ import annotations

from ..fabric import Fabric
from ..fabric.model import RESERVED_CLASS_MAC
from ..openflow import messages as of
from ..te.protection import STANDBY_VID_BASE, STANDBY_VIDS
from ..te.reservations import Reservation
from ..openflow.ranges import port_range_masks
from .rules import PRIORITY_DETOUR, TABLE_FLOWS, pin_action

PRIORITY_RESERVATION = 2000     # above ARP (1000), elephants and destination routes
# A reservation with a selector is matched above the pair's aggregate; a protocol selector
# above a DSCP one (a packet may match both: the protocol one takes it).
PRIORITY_DSCP = PRIORITY_RESERVATION + 1
PRIORITY_PORTS = PRIORITY_RESERVATION + 2
# A PROTECTED aggregate's standby: its fast-failover group at the repair gateway (the first
# gateway of its primary), and the VLAN id its packets carry along the standby (a range
# of its own, apart from the facility detours': te/protection.py).
PROTECT_GROUP_BASE = 0x20000          # + meter id
PRIORITY_STANDBY = PRIORITY_DETOUR
# An aggregate's rules carry its meter id in the cookie's upper 32 bits, marked by bit 31
# (elephant pins use bit 32 alone): `ovs-ofctl dump-flows BRIDGE cookie=C/-1` lists the
# rules of one reservation's aggregate (a flow-table auditor could tell them apart only by
# their matches).
RESERVATION_MARK = 1 << 31
# A policer's burst: 100 ms at its rate (TCP needs some), and never under ten full frames.
BURST_S = 0.1
MIN_BURST_KBITS = 120


def priority(res: Reservation) -> int:
    sel = res.request.selector
    if sel is None:
        return PRIORITY_RESERVATION
    return PRIORITY_DSCP if sel.dscp is not None else PRIORITY_PORTS


def cookie(res: Reservation) -> int:
    """The cookie of the rules of `res`'s aggregate (its members share one meter)."""
    return res.meter_id << 32 | RESERVATION_MARK | of.COOKIE


def carries(res: Reservation, ip_proto: int, dst_port: int) -> bool | None:
    """Whether the rules of `res` match a flow of its pair with this protocol and
    destination port; None for a DSCP selector, which a 5-tuple does not tell."""
    sel = res.request.selector
    if sel is None:
        return True
    if sel.dscp is not None:
        return None
    return sel.ip_proto == ip_proto and (not sel.has_ports
                                         or sel.port_min <= dst_port <= sel.port_max)


def carriers(reserved: list[Reservation], ip_proto: int, dst_port: int
             ) -> tuple[Reservation | None, Reservation | None]:
    """Of a pair's reservations in the order the switches try them (highest priority
    first): the one whose rules take a flow's unmarked packets, or None; and the DSCP one
    that takes them when marked, if one comes first."""
    marked = None
    for res in reserved:
        matched = carries(res, ip_proto, dst_port)
        if matched:
            return res, marked
        if matched is None and marked is None:
            marked = res
    return None, marked


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
    if modify:
        return [of.meter_modify(res.meter_id, rate, burst)]
    return of.meter_set(res.meter_id, rate, burst)


def install(fabric: Fabric, res: Reservation, pair_bps: float,
            only: set[str] | None = None) -> dict[str, list]:
    """switch name -> messages pinning the pair of `res` there; the ingress leaf also gets
    the pair's meter at `pair_bps` (the sum of the pair's reservations). With `only`, just
    for those switches (building OpenFlow matches is not free)."""
    return _merge(_protection(fabric, res, None, only),
                  _pins(fabric, res, pair_bps, only, with_meter=True))


def standby_vid(res: Reservation) -> int:
    return STANDBY_VID_BASE + (res.meter_id - 1) % STANDBY_VIDS


def repair_index(res: Reservation) -> int | None:
    """Where a PROTECTED aggregate's standby leaves its primary: the index of the first
    hop where the two differ (they share the hops before it; the standby avoids the
    primary's line systems, so this is at or before its first DCI hop); None without one."""
    if not res.standby:
        return None
    return next(i for i, (a, b) in enumerate(zip(res.hops, res.standby)) if a != b)


def _protection(fabric: Fabric, res: Reservation, old: Reservation | None,
                only: set[str] | None) -> dict[str, list]:
    """switch -> messages putting the standby of `res` in place (`old`: what is there
    now): at the repair gateway, a fast-failover group, the primary's DCI port first and
    then the standby (tagged with the aggregate's VLAN id); on each later switch of the
    standby, a rule for that VLAN id; at the last, the tag comes off. The switch falls
    over by itself when the primary's port dies. A tagged packet leaves by the standby's
    own ports, never a pin's group: with a standby wavelength dark too (a second failure)
    it is dropped until the controller acts, where a detour would tag it twice."""
    out: dict[str, list] = {}
    k = repair_index(res)
    if k is None:
        return out
    vid, gid = standby_vid(res), PROTECT_GROUP_BASE + res.meter_id
    gw, primary, standby = res.hops[k].switch, res.hops[k], res.standby[k]
    if only is None or gw in only:
        had = old is not None and repair_index(old) is not None and \
            old.hops[repair_index(old)].switch == gw
        buckets = [of.bucket([pin_action(fabric, gw, primary.out_port)], 0, primary.out_port),
                   of.bucket(of.push_vlan(vid) + [of.forget_in_port(),
                                                  of.output(standby.out_port)],
                             0, standby.out_port)]
        out[gw] = [of.group_mod(gid, of.ofp.OFPGT_FF, buckets,
                                of.ofp.OFPGC_MODIFY if had else of.ofp.OFPGC_ADD)]
    last = len(res.standby) - 1
    src_mac = fabric.hosts[res.request.src_host].mac
    for j in range(k + 1, len(res.standby)):
        hop = res.standby[j]
        if only is not None and hop.switch not in only:
            continue
        # Marked at the ingress leaf, as on the primary: unmarked where it leaves the fabric.
        actions = ([of.pop_vlan(), of.set_eth_src(src_mac), of.output(hop.out_port)]
                   if j == last else [of.output(hop.out_port)])
        out.setdefault(hop.switch, []).append(
            of.flow_add(PRIORITY_STANDBY, of.vlan_match(vid), actions, cookie=cookie(res)))
    return out


def _protection_remove(res: Reservation, keep: Reservation | None,
                       only: set[str] | None) -> dict[str, list]:
    """switch -> messages removing the standby of `res` where `keep` (its successor, same
    meter) does not reuse it."""
    out: dict[str, list] = {}
    k = repair_index(res)
    if k is None:
        return out
    vid, gid = standby_vid(res), PROTECT_GROUP_BASE + res.meter_id
    kept_k = repair_index(keep) if keep is not None else None
    kept_flows = ({h.switch for h in keep.standby[kept_k + 1:]} if kept_k is not None
                  else set())
    for hop in res.standby[k + 1:]:
        if hop.switch not in kept_flows and (only is None or hop.switch in only):
            out.setdefault(hop.switch, []).append(
                of.flow_delete_strict(PRIORITY_STANDBY, of.vlan_match(vid)))
    gw = res.hops[k].switch
    if (kept_k is None or keep.hops[kept_k].switch != gw) and (only is None or gw in only):
        out.setdefault(gw, []).append(of.group_delete(gid))
    return out


def _merge(*parts: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {}
    for part in parts:
        for switch, msgs in part.items():
            out.setdefault(switch, []).extend(msgs)
    return out


def _class_mark(hops, i: int, src_mac: str) -> list:
    """What a pin's hop `i` does to the source MAC: the ingress leaf sets the reserved
    class's, the egress leaf gives the sending host's back (a pair on one leaf: neither)."""
    if len(hops) < 2:
        return []
    if i == 0:
        return [of.set_eth_src(RESERVED_CLASS_MAC)]
    if i == len(hops) - 1:
        return [of.set_eth_src(src_mac)]
    return []


def _pins(fabric: Fabric, res: Reservation, pair_bps: float, only: set[str] | None,
          with_meter: bool) -> dict[str, list]:
    out: dict[str, list] = {}
    prio, mark = priority(res), cookie(res)
    k = repair_index(res)
    src_mac = fabric.hosts[res.request.src_host].mac
    for i, hop, matches in _hops(fabric, res, only):
        msgs = out.setdefault(hop.switch, [])
        action = _class_mark(res.hops, i, src_mac) + [
            of.group(PROTECT_GROUP_BASE + res.meter_id) if i == k
            else pin_action(fabric, hop.switch, hop.out_port)]
        if i == 0:
            if with_meter:
                msgs += _meter(fabric, res, pair_bps)
            # Counted per flow as the leaf's other traffic is (this rule comes before the
            # counting one): a reserved elephant is still found, and said to be carried
            # here (a re-tester's vanished from `dcilab elephants` once reserved).
            msgs += [of.flow_add_metered(prio, m, res.meter_id,
                                         [of.resubmit(TABLE_FLOWS), *action], cookie=mark)
                     for m in matches]
        else:
            msgs += [of.flow_add(prio, m, action, cookie=mark) for m in matches]
    return out


def move(fabric: Fabric, old: Reservation, new: Reservation,
         only: set[str] | None = None) -> dict[str, list]:
    """switch name -> messages moving a pair from `old`'s path to `new`'s, make before
    break: the new path's pins, last hop first (an ADD replaces a pin in place), then the
    pins of switches the new path leaves out. The meter stays (same ingress leaf)."""
    pins = _pins(fabric, new, 0.0, only, with_meter=False)
    out = _merge(_protection(fabric, new, old, only),      # the standby first, then pins
                 {switch: pins[switch] for switch in reversed(list(pins))})
    kept = {h.switch for h in new.hops}
    gone = {h.switch for h in old.hops} - kept
    for switch, msgs in _pin_remove(fabric, old, gone if only is None else gone & only).items():
        out.setdefault(switch, []).extend(msgs)    # never the ingress leaf: it is kept
    return _merge(out, _protection_remove(old, new, only))


def resize(fabric: Fabric, res: Reservation, pair_bps: float) -> dict[str, list]:
    """The pair's path is in place; only its meter changes to `pair_bps`."""
    return {res.hops[0].switch: _meter(fabric, res, pair_bps, modify=True)}


def remove(fabric: Fabric, res: Reservation, only: set[str] | None = None) -> dict[str, list]:
    """switch name -> messages removing what `install` put there (`only`: as in install)."""
    return _merge(_pin_remove(fabric, res, only), _protection_remove(res, None, only))


def _pin_remove(fabric: Fabric, res: Reservation, only: set[str] | None) -> dict[str, list]:
    out: dict[str, list] = {}
    prio = priority(res)
    for i, hop, matches in _hops(fabric, res, only):
        msgs = out.setdefault(hop.switch, [])
        msgs += [of.flow_delete_strict(prio, m) for m in matches]
        if i == 0:
            msgs.append(of.meter_delete(res.meter_id))
    return out
