"""The os-ken adapter's handling of switch replies (fake datapaths, no sockets): errors a
message tolerates are not counted, and a bundle a switch refuses goes again unbundled."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from dcilab.app.osken_app import DcilabApp
from dcilab.core import Outbox
from dcilab.openflow import messages as of

DPID = 0x10201


class FakeDatapath:
    """Numbers and serializes what is sent, as os-ken's Datapath does, and keeps it."""

    ofproto, ofproto_parser = ofp, parser
    send_q = None                         # os-ken's; gone, as once its send thread ended

    def __init__(self):
        self.id, self.xid, self.sent = DPID, 0, []

    def set_xid(self, msg) -> int:
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg) -> None:
        if msg.xid is None:
            self.set_xid(msg)
        msg.serialize()
        self.sent.append(msg)


class FakeService:
    def __init__(self):
        self.errors, self.applied = 0, []
        self.observer = SimpleNamespace(openflow_error=self._error)
        self.lock = threading.RLock()
        self.store = None                 # no state file: nothing for a commit to hold up

    def _error(self) -> None:
        self.errors += 1

    def attach(self, send) -> None:
        pass

    def apply(self, fn) -> None:
        self.applied.append(fn)


def app_and_switch():
    stop = threading.Event()
    stop.set()                                   # no timer ticks
    service = FakeService()
    app = DcilabApp(dcilab_service=service, stop_event=stop)
    switch = FakeDatapath()
    app.datapaths[DPID] = switch
    return app, service, switch


def send(app, outbox) -> None:
    """As the service sends: then wait for the switches' writers to hand it over."""
    app.send(outbox)
    assert app.idle(10)


def reply(switch, xid: int, type_: int = 0, code: int = 0):
    return SimpleNamespace(msg=SimpleNamespace(datapath=switch, xid=xid, type=type_,
                                               code=code))


METER_EXISTS = (ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_METER_EXISTS)


def test_a_meter_found_in_place_is_no_error_but_any_other_reply_is():
    app, service, switch = app_and_switch()
    send(app, Outbox().add(DPID, of.meter_set(1, 2500, 250)))
    add, modify = switch.sent
    app._error(reply(switch, modify.xid, *METER_EXISTS))    # not the message that tolerates it
    assert service.errors == 1
    app._error(reply(switch, add.xid, ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_OUT_OF_METERS))
    assert service.errors == 2                               # not the error it tolerates
    send(app, Outbox().add(DPID, of.meter_set(2, 2500, 250)))
    app._error(reply(switch, switch.sent[-2].xid, *METER_EXISTS))
    assert service.errors == 2


def test_what_a_barrier_reply_follows_tolerates_nothing_more():
    app, service, switch = app_and_switch()
    send(app, Outbox().add(DPID, of.meter_set(1, 2500, 250) + [of.barrier()]))
    add, _, barrier = switch.sent
    app._barrier(reply(switch, barrier.xid))
    app._error(reply(switch, add.xid, *METER_EXISTS))
    assert service.errors == 1


def program():
    return [of.flow_delete_all(), of.group_delete_all(),
            of.flow_add(10, of.match(in_port=1), [of.output(2)])]


def test_a_refused_bundle_has_the_core_program_the_switch_again():
    """Not its old messages again: they would follow the barrier already sent, and wipe
    what was sent after the bundle (an outside reviewer)."""
    app, service, switch = app_and_switch()
    send(app, Outbox().add(DPID, of.atomically(program(), 7) + [of.barrier()]))
    assert [type(m).__name__ for m in switch.sent] == (
        ["ONFBundleCtrlMsg"] + ["ONFBundleAddMsg"] * 3 + ["ONFBundleCtrlMsg", "OFPBarrierRequest"])
    commit = switch.sent[4]
    del switch.sent[:]
    app._error(reply(switch, commit.xid, ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_EXPERIMENTER))
    assert service.errors == 1 and switch.sent == []
    refused = []
    [event] = service.applied
    event(SimpleNamespace(program_refused=refused.append))
    assert refused == [DPID]
    app._error(reply(switch, commit.xid, ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_EXPERIMENTER))
    assert len(service.applied) == 1                         # once only


def test_a_bundle_a_barrier_reply_follows_was_applied():
    app, service, switch = app_and_switch()
    send(app, Outbox().add(DPID, of.atomically(program(), 7) + [of.barrier()]))
    opened, barrier = switch.sent[0], switch.sent[-1]
    app._barrier(reply(switch, barrier.xid))
    sent = len(switch.sent)
    app._error(reply(switch, opened.xid, ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_EXPERIMENTER))
    assert len(switch.sent) == sent


def test_meter_mods_go_before_the_bundle_that_uses_them():
    msgs = of.atomically([of.flow_delete_all()] + of.meter_set(3, 100, 10)
                         + [of.flow_add_metered(2000, of.match(in_port=1), 3, [of.output(2)])],
                         9)
    assert [type(m).__name__ for m in msgs[:2]] == ["OFPMeterMod", "OFPMeterMod"]
    assert [m.message.command for m in msgs[3:5]] == [ofp.OFPFC_DELETE, ofp.OFPFC_ADD]
    assert (msgs[2].type, msgs[-1].type) == (ofp.ONF_BCT_OPEN_REQUEST, ofp.ONF_BCT_COMMIT_REQUEST)
    assert all(m.flags == ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED for m in msgs[2:])


class FakeConnection(FakeDatapath):
    """A datapath with a peer address that can be closed."""

    def __init__(self, port: int):
        super().__init__()
        self.address, self.is_active, self.closed = ("127.0.0.1", port), True, False
        self.unreplied_echo_requests: list[int] = []        # os-ken's, by the same name
        self.socket = SimpleNamespace(fileno=lambda: -1 if self.closed else 7)

    def close(self) -> None:
        self.closed, self.is_active = True, False

    def closed_soon(self, timeout_s: float = 10.0) -> bool:
        """Closed from a thread of its own (see `_close_apart`): once it has run."""
        deadline = time.monotonic() + timeout_s
        while not self.closed and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.closed


def features(datapath):
    return SimpleNamespace(msg=SimpleNamespace(datapath=datapath, datapath_id=DPID))


def test_a_second_connection_with_a_connected_datapath_id_is_refused(caplog):
    """An outside tester connected an empty bridge with a live leaf's datapath id: it took
    over the leaf, cut its hosts off, and nothing said "duplicate"."""
    app, service, _ = app_and_switch()
    service.core = SimpleNamespace(fabric=SimpleNamespace(
        switch_by_dpid=lambda dpid: SimpleNamespace(name="dc1-leaf1")))
    first, second = FakeConnection(40001), FakeConnection(40002)
    app.datapaths[DPID] = first
    app._features(features(second))
    assert app.datapaths[DPID] is first and second.closed_soon() and not first.closed
    assert service.applied == []                        # the core never heard of it
    [error] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert ("a second switch with datapath id 0x10201 (dc1-leaf1) connected from "
            "127.0.0.1:40002 while the first is connected from 127.0.0.1:40001: refused") \
        in error
    # what the refused one says is not taken for the first's
    app._port_status(SimpleNamespace(msg=SimpleNamespace(datapath=second, reason=0,
                                                         desc=None)))
    assert service.applied == []
    # the first answers the echo sent to it: it stays
    assert app.idle(10)
    [echo] = [m for m in first.sent if isinstance(m, parser.OFPEchoRequest)]
    assert first.unreplied_echo_requests == [echo.xid]
    first.unreplied_echo_requests.remove(echo.xid)        # os-ken's receive thread, at the reply
    app._probes_over(1e12)
    assert not first.closed and app.datapaths[DPID] is first


def test_a_first_connection_that_does_not_answer_is_closed_for_the_next_try():
    """A switch that restarted without closing its old connection must get back in."""
    app, service, _ = app_and_switch()
    service.core = SimpleNamespace(fabric=SimpleNamespace(switch_by_dpid=lambda dpid: None))
    first, second = FakeConnection(40001), FakeConnection(40002)
    app.datapaths[DPID] = first
    app._features(features(second))
    app._probes_over(0.0)                               # before the deadline: nothing
    assert not first.closed
    app._probes_over(1e12)
    assert first.closed_soon()
    first.is_active = False                             # its DEAD event follows; then
    again = FakeConnection(40003)                       # the switch's next try is taken
    app._features(features(again))
    assert app.datapaths[DPID] is again and not again.closed


def test_a_deleted_port_is_down_and_os_kens_own_port_list_is_not_checked_twice():
    app, service, switch = app_and_switch()
    desc = parser.OFPPort(port_no=3, hw_addr="00:00:00:00:00:03", name=b"p3", config=0,
                          state=ofp.OFPPS_LIVE, curr=0, advertised=0, supported=0, peer=0,
                          curr_speed=0, max_speed=0)
    seen = []
    service.apply = lambda fn: fn(SimpleNamespace(
        port_changed=lambda dpid, port, up, now, name, deleted: seen.append(
            (port, up, name, deleted)),
        ports_described=lambda dpid, ports, down, now: seen.append(("described", ports))))
    for reason in (ofp.OFPPR_MODIFY, ofp.OFPPR_DELETE):
        app._port_status(SimpleNamespace(msg=SimpleNamespace(datapath=switch, reason=reason,
                                                             desc=desc)))
    assert seen == [(3, True, "p3", False), (3, False, "p3", True)]   # deleted while live: down
    send(app, Outbox().add(DPID, [of.port_desc_request()]))
    ours = switch.sent[-1].xid
    for xid in (ours + 100, ours):                      # os-ken's request's reply, then ours
        app._port_desc(SimpleNamespace(msg=SimpleNamespace(datapath=switch, xid=xid,
                                                           body=[desc], flags=0)))
    assert seen[2:] == [("described", {3: "p3"})]


def test_a_port_list_in_several_parts_is_described_once_whole():
    """A code reviewer: each part of a multipart port list went to the core alone, so the
    ports of the other parts looked missing (a bridge of about a thousand ports)."""
    app, service, switch = app_and_switch()
    seen = []
    service.apply = lambda fn: fn(SimpleNamespace(
        ports_described=lambda dpid, ports, down, now: seen.append((ports, down))))

    def port(no, state):
        return parser.OFPPort(port_no=no, hw_addr=f"00:00:00:00:00:{no:02x}",
                              name=f"p{no}".encode(), config=0, state=state, curr=0,
                              advertised=0, supported=0, peer=0, curr_speed=0, max_speed=0)

    send(app, Outbox().add(DPID, [of.port_desc_request()]))
    xid = switch.sent[-1].xid
    parts = [([port(1, ofp.OFPPS_LIVE)], ofp.OFPMPF_REPLY_MORE),
             ([port(2, ofp.OFPPS_LINK_DOWN)], 0)]
    for body, flags in parts:
        app._port_desc(SimpleNamespace(msg=SimpleNamespace(datapath=switch, xid=xid,
                                                           body=body, flags=flags)))
    assert seen == [({1: "p1", 2: "p2"}, frozenset({2}))]


def test_a_switch_of_another_openflow_version_is_said_as_what_to_do():
    """os-ken says "unsupported version 0x1 ... versions [4] on datapath (addr, port)"; a
    hand-builder's bridge left at OpenFlow 1.0 read that, repeated, and nothing else."""
    import logging

    from dcilab.app.runner import VersionHint
    record = logging.LogRecord(
        "OFPHandler", logging.ERROR, __file__, 1, "%s on datapath %s",
        ("unsupported version 0x1. If possible, set the switch to use one of the versions "
         "[4]", ("127.0.0.1", 40724)), None)
    assert VersionHint().filter(record)
    assert record.getMessage() == (
        "a switch at 127.0.0.1:40724 speaks OpenFlow 1.0; dcilab needs 1.3: on Open vSwitch, "
        "`ovs-vsctl set bridge BRIDGE protocols=OpenFlow13` (refused: it retries)")
    other = logging.LogRecord("OFPHandler", logging.ERROR, __file__, 1, "hello ev %s", ("x",),
                              None)
    assert VersionHint().filter(other) and other.getMessage() == "hello ev x"



def test_a_switch_that_does_not_read_holds_up_the_lock_no_longer_and_order_is_kept():
    """os-ken's send blocks while a switch does not read (up to its socket timeout, 5 s):
    sent under the service's lock, it stalled every call and event (a reviewer's). The
    messages still go out in the core's order across switches: make before break relies
    on it (per-switch threads sent an old path's removals a second before the new path's
    turn, a re-reviewer's)."""
    app, service, slow = app_and_switch()
    fast = FakeDatapath()
    fast.id = DPID + 1
    app.datapaths[fast.id] = fast
    reading, stuck, order = threading.Event(), slow.send_msg, []

    def blocked(msg):
        reading.wait(10)
        stuck(msg)
        order.append("turn")
    slow.send_msg = blocked
    quick = fast.send_msg
    fast.send_msg = lambda msg: (quick(msg), order.append("removal"))[0]
    turn = [of.flow_add(10, of.match(in_port=p), [of.output(2)]) for p in range(1, 40)]
    with service.lock:
        app.send(Outbox().add(DPID, turn).add(fast.id, [of.barrier()]))
    taken = threading.Event()

    def take_the_lock():
        with service.lock:
            taken.set()
    threading.Thread(target=take_the_lock, daemon=True).start()
    assert taken.wait(2)                        # free while the slow switch stalls
    assert fast.sent == []                      # what follows it waits its turn
    reading.set()
    assert app.idle(10)
    assert order == ["turn"] * 39 + ["removal"]
    assert [m.xid for m in slow.sent] == sorted(m.xid for m in slow.sent)


def test_what_a_closed_connection_had_queued_goes_nowhere():
    app, service, switch = app_and_switch()
    reading = threading.Event()
    other = FakeDatapath()
    stuck = other.send_msg
    other.send_msg = lambda msg: (reading.wait(10), stuck(msg))[1]
    app.datapaths[DPID + 1] = other
    with service.lock:
        app.send(Outbox().add(DPID + 1, [of.barrier()]).add(DPID, [of.barrier()] * 3))
    app._sender.forget(switch)                 # its connection closed meanwhile
    reading.set()
    assert app.idle(10)
    assert switch.sent == [] and len(other.sent) == 1


def test_a_timer_step_failing_every_time_stops_no_other_step(caplog):
    """One try around the whole tick: a tick that raised every time skipped expiry for
    good (a reviewer's)."""
    service, expired = FakeService(), threading.Event()

    def broken(fn):
        raise RuntimeError("a bug in the tick")
    service.apply, service.expire = broken, expired.set
    stop = threading.Event()
    DcilabApp(dcilab_service=service, stop_event=stop)
    try:
        assert expired.wait(5)
    finally:
        stop.set()
    assert any("timer: tick failed" in r.getMessage() for r in caplog.records)


def test_a_second_connection_is_closed_without_the_event_thread_waiting_on_it():
    """Closing queues the connection's DEAD event for every app, this one too: refused on
    the event thread while its own queue was full, the close waited for room only that
    thread could make (a soak tester's deadlock: no switch event handled again)."""
    app, service, _ = app_and_switch()
    service.core = SimpleNamespace(fabric=SimpleNamespace(switch_by_dpid=lambda dpid: None))
    first, second, release = FakeConnection(40001), FakeConnection(40002), threading.Event()
    close = second.close
    second.close = lambda: release.wait(10) and close()     # a full event queue
    app.datapaths[DPID] = first
    handled = threading.Thread(target=app._features, args=(features(second),), daemon=True)
    handled.start()
    handled.join(2.0)
    assert not handled.is_alive(), "the event thread waited for the close"
    release.set()
    assert second.closed_soon() and app.datapaths[DPID] is first


def port_desc(switch, xid, ports, more=False):
    body = [parser.OFPPort(port_no=no, hw_addr=f"00:00:00:00:00:{no % 256:02x}",
                           name=f"p{no}".encode(), config=0, state=ofp.OFPPS_LIVE, curr=0,
                           advertised=0, supported=0, peer=0, curr_speed=0, max_speed=0)
            for no in ports]
    return SimpleNamespace(msg=SimpleNamespace(datapath=switch, xid=xid, body=body,
                                               flags=ofp.OFPMPF_REPLY_MORE if more else 0))


def test_replies_not_asked_for_are_not_gathered(caplog):
    """A security reviewer's peer streamed port lists in parts, the last never sent, on
    an xid never asked for: the controller's memory grew 60 MB/s. Now only a reply to a
    request sent is gathered, and one of more than MAX_REPLY_PARTS parts is dropped."""
    from dcilab.app.osken_app import MAX_REPLY_PARTS
    app, service, switch = app_and_switch()
    seen = []
    service.apply = lambda fn: fn(SimpleNamespace(
        ports_described=lambda dpid, ports, down, now: seen.append(sorted(ports)),
        flow_stats=lambda dpid, counters, now: seen.append(("flows", counters))))
    for n in range(50):                                  # nothing asked: nothing kept
        app._port_desc(port_desc(switch, 12345, [n], more=True))
    assert app._parts == {} and seen == []
    send(app, Outbox().add(DPID, [of.port_desc_request()]))
    xid = switch.sent[-1].xid
    for n in range(MAX_REPLY_PARTS + 5):                 # asked, but endless
        app._port_desc(port_desc(switch, xid, [n], more=True))
    assert app._parts == {} and seen == []
    assert any("more than" in r.getMessage() and "dropped" in r.getMessage()
               for r in caplog.records)
    app._port_desc(port_desc(switch, xid, [1]))          # its end, after the drop: ignored
    assert seen == []
    send(app, Outbox().add(DPID, [of.port_desc_request()]))   # asked again: answered
    xid = switch.sent[-1].xid
    app._port_desc(port_desc(switch, xid, [1, 2], more=True))
    app._port_desc(port_desc(switch, xid, [3]))
    assert seen == [[1, 2, 3]] and app._parts == {}
    flows = SimpleNamespace(msg=SimpleNamespace(datapath=switch, xid=999, body=[], flags=0))
    app._flow_stats(flows)                               # a flow table not asked for
    assert seen == [[1, 2, 3]]


def test_a_switch_that_closed_its_connection_is_taken_back_at_once():
    """os-ken says a connection is over (is_active, the DEAD event) only once its echo
    thread wakes, up to 5 s later; the receive loop closes the socket at once. A switch
    reconnecting meanwhile was refused as a second connection (a soak tester's)."""
    app, service, _ = app_and_switch()
    service.core = SimpleNamespace(fabric=SimpleNamespace(switch_by_dpid=lambda dpid: None))
    first = FakeConnection(40001)
    app.datapaths[DPID] = first
    first.closed = True                      # the switch closed it; os-ken has not said so
    again = FakeConnection(40002)
    app._features(features(again))
    assert app.datapaths[DPID] is again and not again.closed
    assert len(service.applied) == 1         # the core hears of the switch connecting


def test_a_connection_over_has_its_send_thread_woken_without_waiting():
    """os-ken's send thread of a connection its echo loop closed waited for a message that
    never came, two threads kept per connection (a re-tester's: 500 silent peers)."""
    import queue as queues

    from dcilab.app.osken_app import _wake_sender
    conn = FakeConnection(40001)
    conn.send_q, conn._send_q_sem = queues.Queue(16), threading.BoundedSemaphore(16)
    _wake_sender(conn)
    assert conn.send_q.get_nowait() == (b"", True)
    conn._send_q_sem.release()                # as os-ken's send loop does for each
    for _ in range(16):                      # a full queue: its thread is not waiting
        conn._send_q_sem.acquire()
        conn.send_q.put_nowait((b"x", False))
    _wake_sender(conn)                        # returns at once, queues nothing
    assert conn.send_q.qsize() == 16


def test_a_burst_of_refused_second_connections_is_said_once(caplog):
    """300 refusals wrote 300 ERRORs of five lines each (a re-tester's)."""
    app, service, _ = app_and_switch()
    service.core = SimpleNamespace(fabric=SimpleNamespace(switch_by_dpid=lambda dpid: None))
    first = FakeConnection(40001)
    app.datapaths[DPID] = first
    seconds = [FakeConnection(40100 + n) for n in range(20)]
    for second in seconds:
        app._features(features(second))
    assert all(s.closed_soon() for s in seconds) and app.datapaths[DPID] is first
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "refused" in errors[0].getMessage()
