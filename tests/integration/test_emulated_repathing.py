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
from test_failures import PPS, ping_stream, received, wait_for

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
