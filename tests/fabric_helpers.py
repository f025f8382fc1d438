"""Shared helpers for unit tests that load fabric files and simulate their flow tables.

Only glue lives here (loading a topology, wiring a FakeFabric from a Fabric's links,
naming the packets tests send). Expectations are built by hand in the tests themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from fakeoftable import FakeFabric, FakeOFTable

from dcilab.fabric import Fabric, load_fabric
from dcilab.fabric.model import HOST, Host, Link

TOPOLOGIES = Path(__file__).resolve().parents[1] / "topologies"

ETH_IP = 0x0800
ETH_ARP = 0x0806


def topology(name: str) -> Fabric:
    """Load `topologies/<name>.yaml`."""
    return load_fabric(TOPOLOGIES / f"{name}.yaml")


def fake_fabric(fabric: Fabric, programs: dict[str, list]) -> FakeFabric:
    """A FakeFabric with each switch's messages applied once.

    Every non-host link is wired (dpid_a, port_a) <-> (dpid_b, port_b); every host's
    leaf port is an edge port.
    """
    tables = {}
    for name, sw in fabric.switches.items():
        table = FakeOFTable()
        table.apply(programs[name])
        tables[sw.dpid] = table
    links = {}
    edges = set()
    for link in fabric.links:
        if link.kind == HOST:
            leaf = fabric.switches[link.b.node]
            edges.add((leaf.dpid, link.b.port))
            continue
        a, b = fabric.switches[link.a.node], fabric.switches[link.b.node]
        links[(a.dpid, link.a.port)] = (b.dpid, link.b.port)
    return FakeFabric(tables, links, edges)


def tcp_packet(src: Host, dst: Host) -> dict[str, Any]:
    return {"in_port": src.port, "eth_type": ETH_IP, "ipv4_src": src.ip, "ipv4_dst": dst.ip,
            "ip_proto": 6, "tcp_src": 40000, "tcp_dst": 5201}


def arp_packet(in_port: int, spa: str, tpa: str) -> dict[str, Any]:
    return {"in_port": in_port, "eth_type": ETH_ARP, "arp_op": 1, "arp_spa": spa, "arp_tpa": tpa}


def link_out_of(fabric: Fabric, dpid: int, port: int) -> Link:
    """The fabric link leaving switch `dpid` by `port`."""
    return fabric.ports(fabric.switch_by_dpid(dpid).name)[port]


def dci_links_of_path(fabric: Fabric, hops: Iterable[Any]) -> list[Link]:
    """The DCI wavelengths a traced path crossed, in order."""
    out = []
    for hop in hops:
        link = fabric.ports(fabric.switch_by_dpid(hop.dpid).name).get(hop.out_port)
        if link is not None and link.kind == "dci":
            out.append(link)
    return out
