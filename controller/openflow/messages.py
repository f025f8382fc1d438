"""OpenFlow 1.3 message builders (os_ken.ofproto only; no datapath, no socket)."""

from __future__ import annotations

from os_ken.ofproto import nicira_ext
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

# Every flow dcilab installs carries this cookie in its low bits, so an operator's
# `ovs-ofctl dump-flows` tells them apart (elephant pins have a bit of their own above, so
# that they can be deleted together; a reservation's rules their aggregate's meter id).
# dcilab owns the switches it programs: its other deletes and statistics requests match no
# cookie, and a program starts from empty tables.
COOKIE = 0xDC1AB
# Attribute of a message naming the (error type, code) it may draw without anything being
# wrong: the app then logs that reply at debug level and counts no OpenFlow error.
TOLERATES = "dcilab_tolerates"
ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_LLDP = 0x88CC


def match(**fields) -> parser.OFPMatch:
    return parser.OFPMatch(**fields)


def output(port: int) -> parser.OFPActionOutput:
    if port == ofp.OFPP_CONTROLLER:
        return parser.OFPActionOutput(port, ofp.OFPCML_NO_BUFFER)
    return parser.OFPActionOutput(port)


def group(group_id: int) -> parser.OFPActionGroup:
    return parser.OFPActionGroup(group_id)


def apply(actions: list) -> list:
    return [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]


def flow_add(priority: int, match_: parser.OFPMatch, actions: list, table_id: int = 0,
             cookie: int = COOKIE) -> parser.OFPFlowMod:
    return parser.OFPFlowMod(
        datapath=None, cookie=cookie, table_id=table_id, command=ofp.OFPFC_ADD,
        priority=priority, buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY, flags=0, match=match_, instructions=apply(actions))


def flow_delete_cookie(cookie: int, table_id: int) -> parser.OFPFlowMod:
    """Every flow of `table_id` carrying exactly `cookie`."""
    return parser.OFPFlowMod(
        datapath=None, cookie=cookie, cookie_mask=(1 << 64) - 1, table_id=table_id,
        command=ofp.OFPFC_DELETE, buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY, match=parser.OFPMatch())


def flow_delete_all() -> parser.OFPFlowMod:
    return parser.OFPFlowMod(
        datapath=None, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
        buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        match=parser.OFPMatch())


def group_delete_all() -> parser.OFPGroupMod:
    return parser.OFPGroupMod(datapath=None, command=ofp.OFPGC_DELETE, type_=ofp.OFPGT_ALL,
                              group_id=ofp.OFPG_ALL)


def bucket(actions: list, weight: int = 0, watch_port: int | None = None,
           watch_group: int | None = None) -> parser.OFPBucket:
    """A group bucket. Give it the port (or group) it depends on: the switch then skips it
    while that port is down, with no controller round trip."""
    return parser.OFPBucket(
        weight=weight, actions=actions,
        watch_port=ofp.OFPP_ANY if watch_port is None else watch_port,
        watch_group=ofp.OFPG_ANY if watch_group is None else watch_group)


def group_mod(group_id: int, group_type: int, buckets: list,
              command: int = ofp.OFPGC_ADD) -> parser.OFPGroupMod:
    return parser.OFPGroupMod(datapath=None, command=command, type_=group_type,
                              group_id=group_id, buckets=buckets)


def group_delete(group_id: int) -> parser.OFPGroupMod:
    return parser.OFPGroupMod(datapath=None, command=ofp.OFPGC_DELETE, type_=ofp.OFPGT_ALL,
                              group_id=group_id)


def push_vlan(vid: int) -> list:
    """Tag a packet with VLAN `vid` (how a protection detour is labelled)."""
    return [parser.OFPActionPushVlan(0x8100),
            parser.OFPActionSetField(vlan_vid=ofp.OFPVID_PRESENT | vid)]


def forget_in_port() -> parser.NXActionRegLoad:
    """Set in_port to 0 (none): a switch never outputs a packet to the port it came in by,
    so a packet turned back (a detour's first hop, or a detour's end hashing onto the spine
    it came from) must first forget where it came from. OVS lets the 16-bit NXM in_port
    be loaded (`load:0->NXM_OF_IN_PORT[]`); it refuses a set_field of the OXM one."""
    return parser.NXActionRegLoad(ofs_nbits=nicira_ext.ofs_nbits(0, 15), dst="in_port_nxm",
                                  value=0)


def set_eth_src(mac: str) -> parser.OFPActionSetField:
    return parser.OFPActionSetField(eth_src=mac)


def pop_vlan() -> parser.OFPActionPopVlan:
    return parser.OFPActionPopVlan()


def vlan_match(vid: int, **fields) -> parser.OFPMatch:
    return parser.OFPMatch(vlan_vid=ofp.OFPVID_PRESENT | vid, **fields)


def arp_answer(priority: int, ip: str, mac: str, table_id: int) -> parser.OFPFlowMod:
    """The switch itself answers an ARP request for `ip` (unicast or broadcast) with `mac`,
    out of the port it came in: hosts keep resolving their peers while no controller is
    connected (a restart, a lost control channel), when the kernel re-checks an entry."""
    move = parser.NXActionRegMove
    return flow_add(priority, match(eth_type=ETH_TYPE_ARP, arp_op=1, arp_tpa=ip), [
        move(src_field="eth_src", dst_field="eth_dst", n_bits=48),
        parser.OFPActionSetField(eth_src=mac),
        parser.OFPActionSetField(arp_op=2),
        move(src_field="arp_sha", dst_field="arp_tha", n_bits=48),
        parser.OFPActionSetField(arp_sha=mac),
        move(src_field="arp_spa", dst_field="arp_tpa", n_bits=32),
        parser.OFPActionSetField(arp_spa=ip),
        parser.OFPActionOutput(ofp.OFPP_IN_PORT)], table_id=table_id)


def packet_out(port: int, data: bytes) -> parser.OFPPacketOut:
    return parser.OFPPacketOut(datapath=None, buffer_id=ofp.OFP_NO_BUFFER,
                               in_port=ofp.OFPP_CONTROLLER, actions=[output(port)], data=data)


def barrier() -> parser.OFPBarrierRequest:
    return parser.OFPBarrierRequest(datapath=None)


def port_desc_request() -> parser.OFPPortDescStatsRequest:
    return parser.OFPPortDescStatsRequest(datapath=None, flags=0)


def flow_delete_strict(priority: int, match_: parser.OFPMatch,
                       table_id: int = 0) -> parser.OFPFlowMod:
    return parser.OFPFlowMod(
        datapath=None, table_id=table_id, command=ofp.OFPFC_DELETE_STRICT, priority=priority,
        buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        match=match_)


def flow_add_metered(priority: int, match_: parser.OFPMatch, meter_id: int, actions: list,
                     table_id: int = 0, cookie: int = COOKIE) -> parser.OFPFlowMod:
    """A flow whose packets pass meter `meter_id` before its actions."""
    return parser.OFPFlowMod(
        datapath=None, cookie=cookie, table_id=table_id, command=ofp.OFPFC_ADD,
        priority=priority, buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY, flags=0, match=match_,
        instructions=[parser.OFPInstructionMeter(meter_id, ofp.OFPIT_METER)] + apply(actions))


def meter_add(meter_id: int, rate_kbps: int, burst_kbits: int) -> parser.OFPMeterMod:
    """A meter that drops what exceeds `rate_kbps` (a policer)."""
    band = parser.OFPMeterBandDrop(rate=rate_kbps, burst_size=burst_kbits)
    return parser.OFPMeterMod(datapath=None, command=ofp.OFPMC_ADD,
                              flags=ofp.OFPMF_KBPS | ofp.OFPMF_BURST, meter_id=meter_id,
                              bands=[band])


def packet_in_limit(pps: int, burst: int) -> list[parser.OFPMeterMod]:
    """The switch's packets to its controller policed at `pps` (burst: packets), by
    OpenFlow's controller meter (Open vSwitch has it): a host flooding ARP or LLDP cannot
    take the controller's time from admissions and restoration. Set as `meter_set` sets."""
    band = parser.OFPMeterBandDrop(rate=pps, burst_size=burst)
    flags = ofp.OFPMF_PKTPS | ofp.OFPMF_BURST
    add, modify = (parser.OFPMeterMod(datapath=None, command=command, flags=flags,
                                      meter_id=ofp.OFPM_CONTROLLER, bands=[band])
                   for command in (ofp.OFPMC_ADD, ofp.OFPMC_MODIFY))
    setattr(add, TOLERATES, (ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_METER_EXISTS))
    return [add, modify]


def is_special_meter(meter_id: int) -> bool:
    """The controller, slow-path and all-meters ids, above the numbered meters."""
    return meter_id > ofp.OFPM_MAX


def meter_set(meter_id: int, rate_kbps: int, burst_kbits: int) -> list[parser.OFPMeterMod]:
    """The meter at this rate whether or not the switch has it already (a restarted
    controller finds the meters of live reservations in place, and a reservation that
    ended while it was down may have left its own): add it, tolerating "exists", then
    modify it. A meter is never deleted to be replaced: that would delete its flows."""
    add = meter_add(meter_id, rate_kbps, burst_kbits)
    setattr(add, TOLERATES, (ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_METER_EXISTS))
    return [add, meter_modify(meter_id, rate_kbps, burst_kbits)]


def meter_modify(meter_id: int, rate_kbps: int, burst_kbits: int) -> parser.OFPMeterMod:
    band = parser.OFPMeterBandDrop(rate=rate_kbps, burst_size=burst_kbits)
    return parser.OFPMeterMod(datapath=None, command=ofp.OFPMC_MODIFY,
                              flags=ofp.OFPMF_KBPS | ofp.OFPMF_BURST, meter_id=meter_id,
                              bands=[band])


def meter_delete(meter_id: int) -> parser.OFPMeterMod:
    return parser.OFPMeterMod(datapath=None, command=ofp.OFPMC_DELETE, flags=0,
                              meter_id=meter_id, bands=[])


def atomically(msgs: list, bundle_id: int) -> list:
    """`msgs` as one atomic, ordered bundle (the ONF bundle extension to OpenFlow 1.3, which
    Open vSwitch implements): packets meet the switch's tables as they were before or as
    they are after, never half rewritten. So a switch reprogrammed from empty tables when
    a controller (re)connects drops nothing. Meter mods cannot be bundled: they go first,
    since flows in the bundle use them (adds and modifies only: a deleted meter takes its
    flows with it)."""
    if any(isinstance(m, parser.OFPMeterMod) and m.command == ofp.OFPMC_DELETE for m in msgs):
        raise ValueError("a meter delete cannot go ahead of the bundle of its flows")
    flags = ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED
    return ([m for m in msgs if isinstance(m, parser.OFPMeterMod)]
            + [parser.ONFBundleCtrlMsg(None, bundle_id, ofp.ONF_BCT_OPEN_REQUEST, flags, [])]
            + [parser.ONFBundleAddMsg(None, bundle_id, flags, m, [])
               for m in msgs if not isinstance(m, parser.OFPMeterMod)]
            + [parser.ONFBundleCtrlMsg(None, bundle_id, ofp.ONF_BCT_COMMIT_REQUEST, flags, [])])


def is_bundle(msg) -> bool:
    return isinstance(msg, (parser.ONFBundleCtrlMsg, parser.ONFBundleAddMsg))


def meter_config_request() -> parser.OFPMeterConfigStatsRequest:
    """Every meter the switch has, with its bands."""
    return parser.OFPMeterConfigStatsRequest(None, 0, ofp.OFPM_ALL)


def port_stats_request() -> parser.OFPPortStatsRequest:
    return parser.OFPPortStatsRequest(datapath=None, flags=0, port_no=ofp.OFPP_ANY)


def flow_add_goto(priority: int, match_: parser.OFPMatch, table_id: int, goto: int,
                  actions: list = ()) -> parser.OFPFlowMod:
    """A flow that applies `actions` (possibly none) and continues in table `goto`."""
    instructions = (apply(list(actions)) if actions else []) + [
        parser.OFPInstructionGotoTable(goto)]
    return parser.OFPFlowMod(
        datapath=None, cookie=COOKIE, table_id=table_id, command=ofp.OFPFC_ADD,
        priority=priority, buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY, flags=0, match=match_, instructions=instructions)


def resubmit(table_id: int) -> parser.NXActionResubmitTable:
    """OVS: look the packet up in `table_id` now, then carry on here."""
    # The NX action keeps OpenFlow 1.0's 16-bit port numbers: 0xfff8 is "the in_port".
    return parser.NXActionResubmitTable(in_port=0xFFF8, table_id=table_id)


IP_PROTO_TCP, IP_PROTO_UDP = 6, 17
_L4 = {IP_PROTO_TCP: ("tcp_src_nxm", "tcp_dst_nxm"), IP_PROTO_UDP: ("udp_src_nxm", "udp_dst_nxm")}


def learn_five_tuple(table_id: int, ip_proto: int, priority: int,
                     idle_timeout: int) -> parser.NXActionLearn:
    """OVS learn: add to `table_id` a flow matching this packet's 5-tuple (no actions), so
    the switch counts every TCP/UDP flow without asking the controller."""
    sport, dport = _L4[ip_proto]
    specs = [parser.NXFlowSpecMatch(src=ETH_TYPE_IP, dst=("eth_type_nxm", 0), n_bits=16),
             parser.NXFlowSpecMatch(src=ip_proto, dst=("ip_proto_nxm", 0), n_bits=8)]
    specs += [parser.NXFlowSpecMatch(src=(field, 0), dst=(field, 0), n_bits=bits)
              for field, bits in (("ipv4_src_nxm", 32), ("ipv4_dst_nxm", 32), (sport, 16),
                                  (dport, 16))]
    return parser.NXActionLearn(table_id=table_id, specs=specs, idle_timeout=idle_timeout,
                                priority=priority, cookie=COOKIE)


def flow_stats_request(table_id: int) -> parser.OFPFlowStatsRequest:
    return parser.OFPFlowStatsRequest(datapath=None, flags=0, table_id=table_id,
                                      out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                                      cookie=0, cookie_mask=0, match=parser.OFPMatch())
