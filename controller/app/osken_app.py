"""DcilabApp: translate os-ken events into core calls (through the service); send what
comes back. The stats poll and reservation expiry timers live here; what replies mean
lives in the core."""

from __future__ import annotations

import threading
import time
from queue import Full

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                       set_ev_cls)
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser as parser

from ..core import Outbox
from ..openflow import messages as of
from ..te.elephants import FlowKey
from .service import ControllerService
from .sender import Sender
from .stall import StallWatch


TICK_S = 0.1
# A second connection with a connected switch's datapath id is refused; the first is
# asked for an echo, and taken for dead (a switch that restarted without closing its old
# connection) if it does not answer within this long: the next retry is then accepted.
DUPLICATE_PROBE_S = 3.0
# A multipart reply is gathered whole for the core, but only one this app asked for (by
# xid: the newest few of each kind) and of at most this many parts (each at most 64 kB on
# the wire): a peer that answers what it was not asked, or never sends the last part,
# grew the controller's memory without bound (a security reviewer's: 60 MB/s).
MAX_REPLY_PARTS = 256
ASKED_KEPT = 4
REFUSALS_SAID_S = 60.0
ASKED = {parser.OFPPortDescStatsRequest: "ports", parser.OFPFlowStatsRequest: "flows",
         parser.OFPMeterConfigStatsRequest: "meters"}


class DcilabApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, dcilab_service: ControllerService, poll_interval_s: float = 1.0,
                 stop_event: threading.Event | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.service = dcilab_service
        self.datapaths: dict[int, object] = {}
        # dpid -> xid -> the (error type, code) that message may draw harmlessly
        self._tolerated: dict[int, dict[int, tuple[int, int]]] = {}
        # dpid -> xids of an atomic program's bundle messages, kept until a barrier behind
        # it comes back: if the switch refuses the bundle, the core programs it again.
        # These and the other per-switch books are kept under the service's lock, which
        # `send` runs under (gRPC and timer threads) and os-ken's event thread takes here.
        self._bundles: dict[int, set[int]] = {}
        # dpid -> reply kind (ASKED) -> xids of the requests sent (the newest few); and
        # (dpid, kind, xid) -> the parts of that reply so far (the event thread's alone)
        self._asked: dict[int, dict[str, list[int]]] = {}
        self._parts: dict[tuple[int, str, int], list] = {}
        # dpid -> (deadline, xid of the echo sent, the first connection) while a second
        # connection with its datapath id has been refused
        self._probes: dict[int, tuple[float, int, object]] = {}
        # dpid -> (when a refusal of a second connection was last said, refused since)
        self._refusals: dict[int, tuple[float, int]] = {}
        self._sender = Sender(self.service.observer.openflow_error)
        self.poll_interval_s = poll_interval_s
        self.stop_event = stop_event or threading.Event()
        self.service.attach(self.send)
        self.service.openflow_backlog = self.events.qsize    # os-ken's queue of this app
        # A plain daemon thread: os-ken's hub.kill cannot stop native threads.
        threading.Thread(target=self._timers, name="dcilab-timers", daemon=True).start()
        # Apart from the timers, which a hung commit can hold (a tick's change waits for it)
        threading.Thread(target=self._watch_state_file, name="dcilab-state-file-watch",
                         daemon=True).start()

    def send(self, outbox: Outbox) -> int:
        """The one place messages meet a datapath (faucet's send_flows): numbered and
        booked here, under the service's lock (a reply can come back before the message
        has left), then queued for the sender, which never holds the lock."""
        sent = 0
        for dpid, msgs in outbox.messages.items():
            datapath = self.datapaths.get(dpid)
            if datapath is None:
                continue
            bundle: set[int] = set()
            for msg in msgs:
                msg.datapath = datapath
                if isinstance(msg, parser.ONFBundleAddMsg):
                    msg.message.datapath = datapath
                if msg.xid is None:
                    datapath.set_xid(msg)
                kind = ASKED.get(type(msg))
                if kind is not None:
                    # os-ken sends a port description request of its own at the handshake:
                    # its reply, not booked, would check (and log) the ports twice.
                    asked = self._asked.setdefault(dpid, {}).setdefault(kind, [])
                    asked.append(msg.xid)
                    del asked[:-ASKED_KEPT]
                tolerates = getattr(msg, of.TOLERATES, None)
                if tolerates is not None:
                    self._tolerated.setdefault(dpid, {})[msg.xid] = tolerates
                if of.is_bundle(msg):
                    bundle.add(msg.xid)
            if bundle:
                self._bundles[dpid] = bundle
            self._sender.put(datapath, msgs)
            sent += len(msgs)
        return sent

    def idle(self, timeout_s: float = 10.0) -> bool:
        """Whether every queued message was handed to os-ken within `timeout_s` (tests)."""
        return self._sender.idle(timeout_s)

    def _timers(self) -> None:
        # Every TICK_S: hold-downs that are over, and reservations and elephants displaced
        # by failures since the last tick placed again, all together by priority. Every
        # poll interval: statistics. Every second: expiry.
        next_poll = next_expiry = 0.0
        while not self.stop_event.wait(TICK_S):
            now = time.monotonic()
            self._step("tick", lambda: self.service.apply(lambda core: core.tick(now)))
            if now >= next_poll:
                next_poll = now + self.poll_interval_s
                self._step("statistics poll",
                           lambda: self.service.apply(lambda core: core.stats_requests()))
            if now >= next_expiry:
                next_expiry = now + 1.0
                self._step("expiry", self.service.expire)
            self._step("duplicate connection probes", lambda: self._probes_over(now))

    def _watch_state_file(self) -> None:
        store = self.service.store
        if store is None:
            return
        watch = StallWatch(str(getattr(store, "path", "")))
        while not self.stop_event.wait(1.0):
            said = watch.check(self.service.state_file_wait(), time.monotonic(),
                               self.service.state_file_busy())
            if said is not None:
                getattr(self.logger, said[0])("%s", said[1])

    def _step(self, what: str, step) -> None:
        """One timer step: a bug in one (failing every time) must stop neither the others
        (expiry behind a failing tick) nor the timers."""
        try:
            step()
        except Exception:
            self.logger.exception("timer: %s failed; carrying on", what)

    def _current(self, datapath) -> bool:
        """The connection this app programs for its datapath id (not a refused second one)."""
        return self.datapaths.get(datapath.id) is datapath

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev):
        datapath = ev.msg.datapath
        # os-ken's own handler of this event sets datapath.id, in its own thread: ours may
        # run first (then id is None and the switch was taken for a stranger, left
        # unprogrammed; seen on a busy machine). The reply carries the id: set it here too.
        datapath.id = ev.msg.datapath_id
        first = self.datapaths.get(datapath.id)
        if first is not None and first is not datapath and not _gone(first):
            self._refuse_second(first, datapath)
            return
        self.datapaths[datapath.id] = datapath
        self.service.apply(lambda core: core.switch_connected(datapath.id, _peer(datapath)))

    def _refuse_second(self, first, second) -> None:
        """Two bridges with one datapath id (or a switch back before its old connection
        closed): keep the first, which carries the fabric, and close the second."""
        dpid = second.id
        switch = self.service.core.fabric.switch_by_dpid(dpid)
        # Said once a minute per datapath id, with how many more since: a burst of 300
        # refusals wrote 300 ERRORs of five lines each (a re-tester's).
        now = time.monotonic()
        said_at, unsaid = self._refusals.get(dpid, (-REFUSALS_SAID_S, 0))
        if now - said_at < REFUSALS_SAID_S:
            self._refusals[dpid] = (said_at, unsaid + 1)
        else:
            self._refusals[dpid] = (now, 0)
            self.logger.error(
                "a second switch with datapath id %#x%s connected from %s while the first is "
                "connected from %s: refused%s. Either two bridges share that datapath id "
                "(ovs-vsctl get bridge BR other-config:datapath-id), or the switch came back "
                "before its old connection closed: if the first does not answer an echo "
                "within %.0f s it is taken for dead and the next try is accepted",
                dpid, f" ({switch.name})" if switch else "", _peer(second), _peer(first),
                f" ({unsaid} more refused in the last minute)" if unsaid else "",
                DUPLICATE_PROBE_S)
        _close_apart(second)
        with self.service.lock:              # xids are numbered by whoever sends
            if dpid not in self._probes:
                echo = first.ofproto_parser.OFPEchoRequest(first)
                first.set_xid(echo)
                # Booked where os-ken's receive thread takes it off when the reply comes
                # (as for its own echoes), before it leaves: this app's handler of the reply
                # waited in its event queue, and under load a live switch "missed" the
                # deadline and was closed (a soak tester's, 1 refusal in 180).
                first.unreplied_echo_requests.append(echo.xid)
                self._probes[dpid] = (time.monotonic() + DUPLICATE_PROBE_S, echo.xid, first)
                self._sender.put(first, [echo])

    def _probes_over(self, now: float) -> None:
        for dpid, (deadline, xid, first) in list(self._probes.items()):
            answered = xid not in first.unreplied_echo_requests
            if now < deadline and not answered:
                continue
            del self._probes[dpid]
            if answered:
                continue                                    # the first is alive: it stays
            if self.datapaths.get(dpid) is first and not _gone(first):
                self.logger.warning("switch %#x at %s did not answer an echo in %.0f s: "
                                    "closing that connection as dead; the switch that "
                                    "connected again is accepted on its next try", dpid,
                                    _peer(first), DUPLICATE_PROBE_S)
                _close_apart(first)

    # CONFIG too: the request goes out from our features handler, and its reply can come
    # back before os-ken's own handler has moved the datapath to MAIN. os-ken filters events
    # by the state when they arrive, so a MAIN-only handler would lose that reply.
    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_desc(self, ev):
        # A bridge of about a thousand ports answers in several parts: one part alone would
        # make the rest look missing.
        body = self._whole(ev.msg, "ports")
        if body is None:
            return
        ofproto = ev.msg.datapath.ofproto
        ports = {p.port_no: p.name.decode(errors="replace") for p in body}
        down = frozenset(p.port_no for p in body if not _usable(p, ofproto))
        now = time.monotonic()
        self.service.apply(lambda core: core.ports_described(ev.msg.datapath.id, ports, down,
                                                             now))

    def _whole(self, msg, kind: str) -> list | None:
        """The body of a `kind` reply this app asked for, once its last part is in; None
        before, and for a reply of another connection, not asked for, or of more than
        MAX_REPLY_PARTS parts (dropped, said)."""
        if not self._current(msg.datapath):
            return None
        dpid = msg.datapath.id
        with self.service.lock:
            asked = self._asked.get(dpid, {}).get(kind, [])
            # Parts of replies whose requests were forgotten (newer ones sent since) go: a
            # peer that never ends any reply, one per poll, grew memory 57 MB/s (a
            # re-tester's: the cap bounded one reply, not the replies left open).
            for stale in [k for k in self._parts if k[:2] == (dpid, kind) and k[2] not in asked]:
                del self._parts[stale]
            if msg.xid not in asked:
                return None
            key = (dpid, kind, msg.xid)
            parts = self._parts.setdefault(key, [])
            parts.append(msg.body)
            last = not msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE
            if last or len(parts) > MAX_REPLY_PARTS:
                asked.remove(msg.xid)          # later parts of it are not asked for
                del self._parts[key]
        if not last:
            if len(parts) > MAX_REPLY_PARTS:
                self.logger.error("switch %#x at %s answered a %s request in more than %d "
                                  "parts: dropped", dpid, _peer(msg.datapath), kind,
                                  MAX_REPLY_PARTS)
            return None
        return [item for part in parts for item in part]

    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _barrier(self, ev):
        if not self._current(ev.msg.datapath):
            return
        dpid, xid = ev.msg.datapath.id, ev.msg.xid
        with self.service.lock:
            # Replies come in order: what was sent before this barrier has had its errors.
            tolerated = self._tolerated.get(dpid)
            if tolerated:
                for earlier in [x for x in tolerated if x < xid]:
                    del tolerated[earlier]
            if dpid in self._bundles and max(self._bundles[dpid]) < xid:
                del self._bundles[dpid]
        self.service.apply(lambda core: core.barrier_replied(dpid))

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev):
        if not self._current(ev.msg.datapath):
            return
        counters = {s.port_no: (s.tx_bytes, s.rx_bytes) for s in ev.msg.body}
        now = time.monotonic()    # rates and pin holds: a wall-clock step must not freeze them
        self.service.apply(lambda core: core.port_stats(ev.msg.datapath.id, counters, now))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev):
        # A large table comes in several parts: the core needs the whole of it at once.
        body = self._whole(ev.msg, "flows")
        if body is None:
            return
        counters: dict = {}
        for stat in body:
            key = _flow_key(stat.match)
            if key is not None:
                counters[key] = counters.get(key, 0) + stat.byte_count
        now = time.monotonic()
        self.service.apply(lambda core: core.flow_stats(ev.msg.datapath.id, counters, now))

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _meters(self, ev):
        msg = ev.msg
        body = self._whole(msg, "meters")
        if body is None:
            return
        ids = {stat.meter_id for stat in body}
        self.service.apply(lambda core: core.meters_listed(msg.datapath.id, ids))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        if not self._current(msg.datapath):
            return
        now = time.monotonic()
        self.service.apply(lambda core: core.packet_in(msg.datapath.id, msg.match["in_port"],
                                                       msg.data, now, msg.table_id))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        msg = ev.msg
        if not self._current(msg.datapath):
            return
        ofp = msg.datapath.ofproto
        # A port deleted from the bridge carries nothing, whatever its last state said.
        deleted = msg.reason == ofp.OFPPR_DELETE
        up = not deleted and _usable(msg.desc, ofp)
        name = msg.desc.name.decode(errors="replace")
        now = time.monotonic()
        self.service.apply(lambda core: core.port_changed(msg.datapath.id, msg.desc.port_no, up,
                                                          now, name=name, deleted=deleted))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev):
        msg = ev.msg
        if not self._current(msg.datapath):
            return
        dpid = msg.datapath.id
        with self.service.lock:
            tolerated = self._tolerated.get(dpid, {}).pop(msg.xid, None) == (msg.type, msg.code)
            refused = msg.xid in self._bundles.get(dpid, ())
            if refused:
                del self._bundles[dpid]
        if tolerated:
            self.logger.debug("switch %#x: expected error type=%d code=%d", dpid, msg.type,
                              msg.code)
            return
        self.service.observer.openflow_error()
        self.logger.error("switch %#x reported OpenFlow error type=%d code=%d",
                          dpid, msg.type, msg.code)
        if refused:
            # A switch without the bundle extension, or one that refused a message in it:
            # nothing of the bundle was applied. The core programs it again as it is now
            # (rules sent after the bundle included), unbundled, behind a barrier of its own.
            self.service.apply(lambda core: core.program_refused(dpid))

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _dead(self, ev):
        datapath = ev.datapath
        _wake_sender(datapath)
        if datapath.id is None or self.datapaths.get(datapath.id) is not datapath:
            return
        del self.datapaths[datapath.id]
        with self.service.lock:
            self._sender.forget(datapath)
            self._tolerated.pop(datapath.id, None)
            self._bundles.pop(datapath.id, None)
            self._asked.pop(datapath.id, None)
        # a reply cut off by the disconnect is not added to the next one
        for key in [k for k in self._parts if k[0] == datapath.id]:
            del self._parts[key]
        now = time.monotonic()
        self.service.apply(lambda core: core.switch_disconnected(datapath.id, now))


def _gone(datapath) -> bool:
    """Whether a connection has ended. Its receive loop closes the socket at once when
    the switch closes it; `is_active` (and the DEAD event) wait for os-ken's echo thread,
    up to an echo interval: a switch that reconnected meanwhile was refused as a second
    connection, 3-7 s each time (a soak tester's)."""
    return not datapath.is_active or datapath.socket.fileno() == -1


def _wake_sender(datapath) -> None:
    """End os-ken's send thread of a connection that is over. It waits for its next
    message, and `hub.kill` does nothing to a native thread: a connection os-ken's echo
    loop closed (a silent peer, a hung switch) has no next echo to wake it, and kept its
    two threads for good (a re-tester's: 500 such, 1 000 threads). Never blocks: if the
    queue is full the thread is not waiting, and finds the socket closed."""
    queue = datapath.send_q
    # os-ken's own bookkeeping: each message queued holds one count of this semaphore
    if queue is not None and datapath._send_q_sem.acquire(blocking=False):
        try:
            queue.put_nowait((b"", True))        # sent as nothing; then the loop ends
        except Full:
            datapath._send_q_sem.release()


def _close_apart(datapath) -> None:
    """Close a connection from a thread of its own. Closing queues its DEAD event for the
    apps, this one too, and waits while a queue is full: on this app's event thread
    (refusing a second connection) it waited for room only itself could make, and no
    switch event was handled again (a soak tester's: the fabric no longer controlled, a
    thread and a socket more at each reconnection)."""
    threading.Thread(target=datapath.close, name="dcilab-close", daemon=True).start()


def _peer(datapath) -> str:
    address = getattr(datapath, "address", None)
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


def _usable(port, ofproto) -> bool:
    """A port carries traffic: not shut, carrier present, and live. OVS clears LIVE when the
    port may not be used (no carrier, or BFD/CFM down where configured): the same rule
    its fast-failover groups follow."""
    return (not port.config & ofproto.OFPPC_PORT_DOWN
            and not port.state & ofproto.OFPPS_LINK_DOWN
            and bool(port.state & ofproto.OFPPS_LIVE))


def _flow_key(match) -> FlowKey | None:
    """The 5-tuple of a learned per-flow entry; None for the table's own learn rules."""
    fields = dict(match.items())
    proto = fields.get("ip_proto")
    l4 = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst")}.get(proto)
    if l4 is None or "ipv4_src" not in fields or l4[0] not in fields:
        return None
    return FlowKey(fields["ipv4_src"], fields["ipv4_dst"], proto, fields[l4[0]], fields[l4[1]])
