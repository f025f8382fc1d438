"""The rules that enforce reservations: a host pair's src->dst traffic pinned hop by hop to
its reserved path above every other rule, and policed at its ingress leaf by one meter at
the (scaled) sum of the pair's reserved rates."""

from __future__ import annotations

from ..fabric import Fabric
from ..openflow import messages as of
from ..te.reservations import Reservation
from .rules import pin_action

PRIORITY_RESERVATION = 2000     # above ARP (1000), elephants and destination routes
# A policer's burst: 100 ms at its rate (TCP needs some), and never under ten full frames.
BURST_S = 0.1
MIN_BURST_KBITS = 120


def _match(fabric: Fabric, res: Reservation):
    src, dst = fabric.hosts[res.request.src_host], fabric.hosts[res.request.dst_host]
    return of.match(eth_type=of.ETH_TYPE_IP, ipv4_src=src.ip, ipv4_dst=dst.ip)


def _hops(fabric: Fabric, res: Reservation, only: set[str] | None):
    """(index, hop, the pair's match) for each hop of `res` on a switch in `only` (or all);
    the match is built once, and only when some hop needs it."""
    hops = [(i, hop) for i, hop in enumerate(res.hops) if only is None or hop.switch in only]
    match = _match(fabric, res) if hops else None
    return [(i, hop, match) for i, hop in hops]


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
    for i, hop, match in _hops(fabric, res, only):
        msgs = out.setdefault(hop.switch, [])
        action = pin_action(fabric, hop.switch, hop.out_port)
        if i == 0:
            if with_meter:
                msgs.append(_meter(fabric, res, pair_bps))
            msgs.append(of.flow_add_metered(PRIORITY_RESERVATION, match, res.meter_id, [action]))
        else:
            msgs.append(of.flow_add(PRIORITY_RESERVATION, match, [action]))
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
    for i, hop, match in _hops(fabric, res, only):
        msgs = out.setdefault(hop.switch, [])
        msgs.append(of.flow_delete_strict(PRIORITY_RESERVATION, match))
        if i == 0:
            msgs.append(of.meter_delete(res.meter_id))
    return out
