"""A FabricController and the simulated switches its messages land on (unit tests).

Every Outbox is applied to one FakeOFTable per dpid, wired into a FakeFabric by
fabric_helpers, so a test can connect switches, answer barriers and trace packets.
"""

from __future__ import annotations

from fabric_helpers import fake_fabric, tcp_packet
from fakeoftable import FakeOFTable, unbundled
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from dcilab.core.controller import FabricController, Outbox


class ControllerLab:
    # Switches connect long before the tests' events, so no start-up grace is in force.
    CONNECT_TIME = -1000.0

    def __init__(self, fabric, ctl: FabricController | None = None, **options):
        self.fabric = fabric
        self.ctl = ctl or FabricController(fabric, **options)
        self.net = fake_fabric(fabric, {name: [] for name in fabric.switches})
        self.sent: dict[int, list] = {}

    def dpid(self, name: str) -> int:
        return self.fabric.switches[name].dpid

    def table(self, name: str) -> FakeOFTable:
        return self.net.tables[self.dpid(name)]

    def send(self, outbox: Outbox) -> Outbox:
        for dpid, msgs in outbox.messages.items():
            self.sent.setdefault(dpid, []).extend(msgs)
            self.net.tables[dpid].apply(msgs)
        return outbox

    def ports(self, name: str) -> dict[int, str]:
        sw = self.fabric.switches[name]
        return {p: sw.interface(p) for p in self.fabric.ports(name)} | {ofp.OFPP_LOCAL: sw.bridge}

    def connect(self, name: str) -> list:
        """Connect and describe ports; returns the program messages (already applied), out
        of their bundle."""
        dpid = self.dpid(name)
        hello = self.ctl.switch_connected(dpid)
        assert [type(m) for m in hello.messages[dpid]] == [parser.OFPPortDescStatsRequest]
        out = self.send(self.ctl.ports_described(dpid, self.ports(name), frozenset(),
                                                 self.CONNECT_TIME))
        assert self.ctl.switches[dpid].problems == []
        assert isinstance(out.messages[dpid][-1], parser.OFPBarrierRequest)
        return unbundled(out.messages[dpid])

    def barrier(self, name: str) -> Outbox:
        return self.send(self.ctl.barrier_replied(self.dpid(name)))

    def ack_all(self) -> list:
        """Every switch answers every barrier it was sent; returns what changed."""
        changed = []
        for dpid, state in self.ctl.switches.items():
            while state.connected and state.barriers_acked < state.barriers_sent:
                changed += self.send(self.ctl.barrier_replied(dpid)).changed
        return changed

    def bring_up_all(self) -> "ControllerLab":
        for name in self.fabric.switches:
            self.connect(name)
        for name in self.fabric.switches:
            self.barrier(name)
        assert self.ctl.ready
        return self

    def trace(self, src: str, dst: str, packet=None):
        s, d = self.fabric.hosts[src], self.fabric.hosts[dst]
        return self.net.trace(self.dpid(s.leaf), s.port, packet or tcp_packet(s, d))

    def states(self) -> dict[str, object]:
        return {name: self.table(name).table_state() for name in self.fabric.switches}
