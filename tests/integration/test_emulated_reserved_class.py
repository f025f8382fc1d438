"""A reservation's traffic keeps its rate beside best effort that overfills its wavelength,
on the real emulation: the ingress leaf puts it in the reserved class, which every link's
queues serve first. One wavelength, so best effort cannot be steered away;
the same run then removes the class's filters on that wavelength (one shared FIFO, as
before) and measures again."""

from __future__ import annotations

import json
import subprocess
import time

import yaml

from dcilab.api.client import Client
from dcilab.api.v1 import path_pb2 as ppb
from dcilab.emulation import port_buffers
from dcilab.emulation.shaping import BEST_EFFORT_CLASS, RESERVED_CLASS
from dcilab.fabric import load_fabric
from dcilab.fabric.model import scaled_mbps
from dcilab.lab import Lab

from test_emulated_reservations import quiet, wait_active

ONE_WAVELENGTH = {
    "name": "one-wave",
    "scale": 2.5e-5,              # the 400 Gb/s wavelength -> 10 Mb/s
    "sites": [{"name": site, "spines": 1, "leaves": 1, "hosts_per_leaf": 2, "gateways": 1,
               "fabric_gbps": 800} for site in ("dc1", "dc2")],
    "dci_links": [{"name": "dc1-dc2-a", "a": "dc1", "b": "dc2", "fiber_km": 80,
                   "module": "400ZR", "wavelengths": 1}],
}
RESERVED_GBPS = 300               # -> 7.5 Mb/s; its UDP stream sends 95 % of it
UDP_PORT, TCP_PORT = 5701, 5702
SECONDS = 8


def class_counts(dev: str) -> dict[str, tuple[int, int]]:
    """classid -> (packets sent, packets dropped) of `dev`'s htb classes."""
    out = subprocess.run(["tc", "-s", "class", "show", "dev", dev], capture_output=True,
                         text=True, timeout=10).stdout
    counts, classid = {}, None
    for line in out.splitlines():
        if line.startswith("class htb "):
            classid = line.split()[2]
        elif "Sent" in line and classid:
            words = line.replace(",", "").replace("(", "").split()
            counts[classid] = (int(words[3]), int(words[words.index("dropped") + 1]))
    return counts


def reserved_udp_beside_an_elephant(lab, fabric, rate_mbps: float) -> tuple[int, int, float]:
    """(UDP packets sent, lost) of dc1-h1 -> dc2-h1 at `rate_mbps`, while dc1-h2 -> dc2-h2
    runs two TCP streams; and the TCP goodput, Mb/s."""
    emu = lab.emulation
    servers = [emu.host("dc2-h1").popen(["iperf3", "-s", "-1", "-p", str(UDP_PORT)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
               emu.host("dc2-h2").popen(["iperf3", "-s", "-1", "-p", str(TCP_PORT)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    clients = []
    try:
        for host, port in (("dc2-h1", UDP_PORT), ("dc2-h2", TCP_PORT)):
            deadline = time.monotonic() + 10
            while f":{port} " not in emu.host(host).cmd(f"ss -ltnH 'sport = :{port}'"):
                assert time.monotonic() < deadline, f"iperf3 server on {host} did not start"
                time.sleep(0.1)
        clients = [
            emu.host("dc1-h2").popen(["iperf3", "-c", fabric.hosts["dc2-h2"].ip, "-p",
                                      str(TCP_PORT), "-P", "2", "-t", str(SECONDS + 2), "-J"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
            emu.host("dc1-h1").popen(["iperf3", "-u", "-c", fabric.hosts["dc2-h1"].ip, "-p",
                                      str(UDP_PORT), "-b", f"{rate_mbps:.3f}M", "-l", "1400",
                                      "-t", str(SECONDS), "-J"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
        tcp, udp = (json.loads(c.communicate(timeout=SECONDS + 60)[0]) for c in clients)
    finally:
        for proc in servers + clients:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    total = udp["end"]["sum"]
    return (int(total["packets"]), int(total["lost_packets"]),
            tcp["end"]["sum_received"]["bits_per_second"] / 1e6)


def test_reserved_traffic_keeps_its_rate_beside_best_effort_overfilling_its_wavelength(
        tmp_path, no_leftovers):
    topology = tmp_path / "one-wave.yaml"
    topology.write_text(yaml.safe_dump(ONE_WAVELENGTH, sort_keys=False))
    fabric = load_fabric(topology)
    [wave] = fabric.wavelengths()
    end = wave.end("dc1-gw1")
    dev = fabric.switches["dc1-gw1"].interface(end.port)
    wave_mbps = scaled_mbps(fabric, wave.rate_gbps)
    rate_mbps = 0.95 * scaled_mbps(fabric, RESERVED_GBPS)
    with Lab(fabric, topology, say=quiet) as lab, Client(lab.controller.grpc_address) as client:
        # ovs-vswitchd's send socket holds every queued frame of ours: widened for the run
        assert port_buffers.send_buffer_bytes() >= 2 * port_buffers.SEND_BUFFER_BYTES
        res = client.reserve("dc1-h1", "dc2-h1", RESERVED_GBPS,
                             selector=ppb.TrafficSelector(ip_protocol=17))
        wait_active(client, res.reservation_id)

        before = class_counts(dev)
        sent, lost, tcp_mbps = reserved_udp_beside_an_elephant(lab, fabric, rate_mbps)
        after = class_counts(dev)
        reserved_dropped = after[RESERVED_CLASS][1] - before[RESERVED_CLASS][1]
        best_effort_dropped = after[BEST_EFFORT_CLASS][1] - before[BEST_EFFORT_CLASS][1]
        reserved_out = after[RESERVED_CLASS][0] - before[RESERVED_CLASS][0]
        # The elephant did push the wavelength past its rate: its own queue dropped ...
        assert best_effort_dropped > 0, (after, before, tcp_mbps)
        assert tcp_mbps > 0.3 * (wave_mbps - rate_mbps), tcp_mbps
        # ... and the reserved stream went out in its class, none of it dropped there.
        assert reserved_out >= 0.9 * sent and reserved_dropped == 0, (after, before, sent)
        # End to end (iperf3's count): what else may lose a packet on a busy machine (a
        # datapath socket's buffer) is not the queues', so a bound, not zero.
        assert lost <= max(10, 0.01 * sent), (sent, lost, tcp_mbps)

        # The same minute, one shared FIFO (the class's filters gone): reserved packets
        # wait behind the elephant's and are dropped with them.
        for prio in ("2", "3"):
            subprocess.run(["tc", "filter", "del", "dev", dev, "parent", "5:", "prio", prio],
                           check=True, timeout=10)
        shared_sent, shared_lost, _ = reserved_udp_beside_an_elephant(lab, fabric, rate_mbps)
        print(f"reserved UDP lost {lost} of {sent} in its class ({reserved_dropped} dropped "
              f"there, best effort {best_effort_dropped}, TCP {tcp_mbps:.2f} Mb/s); "
              f"{shared_lost} of {shared_sent} in one shared FIFO")
        assert shared_lost > max(5, 5 * lost), (sent, lost, shared_sent, shared_lost)
    assert 0 < port_buffers.send_buffer_bytes() < 2 * port_buffers.SEND_BUFFER_BYTES  # given back
