"""A simulated OpenFlow 1.3 switch pipeline for unit tests.

Tests feed it the os-ken messages a controller builds (``datapath=None``) and
then ask where a packet would go, instead of comparing rule text.  It models
the parts of OpenFlow 1.3 that decide forwarding: flow tables with priorities
and masked matches, goto-table, the action set, groups, meters (stored and
reported, never rate-limited) and a multi-switch fabric.  It is deliberately
strict: things a real switch would reject raise :class:`FakeOFTableError`.

A packet is a plain dict of OXM field names to values, e.g.
``{"in_port": 1, "eth_type": 0x0800, "ipv4_dst": "10.2.1.5"}``.  Absent fields
do not match, except ``metadata`` (starts as 0) and ``vlan_vid`` (absent means
untagged, i.e. it matches ``OFPVID_NONE``).  An optional ``ip_ttl`` key is
decremented by DecNwTtl and the packet is dropped when it reaches 0.

Not modelled: timeouts, counters, buffers, QinQ (a second VLAN tag), MPLS/PBB
actions, and meter rate limiting.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Collection, Iterable, Iterator, Mapping, NamedTuple, Optional

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from dcilab.openflow.messages import TOLERATES

Packet = dict[str, Any]
# A normalised match: sorted (field, value & mask, mask); mask -1 means exact.
MatchKey = tuple[tuple[str, int, int], ...]
# SELECT-group choices that led to an output: (group_id, bucket index).
Choices = tuple[tuple[int, int], ...]

EXACT = -1  # all-ones mask of any width, so exact and fully-masked fields compare equal
MAX_GROUP_DEPTH = 16


class FakeOFTableError(Exception):
    """The messages or the packet would be rejected by (or break) a real switch."""


class _TtlExpired(Exception):
    """Internal: DecNwTtl took ip_ttl to zero, so this copy of the packet is dropped."""


# --- field values -----------------------------------------------------------

_MAC_FIELDS = frozenset({"eth_src", "eth_dst", "arp_sha", "arp_tha", "ipv6_nd_sll", "ipv6_nd_tll"})
_IPV4_FIELDS = frozenset({"ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa"})
_IPV6_FIELDS = frozenset({"ipv6_src", "ipv6_dst", "ipv6_nd_target"})
# Widths of maskable fields, so an explicit all-ones mask normalises to EXACT.
_FIELD_BITS = {
    **{f: 48 for f in _MAC_FIELDS},
    **{f: 32 for f in _IPV4_FIELDS},
    **{f: 128 for f in _IPV6_FIELDS},
    "metadata": 64,
    "tunnel_id": 64,
    "vlan_vid": 13,
    "ipv6_flabel": 20,
    "pbb_isid": 24,
    "ipv6_exthdr": 9,
}

_IP = frozenset({0x0800, 0x86DD})
# field -> (prerequisite field, allowed values), as in the OpenFlow 1.3 OXM table.
_PREREQS: dict[str, tuple[str, frozenset[int]]] = {
    **{f: ("eth_type", frozenset({0x0800})) for f in ("ipv4_src", "ipv4_dst")},
    **{f: ("eth_type", frozenset({0x86DD})) for f in ("ipv6_src", "ipv6_dst", "ipv6_flabel", "ipv6_exthdr")},
    **{f: ("eth_type", frozenset({0x0806})) for f in ("arp_op", "arp_spa", "arp_tpa", "arp_sha", "arp_tha")},
    **{f: ("eth_type", _IP) for f in ("ip_proto", "ip_dscp", "ip_ecn")},
    **{f: ("eth_type", frozenset({0x8847, 0x8848})) for f in ("mpls_label", "mpls_tc", "mpls_bos")},
    **{f: ("ip_proto", frozenset({6})) for f in ("tcp_src", "tcp_dst")},
    **{f: ("ip_proto", frozenset({17})) for f in ("udp_src", "udp_dst")},
    **{f: ("ip_proto", frozenset({132})) for f in ("sctp_src", "sctp_dst")},
    **{f: ("ip_proto", frozenset({1})) for f in ("icmpv4_type", "icmpv4_code")},
    **{f: ("ip_proto", frozenset({58})) for f in ("icmpv6_type", "icmpv6_code")},
    "ipv6_nd_target": ("icmpv6_type", frozenset({135, 136})),
    "ipv6_nd_sll": ("icmpv6_type", frozenset({135})),
    "ipv6_nd_tll": ("icmpv6_type", frozenset({136})),
}


def _to_int(name: str, value: Any) -> int:
    """A field value (int, MAC or IP string) as an int, so masks apply uniformly."""
    if isinstance(value, int):
        return value
    if name in _MAC_FIELDS:
        return int(str(value).replace(":", "").replace("-", ""), 16)
    if name in _IPV4_FIELDS or name in _IPV6_FIELDS:
        return int(ipaddress.ip_address(value))
    raise FakeOFTableError(f"cannot interpret {name}={value!r}")


_FIELD_BITS = {"eth_src": 48, "eth_dst": 48, "arp_sha": 48, "arp_tha": 48, "arp_spa": 32,
               "arp_tpa": 32, "ipv4_src": 32, "ipv4_dst": 32}


def _canon_value(name: str, value: Any) -> Any:
    """A packet field in one spelling (lower-case MAC, compressed IP, VID with present bit)."""
    if name in _MAC_FIELDS:
        raw = f"{_to_int(name, value):012x}"
        return ":".join(raw[i : i + 2] for i in range(0, 12, 2))
    if name in _IPV4_FIELDS or name in _IPV6_FIELDS:
        return str(ipaddress.ip_address(value if isinstance(value, str) else int(value)))
    if name == "vlan_vid":
        return int(value) | ofp.OFPVID_PRESENT
    return value


def canon_packet(packet: Mapping[str, Any]) -> Packet:
    """A normalised copy of a packet dict."""
    return {name: _canon_value(name, value) for name, value in packet.items()}


def _match_item(name: str, value: Any) -> tuple[str, int, int]:
    if isinstance(value, tuple):
        val, mask = _to_int(name, value[0]), _to_int(name, value[1])
    else:
        val, mask = _to_int(name, value), EXACT
    bits = _FIELD_BITS.get(name)
    if bits is not None and mask == (1 << bits) - 1:
        mask = EXACT
    return (name, val & mask, mask)


def match_key(match: parser.OFPMatch) -> MatchKey:
    """The canonical, comparable form of an OFPMatch."""
    return tuple(sorted(_match_item(name, value) for name, value in match.items()))


def _packet_int(packet: Mapping[str, Any], name: str) -> Optional[int]:
    if name in packet:
        return _to_int(name, packet[name])
    if name == "metadata":
        return 0
    if name == "vlan_vid":
        return ofp.OFPVID_NONE  # untagged
    return None


def _key_matches(key: MatchKey, packet: Mapping[str, Any]) -> bool:
    for name, value, mask in key:
        got = _packet_int(packet, name)
        if got is None or (got & mask) != value:
            return False
    return True


def _covers(general: MatchKey, specific: MatchKey) -> bool:
    """True if every packet matching `specific` also matches `general` (non-strict delete)."""
    spec = {name: (value, mask) for name, value, mask in specific}
    for name, value, mask in general:
        if name not in spec:
            return False
        s_value, s_mask = spec[name]
        if mask & ~s_mask or (s_value & mask) != value:
            return False
    return True


def _overlaps(a: MatchKey, b: MatchKey) -> bool:
    """True if some packet could match both (they agree on every commonly-masked bit)."""
    b_fields = {name: (value, mask) for name, value, mask in b}
    for name, value, mask in a:
        if name in b_fields:
            b_value, b_mask = b_fields[name]
            if (value ^ b_value) & mask & b_mask:
                return False
    return True


def _check_prereqs(key: MatchKey) -> None:
    exact = {name: value for name, value, mask in key if mask == EXACT}
    for name, _value, _mask in key:
        if name == "vlan_pcp" and not exact.get("vlan_vid", 0) & ofp.OFPVID_PRESENT:
            raise FakeOFTableError("vlan_pcp match needs a tagged vlan_vid match")
        prereq = _PREREQS.get(name)
        if prereq and exact.get(prereq[0]) not in prereq[1]:
            raise FakeOFTableError(f"{name} match needs {prereq[0]} in {sorted(prereq[1])}")


def _json(obj: Any) -> str:
    """Canonical text of an os-ken object, for hashable state snapshots."""
    return json.dumps(obj.to_jsondict(), sort_keys=True)


# --- tables -----------------------------------------------------------------


@dataclass
class FlowEntry:
    table_id: int
    priority: int
    match: MatchKey
    instructions: list[Any]
    cookie: int = 0

    def matches(self, packet: Mapping[str, Any]) -> bool:
        return _key_matches(self.match, packet)

    def actions(self) -> Iterator[Any]:
        """Every action in apply- and write-actions instructions."""
        for inst in self.instructions:
            yield from getattr(inst, "actions", None) or []

    def outputs_to(self, port: int) -> bool:
        return any(isinstance(a, parser.OFPActionOutput) and a.port == port for a in self.actions())

    def uses_group(self, group_id: int) -> bool:
        return any(isinstance(a, parser.OFPActionGroup) and a.group_id == group_id for a in self.actions())

    def meter_ids(self) -> set[int]:
        return {i.meter_id for i in self.instructions if isinstance(i, parser.OFPInstructionMeter)}

    def canonical(self) -> tuple[Any, ...]:
        # OpenFlow executes instructions in a fixed order, so their list order is irrelevant.
        insts = tuple(sorted(_json(i) for i in self.instructions))
        return (self.table_id, self.priority, self.match, self.cookie, insts)


class TableState(NamedTuple):
    """Hashable snapshot of a switch's state; equal states forward identically."""

    flows: frozenset[tuple[Any, ...]]
    groups: frozenset[tuple[Any, ...]]
    meters: frozenset[tuple[Any, ...]]


@dataclass(frozen=True)
class Output:
    """One copy of the packet leaving the switch.

    `choices` lists the SELECT-group buckets taken to get here; a non-empty
    value means this output is one alternative among others, not certain.
    Iterating gives the (port, packet) pair.
    """

    port: int
    packet: Packet
    choices: Choices = ()

    @property
    def alternative(self) -> bool:
        return bool(self.choices)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.port, self.packet))


# Order in which an action set executes (OpenFlow 1.3 section 5.10); output comes last.
_ACTION_SET_ORDER = (
    parser.OFPActionCopyTtlIn,
    parser.OFPActionPopVlan,
    parser.OFPActionPushVlan,
    parser.OFPActionCopyTtlOut,
    parser.OFPActionDecNwTtl,
    parser.OFPActionSetNwTtl,
    parser.OFPActionSetField,
    parser.OFPActionSetQueue,
    parser.OFPActionGroup,
    parser.OFPActionOutput,
)
# The fixed execution order of instructions within one flow entry.
_INSTRUCTION_ORDER = {
    ofp.OFPIT_METER: 0,
    ofp.OFPIT_APPLY_ACTIONS: 1,
    ofp.OFPIT_CLEAR_ACTIONS: 2,
    ofp.OFPIT_WRITE_ACTIONS: 3,
    ofp.OFPIT_WRITE_METADATA: 4,
    ofp.OFPIT_GOTO_TABLE: 5,
}
# Messages that do not change flow/group/meter state.
_IGNORED_MESSAGES = (parser.OFPBarrierRequest, parser.OFPPacketOut, parser.OFPSetConfig)


def _action_set_key(action: Any) -> tuple[str, str]:
    """Slot of an action in the action set: one per type, set-field one per field."""
    return (type(action).__name__, getattr(action, "key", ""))


class FakeOFTable:
    """One OpenFlow 1.3 switch: flow tables, groups and meters.

    `ports`, if given, is the switch's port list, used to expand OFPP_FLOOD and
    OFPP_ALL; without it those stay as the single reserved port number.
    """

    def __init__(self, ports: Optional[Collection[int]] = None) -> None:
        self.tables: dict[int, list[FlowEntry]] = {}
        self.groups: dict[int, parser.OFPGroupMod] = {}
        self.meters: dict[int, parser.OFPMeterMod] = {}
        self.bundles: dict[int, list[Any]] = {}      # open bundles: what they will apply
        self.ports = frozenset(ports) if ports is not None else None

    # --- state ---------------------------------------------------------------

    def flow_count(self, table_id: Optional[int] = None) -> int:
        if table_id is not None:
            return len(self.tables.get(table_id, []))
        return sum(len(entries) for entries in self.tables.values())

    def flows(self) -> list[FlowEntry]:
        return [e for tid in sorted(self.tables) for e in self.tables[tid]]

    def table_state(self) -> TableState:
        return TableState(
            flows=frozenset(e.canonical() for e in self.flows()),
            groups=frozenset(
                (gid, g.type, tuple(_json(b) for b in g.buckets)) for gid, g in self.groups.items()
            ),
            meters=frozenset(
                (mid, m.flags, tuple(sorted(_json(b) for b in m.bands))) for mid, m in self.meters.items()
            ),
        )

    # --- applying messages -------------------------------------------------

    def apply(self, msgs: Iterable[Any]) -> None:
        """Apply controller messages in order, as a switch would. A bundle (ONF extension)
        is applied at its commit, all or nothing."""
        for msg in msgs:
            if isinstance(msg, parser.ONFBundleCtrlMsg):
                self._bundle_ctrl(msg)
            elif isinstance(msg, parser.ONFBundleAddMsg):
                if msg.bundle_id not in self.bundles:
                    raise FakeOFTableError(f"add to bundle {msg.bundle_id}, never opened")
                self.bundles[msg.bundle_id].append(msg.message)
            elif isinstance(msg, parser.OFPFlowMod):
                self._flow_mod(msg)
            elif isinstance(msg, parser.OFPGroupMod):
                self._group_mod(msg)
            elif isinstance(msg, parser.OFPMeterMod):
                self._meter_mod(msg)
            elif isinstance(msg, _IGNORED_MESSAGES) or type(msg).__name__.endswith("Request"):
                continue
            else:
                # e.g. OFPPortMod: silently ignoring state changes would make tests lie.
                raise FakeOFTableError(f"unsupported message {type(msg).__name__}")

    def _bundle_ctrl(self, msg: parser.ONFBundleCtrlMsg) -> None:
        if msg.type == ofp.ONF_BCT_OPEN_REQUEST:
            if msg.bundle_id in self.bundles:
                raise FakeOFTableError(f"bundle {msg.bundle_id} is already open")
            self.bundles[msg.bundle_id] = []
        elif msg.type == ofp.ONF_BCT_COMMIT_REQUEST:
            if not msg.flags & ofp.ONF_BF_ATOMIC:
                raise FakeOFTableError(f"bundle {msg.bundle_id} is not atomic")
            inner = self.bundles.pop(msg.bundle_id)
            # (entries copied: a modify assigns an entry's instructions in place)
            before = ({t: [copy.copy(e) for e in entries] for t, entries in self.tables.items()},
                      dict(self.groups), dict(self.meters))
            try:
                self.apply(inner)
            except FakeOFTableError:
                self.tables, self.groups, self.meters = before
                raise
        else:
            raise FakeOFTableError(f"unsupported bundle control type {msg.type}")

    def _flow_mod(self, fm: parser.OFPFlowMod) -> None:
        if fm.command == ofp.OFPFC_ADD:
            self._add_flow(fm)
        elif fm.command in (ofp.OFPFC_MODIFY, ofp.OFPFC_MODIFY_STRICT):
            self._modify_flows(fm, strict=fm.command == ofp.OFPFC_MODIFY_STRICT)
        elif fm.command in (ofp.OFPFC_DELETE, ofp.OFPFC_DELETE_STRICT):
            self._delete_flows(fm, strict=fm.command == ofp.OFPFC_DELETE_STRICT)
        else:
            raise FakeOFTableError(f"bad flow-mod command {fm.command}")

    def _add_flow(self, fm: parser.OFPFlowMod) -> None:
        if fm.table_id > ofp.OFPTT_MAX:
            raise FakeOFTableError(f"flow add to invalid table {fm.table_id}")
        key = match_key(fm.match)
        _check_prereqs(key)
        self._check_instructions(fm.table_id, fm.instructions)
        entries = self.tables.setdefault(fm.table_id, [])
        same_priority = [e for e in entries if e.priority == fm.priority]
        if fm.flags & ofp.OFPFF_CHECK_OVERLAP and any(
            _overlaps(e.match, key) and e.match != key for e in same_priority
        ):
            raise FakeOFTableError(f"overlapping flow at priority {fm.priority} in table {fm.table_id}")
        # An identical match and priority replaces the entry: this makes re-adding idempotent.
        entries[:] = [e for e in entries if not (e.priority == fm.priority and e.match == key)]
        entries.append(FlowEntry(fm.table_id, fm.priority, key, list(fm.instructions), fm.cookie))

    def _modify_flows(self, fm: parser.OFPFlowMod, strict: bool) -> None:
        if fm.table_id == ofp.OFPTT_ALL:
            raise FakeOFTableError("flow modify cannot use OFPTT_ALL")
        self._check_instructions(fm.table_id, fm.instructions)
        # OpenFlow 1.3: a modify that selects nothing adds nothing.
        for entry in self._select(fm, strict, filter_outputs=False):
            entry.instructions = list(fm.instructions)

    def _delete_flows(self, fm: parser.OFPFlowMod, strict: bool) -> None:
        doomed = {id(e) for e in self._select(fm, strict, filter_outputs=True)}
        self._remove_flows(lambda e: id(e) in doomed)

    def _remove_flows(self, doomed: Callable[[FlowEntry], bool]) -> None:
        for entries in self.tables.values():
            entries[:] = [e for e in entries if not doomed(e)]

    def _select(self, fm: parser.OFPFlowMod, strict: bool, filter_outputs: bool) -> list[FlowEntry]:
        """Entries a modify/delete applies to, honouring table, match, cookie and out_port/group."""
        key = match_key(fm.match)
        table_ids = list(self.tables) if fm.table_id == ofp.OFPTT_ALL else [fm.table_id]
        chosen = []
        for tid in table_ids:
            for e in self.tables.get(tid, []):
                if strict and (e.match != key or e.priority != fm.priority):
                    continue
                if not strict and not _covers(key, e.match):
                    continue
                if (e.cookie ^ fm.cookie) & fm.cookie_mask:
                    continue
                # Note os-ken defaults out_port/out_group to 0, a real filter: pass OFPP_ANY/OFPG_ANY.
                if filter_outputs and fm.out_port != ofp.OFPP_ANY and not e.outputs_to(fm.out_port):
                    continue
                if filter_outputs and fm.out_group != ofp.OFPG_ANY and not e.uses_group(fm.out_group):
                    continue
                chosen.append(e)
        return chosen

    def _check_instructions(self, table_id: int, instructions: list[Any]) -> None:
        types = [i.type for i in instructions]
        if len(types) != len(set(types)):
            raise FakeOFTableError(f"duplicate instruction types {types}")
        for inst in instructions:
            if isinstance(inst, parser.OFPInstructionGotoTable):
                if not table_id < inst.table_id <= ofp.OFPTT_MAX:
                    raise FakeOFTableError(f"goto table {inst.table_id} from table {table_id}")
            elif isinstance(inst, parser.OFPInstructionMeter):
                if inst.meter_id not in self.meters:
                    raise FakeOFTableError(f"flow uses unknown meter {inst.meter_id}")
            elif isinstance(inst, parser.OFPInstructionActions):
                self._check_actions(inst.actions or [])

    def _check_actions(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, parser.OFPActionGroup) and action.group_id not in self.groups:
                raise FakeOFTableError(f"action uses unknown group {action.group_id}")
            if isinstance(action, parser.OFPActionOutput) and action.port in (0, ofp.OFPP_ANY):
                raise FakeOFTableError(f"output to invalid port {action.port}")

    def _group_mod(self, gm: parser.OFPGroupMod) -> None:
        if gm.command == ofp.OFPGC_DELETE:
            doomed = set(self.groups) if gm.group_id == ofp.OFPG_ALL else {gm.group_id}
            for gid in doomed & set(self.groups):
                del self.groups[gid]
            # Deleting a group also deletes the flows that forward to it (OF 1.3, 6.5).
            self._remove_flows(lambda e: any(e.uses_group(gid) for gid in doomed))
            return
        if gm.command == ofp.OFPGC_ADD and gm.group_id in self.groups:
            raise FakeOFTableError(f"group {gm.group_id} already exists")
        if gm.command == ofp.OFPGC_MODIFY and gm.group_id not in self.groups:
            raise FakeOFTableError(f"modify of unknown group {gm.group_id}")
        if gm.command not in (ofp.OFPGC_ADD, ofp.OFPGC_MODIFY):
            raise FakeOFTableError(f"bad group-mod command {gm.command}")
        if gm.group_id > ofp.OFPG_MAX:
            raise FakeOFTableError(f"invalid group id {gm.group_id}")
        self._check_buckets(gm)
        self.groups[gm.group_id] = gm

    def _check_buckets(self, gm: parser.OFPGroupMod) -> None:
        weights = [b.weight for b in gm.buckets]
        if gm.type == ofp.OFPGT_SELECT:
            # os-ken's default weight is 0; an all-zero select group can never forward.
            if gm.buckets and not any(weights):
                raise FakeOFTableError(f"select group {gm.group_id} has no bucket with weight > 0")
        elif any(weights):
            raise FakeOFTableError(f"group {gm.group_id}: weights are only for select groups")
        if gm.type == ofp.OFPGT_INDIRECT and len(gm.buckets) != 1:
            raise FakeOFTableError(f"indirect group {gm.group_id} needs exactly one bucket")
        if gm.type == ofp.OFPGT_FF:
            for b in gm.buckets:
                if b.watch_port == ofp.OFPP_ANY and b.watch_group == ofp.OFPG_ANY:
                    raise FakeOFTableError(f"fast-failover group {gm.group_id} bucket watches nothing")
        for b in gm.buckets:
            self._check_actions(b.actions or [])

    def _meter_mod(self, mm: parser.OFPMeterMod) -> None:
        if mm.command == ofp.OFPMC_DELETE:
            doomed = set(self.meters) if mm.meter_id == ofp.OFPM_ALL else {mm.meter_id}
            for mid in doomed & set(self.meters):
                del self.meters[mid]
            # As with groups, flows using a deleted meter are removed.
            self._remove_flows(lambda e: bool(e.meter_ids() & doomed))
            return
        if mm.command == ofp.OFPMC_ADD and mm.meter_id in self.meters:
            if getattr(mm, TOLERATES, None) == (ofp.OFPET_METER_MOD_FAILED,
                                                ofp.OFPMMFC_METER_EXISTS):
                return                        # the switch's error, which the app ignores
            raise FakeOFTableError(f"meter {mm.meter_id} already exists")
        if mm.command == ofp.OFPMC_MODIFY and mm.meter_id not in self.meters:
            raise FakeOFTableError(f"modify of unknown meter {mm.meter_id}")
        if mm.command not in (ofp.OFPMC_ADD, ofp.OFPMC_MODIFY):
            raise FakeOFTableError(f"bad meter-mod command {mm.command}")
        self.meters[mm.meter_id] = mm

    # --- forwarding ------------------------------------------------------------

    def lookup(self, packet: Mapping[str, Any], table_id: int = 0) -> Optional[FlowEntry]:
        """The highest-priority entry matching `packet` in one table, or None on a miss."""
        pkt = canon_packet(packet)
        hits = [e for e in self.tables.get(table_id, []) if e.matches(pkt)]
        if not hits:
            return None
        top = max(e.priority for e in hits)
        best = [e for e in hits if e.priority == top]
        if len(best) > 1:
            # A real switch picks one arbitrarily; a test must not depend on that.
            raise FakeOFTableError(f"ambiguous match in table {table_id} at priority {top}: {best}")
        return best[0]

    def outputs(
        self,
        packet: Mapping[str, Any],
        table_id: int = 0,
        live_ports: Optional[Collection[int]] = None,
        flood_ports: Optional[Collection[int]] = None,
    ) -> list[Output]:
        """Every copy of `packet` the pipeline would send, with rewrites applied.

        `live_ports` decides fast-failover (and select) bucket liveness; None means all live.
        `flood_ports` overrides the switch's `ports` for expanding FLOOD/ALL.
        """
        return self._run(packet, table_id, live_ports, flood_ports).outputs

    def is_output(self, packet: Mapping[str, Any], port: int, **kwargs: Any) -> bool:
        """True if the packet could leave via `port` (any select alternative counts)."""
        return port in self.possible_ports(packet, **kwargs)

    def possible_ports(self, packet: Mapping[str, Any], **kwargs: Any) -> set[int]:
        return {out.port for out in self.outputs(packet, **kwargs)}

    def learns_for(self, packet: Mapping[str, Any], table_id: int = 0) -> list[Any]:
        """The NX learn actions the packet would execute (OVS adds a flow for each)."""
        return self._run(packet, table_id).learns

    def meter_for(self, packet: Mapping[str, Any], table_id: int = 0) -> Optional[int]:
        """The first meter the pipeline applies to the packet, if any."""
        meters = self._run(packet, table_id).meters
        return meters[0] if meters else None

    def _run(
        self,
        packet: Mapping[str, Any],
        table_id: int,
        live_ports: Optional[Collection[int]] = None,
        flood_ports: Optional[Collection[int]] = None,
    ) -> "_Run":
        flood = frozenset(flood_ports) if flood_ports is not None else self.ports
        run = _Run(self, frozenset(live_ports) if live_ports is not None else None, flood)
        if "in_port" not in packet:
            raise FakeOFTableError("packet needs an in_port")
        run.pipeline(canon_packet(packet), table_id)
        return run


@dataclass
class _Run:
    """State of one packet's trip through one switch's pipeline."""

    table: FakeOFTable
    live_ports: Optional[frozenset[int]]
    flood_ports: Optional[frozenset[int]]
    outputs: list[Output] = field(default_factory=list)
    meters: list[int] = field(default_factory=list)
    learns: list[Any] = field(default_factory=list)   # NX learn actions executed

    def pipeline(self, pkt: Packet, table_id: Optional[int]) -> None:
        action_set: dict[tuple[str, str], Any] = {}
        try:
            while table_id is not None:
                entry = self.table.lookup(pkt, table_id)
                if entry is None:
                    return  # table miss without a miss entry: drop, action set discarded
                table_id = self._instructions(entry, pkt, action_set)
            self._actions(self._ordered_action_set(action_set), pkt, ())
        except _TtlExpired:
            return

    def _instructions(
        self, entry: FlowEntry, pkt: Packet, action_set: dict[tuple[str, str], Any]
    ) -> Optional[int]:
        """Execute one entry's instructions; return the goto table, if any."""
        next_table = None
        for inst in sorted(entry.instructions, key=lambda i: _INSTRUCTION_ORDER[i.type]):
            if isinstance(inst, parser.OFPInstructionMeter):
                self.meters.append(inst.meter_id)
            elif isinstance(inst, parser.OFPInstructionWriteMetadata):
                mask = inst.metadata_mask
                pkt["metadata"] = (pkt.get("metadata", 0) & ~mask) | (inst.metadata & mask)
            elif isinstance(inst, parser.OFPInstructionGotoTable):
                next_table = inst.table_id
            elif inst.type == ofp.OFPIT_APPLY_ACTIONS:
                self._actions(inst.actions, pkt, ())
            elif inst.type == ofp.OFPIT_CLEAR_ACTIONS:
                action_set.clear()
            elif inst.type == ofp.OFPIT_WRITE_ACTIONS:
                action_set.update((_action_set_key(a), a) for a in inst.actions)
        return next_table

    @staticmethod
    def _ordered_action_set(action_set: dict[tuple[str, str], Any]) -> list[Any]:
        actions = list(action_set.values())
        if any(isinstance(a, parser.OFPActionGroup) for a in actions):
            actions = [a for a in actions if not isinstance(a, parser.OFPActionOutput)]
        rank = {cls: n for n, cls in enumerate(_ACTION_SET_ORDER)}
        return sorted(actions, key=lambda a: rank.get(type(a), len(rank)))

    def _actions(self, actions: list[Any], pkt: Packet, choices: Choices, depth: int = 0) -> None:
        """Execute an action list in order, mutating `pkt` (the caller's copy)."""
        for action in actions:
            if isinstance(action, parser.OFPActionOutput):
                self._emit(action.port, pkt, choices)
            elif isinstance(action, parser.OFPActionGroup):
                self._group(action.group_id, pkt, choices, depth + 1)
            elif isinstance(action, parser.OFPActionSetField):
                if action.key in ("vlan_vid", "vlan_pcp") and "vlan_vid" not in pkt:
                    raise FakeOFTableError(f"set_field {action.key} on an untagged packet")
                pkt[action.key] = _canon_value(action.key, action.value)
            elif isinstance(action, parser.OFPActionPushVlan):
                if "vlan_vid" in pkt:
                    raise FakeOFTableError("push_vlan on a tagged packet (QinQ is not modelled)")
                pkt["vlan_vid"] = ofp.OFPVID_PRESENT  # OF 1.3: a new outermost tag has VID 0
            elif isinstance(action, parser.OFPActionPopVlan):
                if "vlan_vid" not in pkt:
                    raise FakeOFTableError("pop_vlan on an untagged packet")
                pkt.pop("vlan_vid")
                pkt.pop("vlan_pcp", None)
            elif isinstance(action, parser.OFPActionDecNwTtl):
                if "ip_ttl" in pkt:
                    pkt["ip_ttl"] -= 1
                    if pkt["ip_ttl"] <= 0:
                        raise _TtlExpired()
            elif isinstance(action, parser.NXActionResubmitTable):
                # OVS resubmit: look the packet up in another table now and run the apply
                # actions of what matches there, and of what matches in the tables its
                # goto names, as OVS does (a miss does nothing). What those actions change
                # stays changed for the actions after the resubmit, as in OVS.
                if depth > MAX_GROUP_DEPTH:
                    raise FakeOFTableError("resubmits too deep (a resubmit loop?)")
                table_id = action.table_id
                while table_id is not None:
                    entry = self.table.lookup(pkt, table_id)
                    table_id = None
                    for inst in entry.instructions if entry is not None else ():
                        if inst.type == ofp.OFPIT_APPLY_ACTIONS:
                            self._actions(inst.actions, pkt, choices, depth + 1)
                        elif isinstance(inst, parser.OFPInstructionGotoTable):
                            table_id = inst.table_id
            elif isinstance(action, parser.NXActionRegLoad) and action.dst == "in_port_nxm":
                pkt["in_port"] = action.value     # OVS: `load:V->NXM_OF_IN_PORT[]`
            elif isinstance(action, parser.NXActionRegMove):
                # OVS `move`: whole fields only (a partial move is not modelled)
                if action.src_ofs or action.dst_ofs or action.n_bits != _FIELD_BITS.get(
                        action.src_field) or _FIELD_BITS.get(action.dst_field) != action.n_bits:
                    raise FakeOFTableError(f"move {action.src_field}->{action.dst_field} of "
                                           f"{action.n_bits} bits is not modelled")
                if action.src_field not in pkt:
                    raise FakeOFTableError(f"move from {action.src_field}, absent")
                pkt[action.dst_field] = pkt[action.src_field]
            elif isinstance(action, parser.NXActionLearn):
                self.learns.append(action)   # it adds a flow in the switch; no effect here
            elif not isinstance(action, parser.OFPActionSetQueue):
                raise FakeOFTableError(f"action {type(action).__name__} is not modelled")

    def _emit(self, port: int, pkt: Packet, choices: Choices) -> None:
        in_port = pkt["in_port"]
        if port == ofp.OFPP_IN_PORT:
            port = in_port
        elif port == in_port:
            return  # switches drop output to the ingress port unless it is OFPP_IN_PORT
        sent = {k: v for k, v in pkt.items() if k != "metadata"}  # metadata never leaves the switch
        if port in (ofp.OFPP_FLOOD, ofp.OFPP_ALL) and self.flood_ports is not None:
            for p in sorted(self.flood_ports - {in_port}):
                self.outputs.append(Output(p, dict(sent), choices))
            return
        self.outputs.append(Output(port, sent, choices))

    def _group(self, group_id: int, pkt: Packet, choices: Choices, depth: int) -> None:
        if depth > MAX_GROUP_DEPTH:
            raise FakeOFTableError(f"group chain through {group_id} is too deep (a group loop?)")
        group = self.table.groups[group_id]
        buckets = list(enumerate(group.buckets))
        if group.type == ofp.OFPGT_SELECT:
            for index, bucket in buckets:
                if bucket.weight > 0 and self._live(bucket, depth):
                    self._bucket(bucket, pkt, choices + ((group_id, index),), depth)
        elif group.type == ofp.OFPGT_FF:
            live = [b for _, b in buckets if self._live(b, depth)]
            if live:
                self._bucket(live[0], pkt, choices, depth)
        else:  # ALL clones to every bucket; INDIRECT has exactly one
            for _, bucket in buckets:
                self._bucket(bucket, pkt, choices, depth)

    def _bucket(self, bucket: Any, pkt: Packet, choices: Choices, depth: int) -> None:
        # Each bucket works on its own clone; OVS runs bucket actions in list order.
        try:
            self._actions(bucket.actions or [], dict(pkt), choices, depth)
        except _TtlExpired:
            pass

    def _live(self, bucket: Any, depth: int) -> bool:
        if bucket.watch_port != ofp.OFPP_ANY:
            if self.live_ports is not None and bucket.watch_port not in self.live_ports:
                return False
        if bucket.watch_group != ofp.OFPG_ANY:
            group = self.table.groups.get(bucket.watch_group)
            if group is None or depth > MAX_GROUP_DEPTH:
                return False
            return any(self._live(b, depth + 1) for b in group.buckets)
        return True


# --- fabric -----------------------------------------------------------------

Port = tuple[int, int]  # (dpid, port)


class Outcome(str, Enum):
    EGRESS = "egress"  # left through an edge (host) port
    CONTROLLER = "controller"  # sent to OFPP_CONTROLLER
    DROP = "drop"  # the pipeline produced no output
    LOOP = "loop"  # arrived at a (dpid, in_port) already on this path
    LINK_DOWN = "link_down"  # sent into a link that is down
    UNWIRED = "unwired"  # sent to a port that is neither a link nor an edge port
    HOP_LIMIT = "hop_limit"  # max_hops reached


class Hop(NamedTuple):
    dpid: int
    in_port: int
    out_port: int


@dataclass(frozen=True)
class Path:
    """One way a packet can go through the fabric.

    `end` is (dpid, port): the egress/controller/unwired/down port for those
    outcomes, or the (dpid, in_port) where the packet was dropped, looped or
    hit the hop limit.  `choices` are the SELECT buckets taken, as
    (dpid, group_id, bucket index).  `packet` is the packet at `end`.
    """

    hops: tuple[Hop, ...]
    outcome: Outcome
    end: Port
    packet: Packet
    choices: tuple[tuple[int, int, int], ...] = ()

    @property
    def egress(self) -> Optional[Port]:
        return self.end if self.outcome is Outcome.EGRESS else None

    @property
    def dpids(self) -> list[int]:
        return [hop.dpid for hop in self.hops]


class FakeFabric:
    """Several FakeOFTables joined by links, with hosts on edge ports.

    `links` maps (dpid, port) -> (dpid, port); the reverse direction is added.
    `down_ports` are (dpid, port) whose link is down: not live for
    fast-failover, excluded from flooding, and a packet sent there is lost.
    """

    def __init__(
        self,
        tables: Mapping[int, FakeOFTable],
        links: Mapping[Port, Port],
        edge_ports: Iterable[Port] = (),
        down_ports: Iterable[Port] = (),
    ) -> None:
        self.tables = dict(tables)
        self.links: dict[Port, Port] = {}
        for a, b in links.items():
            for src, dst in ((a, b), (b, a)):
                if self.links.setdefault(src, dst) != dst:
                    raise FakeOFTableError(f"{src} is wired to both {self.links[src]} and {dst}")
        self.edge_ports = frozenset(edge_ports)
        self.down_ports = set(down_ports)
        both = self.edge_ports & set(self.links)
        if both:
            raise FakeOFTableError(f"ports both linked and edge: {sorted(both)}")

    def ports_of(self, dpid: int) -> set[int]:
        return {port for d, port in (set(self.links) | self.edge_ports) if d == dpid}

    def live_ports(self, dpid: int) -> set[int]:
        return {p for p in self.ports_of(dpid) if (dpid, p) not in self.down_ports}

    def trace(self, dpid: int, in_port: int, packet: Mapping[str, Any], max_hops: int = 32) -> list[Path]:
        """Every path `packet` (entering `dpid` on `in_port`) can take, one per alternative."""
        start = {k: v for k, v in packet.items() if k != "metadata"}
        return list(self._walk(dpid, in_port, start, (), frozenset(), (), max_hops))

    def egresses(self, dpid: int, in_port: int, packet: Mapping[str, Any]) -> set[Port]:
        """The edge ports the packet can reach."""
        return {p.end for p in self.trace(dpid, in_port, packet) if p.outcome is Outcome.EGRESS}

    def _walk(
        self,
        dpid: int,
        in_port: int,
        pkt: Packet,
        hops: tuple[Hop, ...],
        seen: frozenset[Port],
        choices: tuple[tuple[int, int, int], ...],
        max_hops: int,
    ) -> Iterator[Path]:
        here = (dpid, in_port)
        if here in seen:
            yield Path(hops, Outcome.LOOP, here, pkt, choices)
            return
        if len(hops) >= max_hops:
            yield Path(hops, Outcome.HOP_LIMIT, here, pkt, choices)
            return
        if dpid not in self.tables:
            raise FakeOFTableError(f"link leads to unknown switch {dpid}")
        pkt = {**pkt, "in_port": in_port}
        outs = self._switch_outputs(dpid, pkt)
        if not outs:
            yield Path(hops, Outcome.DROP, here, pkt, choices)
        for out in outs:
            path_hops = hops + (Hop(dpid, in_port, out.port),)
            path_choices = choices + tuple((dpid, g, b) for g, b in out.choices)
            yield from self._leave(dpid, out, path_hops, seen | {here}, path_choices, max_hops)

    def _switch_outputs(self, dpid: int, pkt: Packet) -> list[Output]:
        live = self.live_ports(dpid)
        # Flood within the fabric's view of this switch's ports, skipping dead links.
        return self.tables[dpid].outputs(pkt, live_ports=live, flood_ports=live)

    def _leave(
        self,
        dpid: int,
        out: Output,
        hops: tuple[Hop, ...],
        seen: frozenset[Port],
        choices: tuple[tuple[int, int, int], ...],
        max_hops: int,
    ) -> Iterator[Path]:
        port = (dpid, out.port)
        if out.port == ofp.OFPP_CONTROLLER:
            yield Path(hops, Outcome.CONTROLLER, port, out.packet, choices)
        elif port in self.down_ports:
            yield Path(hops, Outcome.LINK_DOWN, port, out.packet, choices)
        elif port in self.edge_ports:
            yield Path(hops, Outcome.EGRESS, port, out.packet, choices)
        elif port in self.links:
            peer_dpid, peer_port = self.links[port]
            yield from self._walk(peer_dpid, peer_port, out.packet, hops, seen, choices, max_hops)
        else:
            yield Path(hops, Outcome.UNWIRED, port, out.packet, choices)


def unbundled(msgs: Iterable[Any]) -> list[Any]:
    """`msgs` with each bundle's messages in its place and its control messages left out:
    what a switch applies, in order (for tests that look at a program's messages)."""
    out = []
    for msg in msgs:
        if isinstance(msg, parser.ONFBundleAddMsg):
            out.append(msg.message)
        elif not isinstance(msg, parser.ONFBundleCtrlMsg):
            out.append(msg)
    return out
