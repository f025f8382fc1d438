"""A reservation's aggregate moves to another wavelength to make room, on the real
emulation, and loses no packet doing so (a ping stream counts every packet; the gateways'
receive counters show the traffic really changed wavelength)."""

from __future__ import annotations

import subprocess
import time

from dcilab.api.client import Client, state_name
from dcilab.emulation.traffic import delivered_bytes, interface_rx_bytes
from dcilab.fabric import load_fabric
from dcilab.lab import Lab, rescaled

from conftest import TOPOLOGIES
from test_failures import PPS, flowing, ping_stream, received, wait_for

SCALE = 2.5e-5          # 400 Gb/s -> 10 Mb/s


def quiet(_msg: str) -> None:
    pass


def wavelength(res) -> str:
    return next(h.wavelength for h in res.hops if h.wavelength)


def test_a_full_wavelength_moves_the_aggregate_without_losing_a_packet(tmp_path,
                                                                       no_leftovers):
    topology = rescaled(TOPOLOGIES / "two-dc.yaml", SCALE, tmp_path)
    fabric = load_fabric(topology)
    with Lab(fabric, topology, say=quiet) as lab, Client(lab.controller.grpc_address) as client:
        first = client.reserve("dc1-h1", "dc2-h1", 200)
        # Best fit puts the second pair on the same wavelength: 360 of 360 Gb/s reserved.
        other = client.reserve("dc1-h2", "dc2-h2", 160)
        for r in (first, other):
            wait_for(lambda: state_name(client.get(r.reservation_id)) == "ACTIVE", 15, "ACTIVE")
        assert wavelength(first) == wavelength(other)
        stream = ping_stream(lab, "dc1-h1", "dc2-h1", seconds=5)
        time.sleep(1.5)
        before = interface_rx_bytes(fabric)
        more = client.reserve("dc1-h1", "dc2-h1", 100)      # does not fit: the pair moves
        moved = client.get(first.reservation_id)
        assert wavelength(more) == wavelength(moved) != wavelength(first)
        assert moved.meter_id == first.meter_id == more.meter_id
        wait_for(lambda: state_name(client.get(more.reservation_id)) == "ACTIVE", 15, "ACTIVE")
        sent, got = received(stream)
        assert sent == 5 * PPS and got == sent, (sent, got)
        after = interface_rx_bytes(fabric)
        # The pair's packets now cross the new wavelength (dc1 -> dc2 direction).
        new = fabric.link(wavelength(moved))
        delivered = delivered_bytes(fabric, before, after)
        gw_end = new.a if new.a.node.startswith("dc1") else new.b
        assert delivered[(gw_end.node, gw_end.port)] > 0
        # The meter polices the new sum: 300 Gb/s x 2.5e-5 = 7500 kb/s.
        ingress = fabric.switches[fabric.hosts["dc1-h1"].leaf].bridge
        meters = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", ingress],
                                capture_output=True, text=True, timeout=10).stdout
        assert f"meter={first.meter_id} kbps" in meters and "rate=7500" in meters, meters


# Three wavelengths; links inside the sites twice as fast, so that only the wavelengths
# are ever full.
THREE_WAVELENGTHS = """
name: rp3
scale: 2.5e-5
sites:
  - {name: a, spines: 2, leaves: 1, hosts_per_leaf: 7, gateways: 1, fabric_gbps: 800}
  - {name: b, spines: 2, leaves: 1, hosts_per_leaf: 7, gateways: 1, fabric_gbps: 800}
dci_links:
  - {name: a-b, a: a, b: b, fiber_km: 40, module: 400ZR, wavelengths: 3}
"""


def set_wavelength(fabric, name: str, up: bool) -> None:
    """Both gateway ends of one wavelength up or down (its transceivers dark)."""
    link = fabric.link(name)
    for end in (link.a, link.b):
        subprocess.run(["ip", "link", "set", "dev", fabric.switches[end.node].interface(end.port),
                        "up" if up else "down"], check=True, timeout=10)


def test_a_cut_pair_takes_room_another_aggregate_makes_without_it_losing_a_packet(
        tmp_path, no_leftovers):
    """C (250 Gb/s) alone on a wavelength; A (100) and E (150) on another, D (150) on the
    third: C's wavelength is cut and neither survivor has room for it (210 and 110 Gb/s
    free). E moves beside D, make before break, and C takes A's wavelength: C is not
    DEGRADED, and E's packets all arrive."""
    path = tmp_path / "rp3.yaml"
    path.write_text(THREE_WAVELENGTHS)
    fabric = load_fabric(path)
    with Lab(fabric, path, say=quiet) as lab, Client(lab.controller.grpc_address) as client:
        ids = {}
        # Best fit packs: fillers (G, H, B) steer the layout, then leave.
        for n, (name, gbps) in enumerate([("C", 250), ("G", 110), ("A", 100), ("E", 150),
                                          ("H", 110), ("B", 100), ("D", 150)], start=1):
            ids[name] = client.reserve(f"a-h{n}", f"b-h{n}", gbps).reservation_id
        for name in "GHB":
            client.release(ids[name])
        for name in "CAED":
            wait_for(lambda n=name: state_name(client.get(ids[n])) == "ACTIVE", 15, "ACTIVE")
        on = {name: wavelength(client.get(ids[name])) for name in "CAED"}
        assert on["A"] == on["E"] and len({on["C"], on["A"], on["D"]}) == 3, on
        stream = ping_stream(lab, "a-h4", "b-h4", seconds=5)       # E's traffic
        flowing(lab, "b-h4")
        set_wavelength(fabric, on["C"], up=False)
        c = wait_for(lambda: (lambda r: r if wavelength(r) == on["A"] else None)(
            client.get(ids["C"])), 10, "C restored onto A's wavelength")
        assert state_name(c) in ("PENDING", "ACTIVE"), state_name(c)
        e = client.get(ids["E"])
        assert wavelength(e) == on["D"] and state_name(e) == "ACTIVE"
        sent, got = received(stream)
        assert sent == 5 * PPS and got == sent, (sent, got)
        wait_for(lambda: state_name(client.get(ids["C"])) == "ACTIVE", 15, "C ACTIVE")
        after = ping_stream(lab, "a-h1", "b-h1", seconds=1)         # C's traffic flows
        sent, got = received(after)
        assert got == sent, (sent, got)
