"""Switches the controller did not make: a second bridge with a connected switch's
datapath id is refused, on real Open vSwitch, and the switch it copies keeps carrying
traffic (an outside tester's empty bridge took over a live leaf and cut its hosts off)."""

from __future__ import annotations

import re
import subprocess
import time

from dcilab.api.client import Client
from dcilab.fabric import load_fabric
from dcilab.lab import Lab

from conftest import TOPOLOGIES

IMPOSTOR = "dlqdup"      # not an emulation name: this test removes it itself


def quiet(*_):
    pass


def delivered(lab, src: str, dst_ip: str, count: int = 5) -> int:
    out = lab.emulation.host(src).cmd(f"ping -n -c {count} -i 0.2 -w 10 {dst_ip}")
    found = re.search(r"(\d+) received", out)
    return int(found.group(1)) if found else 0


def wait_for_line(lab, text: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(text in line for line in list(lab.controller.lines)):
            return True
        time.sleep(0.1)
    return False


def test_a_second_bridge_with_a_connected_datapath_id_is_refused(no_leftovers):
    path = TOPOLOGIES / "two-dc.yaml"
    fabric = load_fabric(path)
    leaf = fabric.switches["dc1-leaf1"]
    far = fabric.hosts["dc1-h1"].ip
    with Lab(fabric, path, say=quiet) as lab:
        assert delivered(lab, "dc2-h1", far) == 5
        datapath_type = subprocess.run(
            ["ovs-vsctl", "get", "bridge", leaf.bridge, "datapath_type"], check=True,
            capture_output=True, text=True, timeout=10).stdout.strip()
        try:
            subprocess.run(
                ["ovs-vsctl", "--timeout=10", "add-br", IMPOSTOR, "--", "set", "bridge",
                 IMPOSTOR, f"datapath_type={datapath_type}", "protocols=OpenFlow13",
                 "fail-mode=secure", f"other-config:datapath-id={leaf.dpid:016x}", "--",
                 "set-controller", IMPOSTOR, f"tcp:127.0.0.1:{lab.controller.port}"],
                check=True, capture_output=True, text=True, timeout=15)
            assert wait_for_line(lab, f"a second switch with datapath id {leaf.dpid:#x} "
                                      f"(dc1-leaf1) connected from", 20), \
                "\n".join(lab.controller.lines[-20:])
            assert delivered(lab, "dc2-h1", far) == 5       # the leaf still carries it
        finally:
            subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", IMPOSTOR],
                           capture_output=True, timeout=15)
        assert delivered(lab, "dc2-h1", far) == 5
        lines = list(lab.controller.lines)
        assert not [line for line in lines if "dc1-leaf1" in line and
                    ("disconnected" in line or "missing port" in line)], lines[-20:]
        # The leaf's controller pointed away and straight back (an outside tester's flip
        # killed the controller with SIGPIPE, writing to the closed connection): it lives,
        # and the leaf is programmed again.
        programmed = sum("switch dc1-leaf1 programmed" in line for line in lab.controller.lines)
        target = f"tcp:127.0.0.1:{lab.controller.port}"
        for controller in ("tcp:127.0.0.1:1", target):
            subprocess.run(["ovs-vsctl", "--timeout=10", "set-controller", leaf.bridge,
                            controller], check=True, capture_output=True, timeout=15)
        deadline = time.monotonic() + 30
        while (sum("switch dc1-leaf1 programmed" in line for line in lab.controller.lines)
               == programmed and time.monotonic() < deadline):
            assert lab.controller.proc.poll() is None, lab.controller.lines[-20:]
            time.sleep(0.2)
        assert lab.controller.proc.poll() is None, lab.controller.lines[-20:]
        assert delivered(lab, "dc2-h1", far) == 5


def _swap_cables(bridge: str, one: int, two: int) -> None:
    """Cross the cables of ports `one` and `two` of `bridge`: the names and numbers stay,
    the neighbours change (the veth interfaces trade names)."""
    a, b, spare = f"{bridge}p{one}", f"{bridge}p{two}", "dlqswap"
    subprocess.run(["ovs-vsctl", "--timeout=10", "del-port", bridge, a, "--",
                    "del-port", bridge, b], check=True, capture_output=True, timeout=15)
    for old, new in ((a, spare), (b, a), (spare, b)):
        subprocess.run(["ip", "link", "set", "dev", old, "down"], check=True, timeout=10)
        subprocess.run(["ip", "link", "set", "dev", old, "name", new], check=True, timeout=10)
    for name in (a, b):
        subprocess.run(["ip", "link", "set", "dev", name, "up"], check=True, timeout=10)
    subprocess.run(["ovs-vsctl", "--timeout=10", "add-port", bridge, a, "--", "set",
                    "interface", a, f"ofport_request={one}", "--", "add-port", bridge, b,
                    "--", "set", "interface", b, f"ofport_request={two}"],
                   check=True, capture_output=True, timeout=15)


def test_crossed_cables_are_found_and_routed_around(no_leftovers):
    """Swapped leaf cables on dc1-spine1 (right port numbers and names, wrong neighbours):
    the controller's probes find them, takes both links out of service, and the leaves'
    traffic goes over dc1-spine2; put right, they are back."""
    path = TOPOLOGIES / "two-dc.yaml"
    fabric = load_fabric(path)
    spine = fabric.switches["dc1-spine1"]
    with Lab(fabric, path, say=quiet) as lab:
        _swap_cables(spine.bridge, 1, 2)
        try:
            assert wait_for_line(lab, "cables crossed: dc1-spine1 port 1 reaches dc1-leaf2 "
                                      "port 3", 20), "\n".join(lab.controller.lines[-20:])
            for src, dst in (("dc2-h1", "dc1-h1"), ("dc2-h2", "dc1-h2"),
                             ("dc2-h3", "dc1-h3"), ("dc2-h4", "dc1-h4")):
                assert delivered(lab, src, fabric.hosts[dst].ip) == 5, (src, dst)
            # Not only in the log: GetFabric (`dcilab switches`) names it at both ends.
            problems = _wiring_problems(lab)
            assert problems["dc1-spine1"] and problems["dc1-leaf2"], problems
            assert problems["dc1-spine1"][0].startswith("cables crossed: dc1-spine1 port 1 ")
        finally:
            _swap_cables(spine.bridge, 1, 2)          # put right
        assert wait_for_line(lab, "is where the fabric file says: back in service", 20)
        assert delivered(lab, "dc2-h1", fabric.hosts["dc1-h1"].ip) == 5
        deadline = time.monotonic() + 30              # both ends' probes back: no problem
        while any(_wiring_problems(lab).values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(_wiring_problems(lab).values()), _wiring_problems(lab)
        # A host with another MAC than the file's gets nothing, and is said (its ARP).
        host = lab.emulation.host("dc1-h2")
        interface, mac = host.defaultIntf().name, fabric.hosts["dc1-h2"].mac
        host.cmd(f"ip link set dev {interface} address 02:00:00:00:00:99; ip neigh flush all")
        try:
            assert delivered(lab, "dc1-h2", fabric.hosts["dc2-h1"].ip, count=2) == 0
            assert wait_for_line(lab, "hears MAC 02:00:00:00:00:99", 20), \
                "\n".join(lab.controller.lines[-20:])
            [why] = _wiring_problems(lab)["dc1-leaf1"]
            assert why.startswith("dc1-leaf1 port 2 should have dc1-h2"), why
        finally:
            host.cmd(f"ip link set dev {interface} address {mac}; ip neigh flush all")
        assert delivered(lab, "dc1-h2", fabric.hosts["dc2-h1"].ip) == 5
        # put right, known from its first ARP (not after 90 s of silence)
        deadline = time.monotonic() + 10
        while _wiring_problems(lab)["dc1-leaf1"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _wiring_problems(lab)["dc1-leaf1"]


def _wiring_problems(lab) -> dict[str, list[str]]:
    with Client(lab.controller.grpc_address) as client:
        return {sw.name: list(sw.problems) for sw in client.fabric().switches}
