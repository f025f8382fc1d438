"""OpenFlow 1.3 message builders (os_ken.ofproto only; no datapath, no socket)."""

from __future__ import annotations

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

# Every flow dcilab installs carries this cookie, so its own flows can be told apart.
COOKIE = 0xDC1AB
ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806


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


def flow_delete_all() -> parser.OFPFlowMod:
    return parser.OFPFlowMod(
        datapath=None, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
        buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        match=parser.OFPMatch())


def group_delete_all() -> parser.OFPGroupMod:
    return parser.OFPGroupMod(datapath=None, command=ofp.OFPGC_DELETE, type_=ofp.OFPGT_ALL,
                              group_id=ofp.OFPG_ALL)


def select_group_add(group_id: int, ports: tuple[int, ...]) -> parser.OFPGroupMod:
    """A select group hashing over `ports` with equal weight (OVS hashes the 5-tuple)."""
    buckets = [parser.OFPBucket(weight=1, watch_port=ofp.OFPP_ANY, watch_group=ofp.OFPG_ANY,
                                actions=[output(port)]) for port in ports]
    return parser.OFPGroupMod(datapath=None, command=ofp.OFPGC_ADD, type_=ofp.OFPGT_SELECT,
                              group_id=group_id, buckets=buckets)


def packet_out(port: int, data: bytes) -> parser.OFPPacketOut:
    return parser.OFPPacketOut(datapath=None, buffer_id=ofp.OFP_NO_BUFFER,
                               in_port=ofp.OFPP_CONTROLLER, actions=[output(port)], data=data)


def barrier() -> parser.OFPBarrierRequest:
    return parser.OFPBarrierRequest(datapath=None)


def port_desc_request() -> parser.OFPPortDescStatsRequest:
    return parser.OFPPortDescStatsRequest(datapath=None, flags=0)
