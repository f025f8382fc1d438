"""Domain objects <-> dcilab.v1 messages. No logic beyond the mapping."""

from __future__ import annotations

import functools
import math

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from ..core import reservation_rules, steering
from ..core.steering import ElephantView
from ..fabric import Fabric
from ..fabric.model import DCI, FABRIC, GATEWAY, HOST, LEAF, SPINE
from ..te.load import LinkLoad
from ..te.reservations import (MAX_DURATION_S, AdmissionError, Protection, Reservation,
                               ReservationRequest, Selector, State)
from .v1 import fabric_pb2 as fpb
from .v1 import path_pb2 as ppb
from .wire import duration

LINK_KIND = {HOST: fpb.LINK_KIND_HOST, FABRIC: fpb.LINK_KIND_FABRIC, DCI: fpb.LINK_KIND_DCI}
LINK_KIND_NAME = {v: k for k, v in LINK_KIND.items()}
SWITCH_ROLE = {SPINE: fpb.SWITCH_ROLE_SPINE, LEAF: fpb.SWITCH_ROLE_LEAF,
               GATEWAY: fpb.SWITCH_ROLE_GATEWAY}
RESERVATION_STATE = {State.PENDING: ppb.RESERVATION_STATE_PENDING,
                     State.ACTIVE: ppb.RESERVATION_STATE_ACTIVE,
                     State.DEGRADED: ppb.RESERVATION_STATE_DEGRADED,
                     State.RELEASED: ppb.RESERVATION_STATE_RELEASED,
                     State.EXPIRED: ppb.RESERVATION_STATE_EXPIRED}
STATE_OF = {v: k for k, v in RESERVATION_STATE.items()}
# Protection classes by name: PROTECTION_<NAME> in the proto.
PROTECTION = {p: ppb.Protection.Value(f"PROTECTION_{p.value}") for p in Protection}
PROTECTION_OF = {v: k for k, v in PROTECTION.items()} | {
    ppb.PROTECTION_UNSPECIFIED: Protection.RESTORABLE}


def timestamp(seconds: float) -> Timestamp:
    t = Timestamp()
    t.FromNanoseconds(round(seconds * 1e9))
    return t


# -- requests in ---------------------------------------------------------------------------

def seconds(field: str, d: Duration) -> float:
    """A Duration field in seconds; one the protobuf rules do not allow (nanos beyond
    ±999 999 999, or of the other sign than seconds) is refused, not read as some other
    length (10 s and -999 999 999 ns would be 9.000000001 s)."""
    if abs(d.nanos) > 999_999_999 or (d.seconds and d.nanos and (d.seconds > 0) != (d.nanos > 0)):
        raise AdmissionError(AdmissionError.INVALID,
                             f"{field}: not a valid Duration (seconds {d.seconds}, nanos "
                             f"{d.nanos}: nanos must be within ±999999999, of the seconds' sign)")
    return d.ToNanoseconds() / 1e9


def _duration_s(msg: ppb.ReservePathRequest) -> float:
    """The request's duration in seconds (0: none). Past the limit by a nanosecond is past
    it: compared in whole nanoseconds, which a float of ten years cannot hold."""
    if not msg.HasField("duration"):
        return 0.0
    duration_s = seconds("duration", msg.duration)
    if msg.duration.ToNanoseconds() > round(MAX_DURATION_S) * 10**9:
        # refused as over the limit, and named as sent (a nanosecond over shows as over)
        return max(duration_s, math.nextafter(MAX_DURATION_S, math.inf))
    return duration_s


def reservation_request(msg: ppb.ReservePathRequest) -> ReservationRequest:
    return ReservationRequest(
        src_host=msg.src_host, dst_host=msg.dst_host, bandwidth_gbps=msg.bandwidth_gbps,
        max_latency_ms=msg.max_latency_ms if msg.HasField("max_latency_ms") else None,
        duration_s=_duration_s(msg),
        request_id=msg.request_id, priority=msg.priority,
        selector=selector(msg.selector) if msg.HasField("selector") else None,
        protection=PROTECTION_OF.get(msg.protection, msg.protection))


def selector(msg: ppb.TrafficSelector) -> Selector:
    return Selector(msg.ip_protocol, msg.dst_port_min, msg.dst_port_max,
                    msg.dscp if msg.HasField("dscp") else None)


def selector_msg(sel: Selector) -> ppb.TrafficSelector:
    msg = ppb.TrafficSelector(ip_protocol=sel.ip_proto, dst_port_min=sel.port_min,
                              dst_port_max=sel.port_max)
    if sel.dscp is not None:
        msg.dscp = sel.dscp
    return msg


def _hops(hops) -> list[ppb.ReservedHop]:
    return [ppb.ReservedHop(switch=h.switch, out_port=h.out_port, link=h.link,
                            wavelength=h.wavelength or "") for h in hops]


@functools.lru_cache(maxsize=4096)
def _paths(hops: tuple, standby: tuple) -> ppb.Reservation:
    """A Reservation holding only these hops and standby hops: merged into each answer
    rather than built again (building the hop messages was most of an answer's cost, and
    a host pair's reservations share their hops). Never changed after it is made."""
    return ppb.Reservation(hops=_hops(hops), standby_hops=_hops(standby))


# -- answers out ---------------------------------------------------------------------------

def reservation(res: Reservation) -> ppb.Reservation:
    req = res.request
    msg = ppb.Reservation(
        reservation_id=res.reservation_id, request_id=req.request_id,
        state=RESERVATION_STATE[res.state], src_host=req.src_host, dst_host=req.dst_host,
        bandwidth_gbps=req.bandwidth_gbps, latency_ms=res.latency_ms,
        meter_id=res.meter_id, cookie=reservation_rules.cookie(res), priority=req.priority,
        degraded_reason=res.reason,
        protection=PROTECTION[req.protection])
    msg.MergeFrom(_paths(res.hops, res.standby))
    msg.create_time.FromNanoseconds(round(res.created_at * 1e9))
    if req.selector is not None:
        msg.selector.CopyFrom(selector_msg(req.selector))
    if req.max_latency_ms is not None:
        msg.max_latency_ms = req.max_latency_ms
    if req.duration_s > 0:
        msg.duration.CopyFrom(duration(req.duration_s))
    if res.expires_at is not None:
        msg.expire_time.CopyFrom(timestamp(res.expires_at))
    return msg


def link_load(load: LinkLoad) -> fpb.LinkLoad:
    return fpb.LinkLoad(
        link=load.link, wavelength=load.wavelength or "", kind=LINK_KIND[load.kind],
        src=load.src, dst=load.dst, site_a=load.site_a, site_b=load.site_b,
        capacity_bps=load.capacity_bps, rate_bps=load.rate_bps,
        utilization_ratio=load.utilization_ratio, reserved_bps=load.reserved_bps,
        transmit_bytes_total=load.transmit_bytes_total,
        receive_bytes_total=load.receive_bytes_total, up=load.up, mode=load.mode or "",
        margin_db=load.margin_db, in_service=load.in_service)


def elephant(view: ElephantView, fab: Fabric) -> fpb.Elephant:
    hops = []
    for name, sender in view.path:
        link = fab.link(name)
        hops.append(fpb.PinnedHop(wavelength=link.wavelength or name,
                                  line_system=link.line_system or "", src=sender,
                                  dst=link.other(sender).node))
    key = view.key
    return fpb.Elephant(src_host=view.src_host, dst_host=view.dst_host, src_ip=key.src_ip,
                        dst_ip=key.dst_ip, ip_proto=key.ip_proto, src_port=key.src_port,
                        dst_port=key.dst_port, rate_bps=view.rate_bps,
                        demand_bps=view.demand_bps, hops=hops, idle=view.idle,
                        carrier=_CARRIER[view.carrier], reservation_id=view.reservation_id)


_CARRIER = {steering.HASHED: fpb.CARRIER_HASHED, steering.PINNED: fpb.CARRIER_PINNED,
            steering.SHORTEST: fpb.CARRIER_SHORTEST,
            steering.RESERVATION: fpb.CARRIER_RESERVATION,
            steering.RESERVATION_IF_MARKED: fpb.CARRIER_RESERVATION_IF_MARKED}


def fabric(fab: Fabric, connected: dict[str, bool],
           problems: dict[str, list[str]] | None = None) -> fpb.Fabric:
    sites = []
    for site in fab.sites:
        sites.append(fpb.Site(name=site.name, spines=site.spines, leaves=site.leaves,
                              gateways=site.gateways, hosts=len(fab.hosts_of(site.name)),
                              fabric_gbps=site.fabric_gbps))
    switches = [fpb.Switch(name=sw.name, dpid=sw.dpid, role=SWITCH_ROLE[sw.role], site=sw.site,
                           connected=connected.get(sw.name, False),
                           problems=(problems or {}).get(sw.name, ()))
                for sw in fab.switches.values()]
    hosts = [fpb.Host(name=h.name, site=h.site, leaf=h.leaf, port=h.port, ip=h.ip, mac=h.mac)
             for h in fab.hosts.values()]
    links = [fpb.Link(name=l.name, kind=LINK_KIND[l.kind],
                      a=fpb.Endpoint(node=l.a.node, port=l.a.port),
                      b=fpb.Endpoint(node=l.b.node, port=l.b.port),
                      rate_gbps=l.rate_gbps, latency_ms=l.latency_ms, site_a=l.site_a,
                      site_b=l.site_b, line_system=l.line_system or "",
                      wavelength=l.wavelength or "") for l in fab.links]
    specs = {d.name: d for d in fab.spec.dci_links}
    line_systems = []
    for name, plan in fab.line_systems.items():
        spec = specs[name]
        line_systems.append(fpb.LineSystem(
            name=name, site_a=spec.a, site_b=spec.b, fiber_km=spec.fiber_km,
            module=plan.module, mode=plan.mode, spans=plan.spans,
            capacity_gbps=plan.capacity_gbps, latency_ms=plan.latency_ms,
            power_w=plan.power_w, cost_usd=plan.cost_usd,
            wavelengths=[fpb.Wavelength(
                name=c.name, frequency_thz=c.frequency_thz, width_ghz=c.width_ghz,
                mode=c.mode, rate_gbps=c.rate_gbps, osnr_db=c.osnr_db,
                required_osnr_db=c.required_osnr_db, margin_db=c.margin_db,
                dispersion_ps_nm=c.dispersion_ps_nm, latency_ms=c.latency_ms)
                for c in plan.channels]))
    return fpb.Fabric(name=fab.name, scale=fab.scale, sites=sites, switches=switches,
                      hosts=hosts, links=links, line_systems=line_systems)
