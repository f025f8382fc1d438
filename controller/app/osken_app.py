"""DcilabApp: translate os-ken events into FabricController calls; send what comes back."""

from __future__ import annotations

import threading

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                       set_ev_cls)
from os_ken.ofproto import ofproto_v1_3

from ..core import FabricController, Outbox


class DcilabApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, dcilab_controller: FabricController, **kwargs):
        super().__init__(*args, **kwargs)
        self.core = dcilab_controller
        self.datapaths: dict[int, object] = {}
        # Later API and stats threads call the core too; one lock keeps its state consistent.
        self.lock = threading.Lock()

    def send(self, outbox: Outbox) -> None:
        """The one place messages meet a datapath (faucet's send_flows)."""
        for dpid, msgs in outbox.messages.items():
            datapath = self.datapaths.get(dpid)
            if datapath is None:
                continue
            for msg in msgs:
                msg.datapath = datapath
                datapath.send_msg(msg)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev):
        datapath = ev.msg.datapath
        self.datapaths[datapath.id] = datapath
        with self.lock:
            self.send(self.core.switch_connected(datapath.id))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc(self, ev):
        ports = {p.port_no: p.name.decode(errors="replace") for p in ev.msg.body}
        with self.lock:
            self.send(self.core.ports_described(ev.msg.datapath.id, ports))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier(self, ev):
        with self.lock:
            self.send(self.core.barrier_replied(ev.msg.datapath.id))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        with self.lock:
            self.send(self.core.packet_in(msg.datapath.id, msg.match["in_port"], msg.data))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        msg = ev.msg
        up = not (msg.desc.state & msg.datapath.ofproto.OFPPS_LINK_DOWN)
        with self.lock:
            self.core.port_changed(msg.datapath.id, msg.desc.port_no, up)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev):
        msg = ev.msg
        self.logger.error("switch %#x reported OpenFlow error type=%d code=%d",
                          msg.datapath.id, msg.type, msg.code)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _dead(self, ev):
        datapath = ev.datapath
        if datapath.id is None or self.datapaths.get(datapath.id) is not datapath:
            return
        del self.datapaths[datapath.id]
        with self.lock:
            self.core.switch_disconnected(datapath.id)
