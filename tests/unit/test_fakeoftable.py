"""Tests of the OpenFlow 1.3 table simulator in tests/fakeoftable.py."""

from __future__ import annotations

import sys
from pathlib import Path as FsPath
from typing import Any

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

# tests/ is not a package; make its helper module importable from tests/unit/.
sys.path.insert(0, str(FsPath(__file__).resolve().parents[1]))
from fakeoftable import FakeFabric, FakeOFTable, FakeOFTableError, Hop, Outcome, Output  # noqa: E402

TCP = {"eth_type": 0x0800, "ip_proto": 6, "ipv4_src": "10.1.1.1", "ipv4_dst": "10.2.1.5", "tcp_dst": 5201}


# --- message builders ---------------------------------------------------------


def apply_actions(*actions: Any) -> parser.OFPInstructionActions:
    return parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, list(actions))


def out(port: int) -> parser.OFPActionOutput:
    return parser.OFPActionOutput(port)


def flow(
    priority: int = 100,
    table_id: int = 0,
    insts: list[Any] | None = None,
    cookie: int = 0,
    **match: Any,
) -> parser.OFPFlowMod:
    return parser.OFPFlowMod(
        None,
        table_id=table_id,
        priority=priority,
        cookie=cookie,
        match=parser.OFPMatch(**match),
        instructions=insts or [],
    )


def delete(
    strict: bool = False,
    table_id: int = ofp.OFPTT_ALL,
    priority: int = 0,
    cookie: int = 0,
    cookie_mask: int = 0,
    out_port: int = ofp.OFPP_ANY,
    **match: Any,
) -> parser.OFPFlowMod:
    return parser.OFPFlowMod(
        None,
        command=ofp.OFPFC_DELETE_STRICT if strict else ofp.OFPFC_DELETE,
        table_id=table_id,
        priority=priority,
        cookie=cookie,
        cookie_mask=cookie_mask,
        out_port=out_port,
        out_group=ofp.OFPG_ANY,
        match=parser.OFPMatch(**match),
    )


def group(group_id: int, gtype: int, buckets: list[parser.OFPBucket]) -> parser.OFPGroupMod:
    return parser.OFPGroupMod(None, ofp.OFPGC_ADD, gtype, group_id, buckets)


def bucket(*actions: Any, weight: int = 0, watch_port: int = ofp.OFPP_ANY) -> parser.OFPBucket:
    return parser.OFPBucket(weight=weight, watch_port=watch_port, actions=list(actions))


def to_group(group_id: int) -> list[Any]:
    return [apply_actions(parser.OFPActionGroup(group_id))]


def switch(*msgs: Any) -> FakeOFTable:
    table = FakeOFTable()
    table.apply(msgs)
    return table


# --- single table ---------------------------------------------------------------


def test_highest_priority_wins() -> None:
    table = switch(
        flow(10, insts=[apply_actions(out(2))], in_port=1),
        flow(20, insts=[apply_actions(out(3))], in_port=1, eth_type=0x0800),
    )
    assert table.possible_ports({"in_port": 1, **TCP}) == {3}
    assert table.possible_ports({"in_port": 1, "eth_type": 0x0806}) == {2}
    assert table.outputs({"in_port": 9, **TCP}) == []  # table miss drops
    assert table.lookup({"in_port": 1, **TCP}).priority == 20


def test_masked_ipv4_and_mac_match() -> None:
    table = switch(
        flow(insts=[apply_actions(out(2))], eth_type=0x0800, ipv4_dst=("10.2.0.0", "255.255.0.0")),
        flow(insts=[apply_actions(out(3))], eth_dst=("01:00:00:00:00:00", "01:00:00:00:00:00")),
    )
    assert table.is_output({"in_port": 1, **TCP}, 2)
    assert not table.is_output({"in_port": 1, **TCP, "ipv4_dst": "10.3.1.5"}, 2)
    assert table.is_output({"in_port": 1, "eth_dst": "01:00:5E:00:00:01"}, 3)  # multicast bit
    assert table.outputs({"in_port": 1, "eth_dst": "0e:00:00:00:00:01"}) == []


def test_field_missing_from_packet_does_not_match() -> None:
    table = switch(flow(insts=[apply_actions(out(2))], eth_type=0x0800, ip_proto=6, tcp_dst=5201))
    assert table.is_output({"in_port": 1, **TCP}, 2)
    assert not table.is_output({"in_port": 1, "eth_type": 0x0800, "ip_proto": 6}, 2)


def test_match_without_prerequisite_is_rejected() -> None:
    with pytest.raises(FakeOFTableError, match="eth_type"):
        switch(flow(insts=[apply_actions(out(2))], ipv4_dst="10.2.1.5"))


def test_equal_priority_overlap_is_ambiguous() -> None:
    table = switch(
        flow(insts=[apply_actions(out(2))], in_port=1),
        flow(insts=[apply_actions(out(3))], eth_type=0x0800),
    )
    assert table.possible_ports({"in_port": 1, "eth_type": 0x0806}) == {2}
    with pytest.raises(FakeOFTableError, match="ambiguous"):
        table.outputs({"in_port": 1, **TCP})


def test_in_port_and_controller_outputs() -> None:
    table = switch(
        flow(insts=[apply_actions(out(ofp.OFPP_IN_PORT), out(ofp.OFPP_CONTROLLER))], in_port=4),
        flow(insts=[apply_actions(out(5))], in_port=5),
    )
    assert table.possible_ports({"in_port": 4}) == {4, ofp.OFPP_CONTROLLER}
    # Output to the ingress port by number is dropped; only OFPP_IN_PORT hairpins.
    assert table.outputs({"in_port": 5}) == []


def test_goto_table_metadata_and_rewrite() -> None:
    table = switch(
        flow(
            table_id=0,
            in_port=1,
            insts=[
                apply_actions(parser.OFPActionSetField(eth_dst="0E:00:00:00:00:02")),
                parser.OFPInstructionWriteMetadata(7, 0xFF),
                parser.OFPInstructionGotoTable(3),
            ],
        ),
        flow(table_id=3, metadata=(7, 0xFF), insts=[apply_actions(out(2))]),
    )
    [result] = table.outputs({"in_port": 1, "eth_dst": "0e:00:00:00:00:01"})
    port, pkt = result
    assert port == 2
    assert pkt["eth_dst"] == "0e:00:00:00:00:02"
    assert "metadata" not in pkt  # metadata stays inside the switch
    assert table.outputs({"in_port": 2, "eth_dst": "0e:00:00:00:00:01"}) == []


def test_goto_backwards_is_rejected() -> None:
    with pytest.raises(FakeOFTableError, match="goto"):
        switch(flow(table_id=2, insts=[parser.OFPInstructionGotoTable(2)]))


def test_write_actions_run_at_pipeline_end_and_group_beats_output() -> None:
    write = parser.OFPInstructionActions(ofp.OFPIT_WRITE_ACTIONS, [out(2)])
    write_group = parser.OFPInstructionActions(ofp.OFPIT_WRITE_ACTIONS, [parser.OFPActionGroup(1)])
    table = switch(
        group(1, ofp.OFPGT_INDIRECT, [bucket(out(7))]),
        flow(table_id=0, insts=[write, parser.OFPInstructionGotoTable(1)]),
        flow(table_id=1, in_port=1, insts=[write_group]),
        flow(table_id=1, in_port=3, insts=[parser.OFPInstructionActions(ofp.OFPIT_CLEAR_ACTIONS, [])]),
    )
    assert table.possible_ports({"in_port": 1}) == {7}
    assert table.possible_ports({"in_port": 4}) == set()  # table 1 miss discards the action set
    assert table.possible_ports({"in_port": 3}) == set()  # cleared


def test_meter_for_and_unknown_meter() -> None:
    meter = parser.OFPMeterMod(
        None, ofp.OFPMC_ADD, ofp.OFPMF_KBPS, 5, [parser.OFPMeterBandDrop(rate=1000, burst_size=10)]
    )
    table = switch(meter, flow(in_port=1, insts=[parser.OFPInstructionMeter(5), apply_actions(out(2))]))
    assert table.meter_for({"in_port": 1}) == 5
    assert table.meter_for({"in_port": 2}) is None
    assert set(table.meters) == {5}
    with pytest.raises(FakeOFTableError, match="meter"):
        table.apply([flow(in_port=3, insts=[parser.OFPInstructionMeter(6)])])


# --- groups ---------------------------------------------------------------------


def test_select_group_gives_every_bucket_as_alternative() -> None:
    table = switch(
        group(1, ofp.OFPGT_SELECT, [bucket(out(2), weight=1), bucket(out(3), weight=1), bucket(out(4))]),
        flow(in_port=1, insts=to_group(1)),
    )
    outs = table.outputs({"in_port": 1, **TCP})
    assert {o.port for o in outs} == {2, 3}  # weight-0 bucket is never chosen
    assert all(o.alternative for o in outs)
    assert sorted(o.choices for o in outs) == [((1, 0),), ((1, 1),)]
    assert table.is_output({"in_port": 1, **TCP}, 3)


def test_all_group_clones_to_every_bucket() -> None:
    rewrite = parser.OFPActionSetField(eth_dst="0e:00:00:00:00:09")
    table = switch(
        group(2, ofp.OFPGT_ALL, [bucket(rewrite, out(3)), bucket(out(2))]),
        flow(in_port=1, insts=to_group(2)),
    )
    pkt = {"in_port": 1, "eth_dst": "0e:00:00:00:00:01"}
    by_port = {o.port: o for o in table.outputs(pkt)}
    assert set(by_port) == {2, 3}
    assert not any(o.alternative for o in by_port.values())
    assert by_port[2].packet["eth_dst"] == "0e:00:00:00:00:01"  # buckets work on clones
    assert by_port[3].packet["eth_dst"] == "0e:00:00:00:00:09"


def test_fast_failover_skips_dead_port() -> None:
    table = switch(
        group(3, ofp.OFPGT_FF, [bucket(out(2), watch_port=2), bucket(out(3), watch_port=3)]),
        flow(in_port=1, insts=to_group(3)),
    )
    assert table.possible_ports({"in_port": 1}) == {2}
    assert table.possible_ports({"in_port": 1}, live_ports={1, 3}) == {3}
    assert table.possible_ports({"in_port": 1}, live_ports={1}) == set()


@pytest.mark.parametrize(
    "msgs, error",
    [
        ([flow(insts=to_group(9))], "unknown group 9"),
        ([group(1, ofp.OFPGT_INDIRECT, [bucket(out(2))])] * 2, "already exists"),
        ([group(1, ofp.OFPGT_SELECT, [bucket(out(2)), bucket(out(3))])], "weight"),
        ([group(1, ofp.OFPGT_ALL, [bucket(out(2), weight=5)])], "weight"),
        ([group(1, ofp.OFPGT_FF, [bucket(out(2))])], "watches nothing"),
    ],
)
def test_invalid_messages_raise(msgs: list[Any], error: str) -> None:
    with pytest.raises(FakeOFTableError, match=error):
        switch(*msgs)


def test_group_delete_removes_flows_using_it() -> None:
    table = switch(
        group(1, ofp.OFPGT_INDIRECT, [bucket(out(2))]),
        flow(in_port=1, insts=to_group(1)),
        flow(in_port=2, insts=[apply_actions(out(3))]),
    )
    table.apply([parser.OFPGroupMod(None, ofp.OFPGC_DELETE, 0, ofp.OFPG_ALL)])
    assert table.groups == {}
    assert table.flow_count() == 1
    assert table.possible_ports({"in_port": 2}) == {3}


# --- delete semantics -----------------------------------------------------------


def populated() -> FakeOFTable:
    return switch(
        flow(10, table_id=0, cookie=0x1001, in_port=1, insts=[apply_actions(out(2))]),
        flow(20, table_id=0, cookie=0x1002, in_port=1, eth_type=0x0800, insts=[apply_actions(out(3))]),
        flow(10, table_id=1, cookie=0x2001, in_port=1, eth_type=0x0800, insts=[apply_actions(out(2))]),
        flow(10, table_id=1, cookie=0x2002, in_port=2, insts=[apply_actions(out(4))]),
    )


def test_delete_all_tables_empty_match() -> None:
    table = populated()
    table.apply([delete()])
    assert table.flow_count() == 0


def test_delete_non_strict_removes_more_specific_only() -> None:
    table = populated()
    table.apply([delete(table_id=0, eth_type=0x0800)])
    # Only the table-0 entry carrying eth_type is "at least as specific".
    assert table.flow_count(0) == 1 and table.flow_count(1) == 2
    assert table.possible_ports({"in_port": 1, **TCP}) == {2}


def test_delete_non_strict_with_masked_match() -> None:
    table = switch(
        flow(eth_type=0x0800, ipv4_dst="10.2.1.5", insts=[apply_actions(out(2))]),
        flow(eth_type=0x0800, ipv4_dst=("10.2.1.0", "255.255.255.0"), insts=[apply_actions(out(3))]),
        flow(eth_type=0x0800, ipv4_dst=("10.2.0.0", "255.254.0.0"), insts=[apply_actions(out(4))]),
    )
    table.apply([delete(eth_type=0x0800, ipv4_dst=("10.2.0.0", "255.255.0.0"))])
    # The /15 entry is less specific than the /16 delete (though its value agrees), so it survives.
    assert table.flow_count() == 1
    assert table.possible_ports({"in_port": 1, **TCP}) == {4}


def test_delete_honours_cookie_mask_and_out_port() -> None:
    table = populated()
    table.apply([delete(cookie=0x2000, cookie_mask=0xF000)])
    assert table.flow_count() == 2 and table.flow_count(1) == 0
    table = populated()
    table.apply([delete(out_port=2)])
    assert {e.cookie for e in table.flows()} == {0x1002, 0x2002}


def test_delete_strict_needs_exact_match_and_priority() -> None:
    table = populated()
    # Right priority, match differs:
    table.apply([delete(strict=True, table_id=0, priority=20, in_port=1)])
    # Right match, wrong priority:
    table.apply([delete(strict=True, table_id=0, priority=10, in_port=1, eth_type=0x0800)])
    assert table.flow_count() == 4
    table.apply([delete(strict=True, table_id=0, priority=10, in_port=1)])
    assert {e.cookie for e in table.flows()} == {0x1002, 0x2001, 0x2002}


def test_modify_replaces_instructions_of_selected_flows() -> None:
    table = populated()
    modify = flow(table_id=1, in_port=2, insts=[apply_actions(out(5))])
    modify.command = ofp.OFPFC_MODIFY
    table.apply([modify])
    assert table.possible_ports({"in_port": 2}, table_id=1) == {5}
    assert table.flow_count() == 4


# --- idempotence ------------------------------------------------------------------


def test_reapplying_messages_leaves_state_unchanged() -> None:
    msgs = [
        group(1, ofp.OFPGT_SELECT, [bucket(out(2), weight=1), bucket(out(3), weight=1)]),
        flow(in_port=1, insts=to_group(1)),
        flow(in_port=2, eth_src="0E:00:00:00:00:01", insts=[apply_actions(out(1))]),
    ]
    table = switch(*msgs)
    once = table.table_state()
    # Re-adding a group is an error, so a controller re-syncing sends MODIFY for it.
    resync = [parser.OFPGroupMod(None, ofp.OFPGC_MODIFY, ofp.OFPGT_SELECT, 1, msgs[0].buckets)] + msgs[1:]
    table.apply(resync)
    assert table.table_state() == once
    assert table.flow_count() == 2
    # Same match (MAC spelled differently) replaces; new actions must show up in the state.
    table.apply([flow(in_port=2, eth_src="0e:00:00:00:00:01", insts=[apply_actions(out(3))])])
    assert table.flow_count() == 2
    assert table.table_state() != once


# --- fabric -------------------------------------------------------------------------

# Three switches: leaf 1 -- spine 2 -- leaf 3, plus a direct leaf1-leaf3 link.
#   1:3 <-> 2:1, 2:2 <-> 3:3, 1:4 <-> 3:4; host A on 1:1, host B on 3:1.
LINKS = {(1, 3): (2, 1), (2, 2): (3, 3), (1, 4): (3, 4)}
HOSTS = [(1, 1), (3, 1)]
TO_B = {"eth_type": 0x0800, "ipv4_dst": "10.2.1.5"}


def leaf1(uplink_group_type: int = ofp.OFPGT_SELECT) -> FakeOFTable:
    weight = 1 if uplink_group_type == ofp.OFPGT_SELECT else 0
    return switch(
        group(
            1,
            uplink_group_type,
            [bucket(out(3), weight=weight, watch_port=3), bucket(out(4), weight=weight, watch_port=4)],
        ),
        flow(in_port=1, eth_type=0x0800, ipv4_dst="10.2.1.5", insts=to_group(1)),
    )


def test_fabric_trace_reaches_host_through_every_alternative() -> None:
    spine = switch(flow(in_port=1, insts=[apply_actions(parser.OFPActionDecNwTtl(), out(2))]))
    leaf3 = switch(flow(eth_type=0x0800, ipv4_dst="10.2.1.5", insts=[apply_actions(out(1))]))
    fabric = FakeFabric({1: leaf1(), 2: spine, 3: leaf3}, LINKS, HOSTS)
    paths = fabric.trace(1, 1, {**TO_B, "ip_ttl": 64})
    assert {p.outcome for p in paths} == {Outcome.EGRESS}
    assert {p.egress for p in paths} == {(3, 1)}
    assert sorted(p.hops for p in paths) == [
        (Hop(1, 1, 3), Hop(2, 1, 2), Hop(3, 3, 1)),
        (Hop(1, 1, 4), Hop(3, 4, 1)),
    ]
    via_spine = next(p for p in paths if p.dpids == [1, 2, 3])
    assert via_spine.choices == ((1, 1, 0),)
    assert via_spine.packet["ip_ttl"] == 63 and via_spine.packet["in_port"] == 3


def test_fabric_fast_failover_and_drop() -> None:
    leaf3 = switch(flow(in_port=4, insts=[apply_actions(out(1))]))
    fabric = FakeFabric({1: leaf1(ofp.OFPGT_FF), 2: switch(), 3: leaf3}, LINKS, HOSTS)
    [path] = fabric.trace(1, 1, TO_B)
    assert path.outcome is Outcome.DROP and path.end == (2, 1)  # spine has no flows
    fabric.down_ports.add((1, 3))
    assert fabric.egresses(1, 1, TO_B) == {(3, 1)}


def test_fabric_link_down_and_unwired_port() -> None:
    leaf1_table = switch(flow(in_port=1, insts=[apply_actions(out(3), out(9))]))
    fabric = FakeFabric({1: leaf1_table, 2: switch(), 3: switch()}, LINKS, HOSTS, down_ports=[(1, 3)])
    ends = {(p.outcome, p.end) for p in fabric.trace(1, 1, TO_B)}
    assert ends == {(Outcome.LINK_DOWN, (1, 3)), (Outcome.UNWIRED, (1, 9))}


def test_fabric_detects_loop() -> None:
    # Each leaf sends the packet back towards the spine: a forwarding loop.
    bounce = [apply_actions(out(ofp.OFPP_IN_PORT))]
    leaf1_table = switch(flow(in_port=1, insts=[apply_actions(out(3))]), flow(in_port=3, insts=bounce))
    spine = switch(
        flow(in_port=1, insts=[apply_actions(out(2))]),
        flow(in_port=2, insts=[apply_actions(out(1))]),
    )
    leaf3 = switch(flow(in_port=3, insts=bounce))
    fabric = FakeFabric({1: leaf1_table, 2: spine, 3: leaf3}, LINKS, HOSTS)
    [path] = fabric.trace(1, 1, TO_B)
    assert path.outcome is Outcome.LOOP
    assert path.end == (2, 1)
    assert [hop.dpid for hop in path.hops] == [1, 2, 3, 2, 1]


def test_output_is_a_port_packet_pair() -> None:
    result = Output(2, {"in_port": 1})
    port, pkt = result
    assert (port, pkt) == (2, {"in_port": 1}) and not result.alternative


def test_a_resubmit_follows_the_goto_of_what_it_matches_as_ovs_does():
    """A detour's end pops its tag and looks the packet up in table 0 again, where the
    default rule only goes to table 2: OVS runs that goto within the resubmit."""
    t = FakeOFTable()
    resubmit = parser.NXActionResubmitTable(in_port=0xFFF8, table_id=0)
    t.apply([flow(priority=3000, vlan_vid=ofp.OFPVID_PRESENT | 5,
                  insts=[apply_actions(parser.OFPActionPopVlan(), resubmit)]),
             flow(priority=0, insts=[parser.OFPInstructionGotoTable(2)]),
             flow(priority=100, table_id=2, eth_type=0x0800, ipv4_dst="10.0.0.2",
                  insts=[apply_actions(out(7))])])
    pkt = {"in_port": 1, "eth_type": 0x0800, "ipv4_dst": "10.0.0.2",
           "vlan_vid": ofp.OFPVID_PRESENT | 5}
    [sent] = t.outputs(pkt)
    assert sent.port == 7 and "vlan_vid" not in sent.packet


def test_what_a_resubmit_changes_stays_changed_after_it_as_in_ovs():
    """OVS runs a resubmit on the packet itself: a field set inside it is what the
    actions after the resubmit see (the fake ran it on a copy)."""
    t = FakeOFTable()
    resubmit = parser.NXActionResubmitTable(in_port=0xFFF8, table_id=1)
    t.apply([flow(priority=10, insts=[apply_actions(resubmit, out(3))]),
             flow(priority=10, table_id=1,
                  insts=[apply_actions(parser.OFPActionSetField(eth_src="02:00:00:00:00:09"))])])
    [sent] = t.outputs({"in_port": 1, "eth_src": "02:00:00:00:00:01"})
    assert sent.port == 3 and sent.packet["eth_src"] == "02:00:00:00:00:09"
