"""Fault injection on a running emulation, checked with the kernel's view (carrier,
operstate, nft rules, frames through the fibre element) and with probe streams.

These tests assert what the emulation does, not what the controller makes of it: the
only path between dc1 and dc2 in two-dc is line system dc1-dc2-a, so cutting it leaves
every cross-site stream dark whatever the controller does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from dcilab.emulation.cleanup import FAULTS_STATE, leftovers
from dcilab.emulation.faults import FaultError
from dcilab.emulation.fibre import fibre_plan, link_flags
from dcilab.emulation.probe_analysis import dark_after, loss_window
from dcilab.emulation.probes import Probes, fabric_streams, mininet_runner
from dcilab.fabric import load_fabric
from dcilab.lab import Lab

from conftest import TOPOLOGIES

pytestmark = pytest.mark.integration

PATH = TOPOLOGIES / "two-dc.yaml"
LINK = "dc1-dc2-a"
W = [f"{LINK}.w{k}" for k in range(1, 5)]


@pytest.fixture(scope="module")
def lab():
    fabric = load_fabric(PATH)
    lab = Lab(fabric, PATH, say=lambda _m: None)
    lab.start()
    yield lab
    lab.stop()


def gateway_ports(fabric, wavelength):
    link = fabric.link(wavelength)
    return [fabric.switches[e.node].interface(e.port) for e in (link.a, link.b)]


def wait_until(pred, timeout_s=5.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def carrier(port):
    return link_flags(None, port)


def lit(fabric, wavelength):
    return all(carrier(p) == {"admin_up": True, "carrier": True, "oper_up": True}
               for p in gateway_ports(fabric, wavelength))


def dark_but_admin_up(fabric, wavelength):
    return all(carrier(p) == {"admin_up": True, "carrier": False, "oper_up": False}
               for p in gateway_ports(fabric, wavelength))


def frames_through(fabric, wavelength, n=200):
    """Send n raw frames into the fibre at the a-side gateway port; how many came out at
    the b side (its kernel receive counter)."""
    a, b = gateway_ports(fabric, wavelength)
    rx = f"/sys/class/net/{b}/statistics/rx_packets"
    before = int(open(rx).read())
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((a, 0))
        frame = b"\x02\xdd\x00\x00\x00\x02" + b"\x02\xdd\x00\x00\x00\x01" + b"\x88\xb5" + bytes(46)
        for _ in range(n):
            s.send(frame)
            time.sleep(0.0005)
    time.sleep(0.2)
    return int(open(rx).read()) - before


def test_fibre_passes_frames_and_keeps_gateway_ports(lab):
    fabric = lab.fabric
    for w in W:
        assert lit(fabric, w)
        assert frames_through(fabric, w, 50) >= 50
    # The controller's view of ports is unchanged: OVS has the fabric's port numbers.
    out = subprocess.run(["ovs-vsctl", "get", "interface", "dl1gw1p3", "ofport"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "3"


def test_cut_line_system_is_carrier_loss_at_both_gateways_and_darkens_streams(lab):
    fabric, faults = lab.fabric, lab.faults
    pairs = [("dc1-h1", "dc2-h3"), ("dc2-h2", "dc1-h4")]
    with Probes(mininet_runner(lab.emulation), fabric_streams(fabric, pairs),
                port=7500) as probes:
        time.sleep(1.0)
        fault = faults.cut(LINK)
        assert fault.wavelengths == W
        wait_until(lambda: all(dark_but_admin_up(fabric, w) for w in W), what="carrier loss")
        plan = fibre_plan(fabric)
        for w in W:
            assert not link_flags(plan[w].namespace, plan[w].end_a)["admin_up"]
            assert frames_through(fabric, w, 20) == 0
        time.sleep(1.3)
        restored = faults.restore(LINK)
        assert [f.kind for f in restored] == ["cut"]
        wait_until(lambda: all(lit(fabric, w) for w in W), what="carrier back")
        t_back = time.time()
        time.sleep(2.5)
        records = probes.stop()
    assert faults.list() == []
    for rec in records.values():
        assert dark_after(rec, fault.since, after_s=1.0), rec.name
        window = loss_window(rec, fault.since, horizon_s=1.2)
        assert window.loss_ms > 1000 and not window.recovered, (rec.name, window)
        # Light is back: the stream delivers again by the end (kernel and OVS forward).
        assert not dark_after(rec, t_back, after_s=2.0, span_s=0.3), rec.name


def test_dark_transceiver_takes_both_ends_down(lab):
    fabric, faults = lab.fabric, lab.faults
    with pytest.raises(FaultError, match="ends at sites dc1 and dc2"):
        faults.dark(W[0], "dc9")
    fault = faults.dark(W[0], "dc1")
    wait_until(lambda: dark_but_admin_up(fabric, W[0]), what="both ends dark")
    assert lit(fabric, W[1])
    assert [f.describe() for f in faults.list()] == [f"{W[0]}: transceiver at dc1 dark"]
    faults.restore(W[0], kind="dark")
    wait_until(lambda: lit(fabric, W[0]), what="lit again")
    assert fault.end == "dc1"


def test_gray_keeps_carrier_and_drops_everything_then_loss_drops_some(lab):
    fabric, faults = lab.fabric, lab.faults
    faults.gray(W[1])
    assert lit(fabric, W[1])                          # carrier stays up at both ends
    assert frames_through(fabric, W[1], 100) == 0
    plan = fibre_plan(fabric)[W[1]]
    rules = subprocess.run(["ip", "netns", "exec", plan.namespace, "nft", "list", "chain",
                            "netdev", "dlfibre", plan.chain_a], capture_output=True, text=True,
                           check=True).stdout
    assert "drop" in rules and "packets 100" in rules
    faults.restore(W[1])
    assert frames_through(fabric, W[1], 100) >= 100

    faults.set_loss(W[1], 0.5)
    got = frames_through(fabric, W[1], 400)
    assert 120 <= got <= 280, got                     # ~200 of 400 at 50 %
    faults.set_loss(W[1], 0.0)                        # 0 clears it
    assert faults.list() == []
    assert frames_through(fabric, W[1], 100) >= 100


def _ovs(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def test_spine_down_neighbours_lose_carrier_and_switch_up_reconnects(lab):
    fabric, faults = lab.fabric, lab.faults
    spine = fabric.switches["dc1-spine1"]
    before = _ovs("ovs-vsctl", "get-controller", spine.bridge)
    assert before.startswith("tcp:127.0.0.1:")
    faults.switch_down("dc1-spine1")
    assert _ovs("ovs-vsctl", "get-controller", spine.bridge) == ""
    assert "actions=" not in _ovs("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", spine.bridge)
    neighbours = []
    for port, link in fabric.ports("dc1-spine1").items():
        assert not carrier(spine.interface(port))["admin_up"]
        end = link.other("dc1-spine1")
        neighbours.append(fabric.switches[end.node].interface(end.port))
    wait_until(lambda: all(carrier(n) == {"admin_up": True, "carrier": False,
                                          "oper_up": False} for n in neighbours),
               what="neighbours' carrier loss")
    faults.switch_up("dc1-spine1")
    wait_until(lambda: all(carrier(n)["carrier"] for n in neighbours), what="carrier back")
    assert _ovs("ovs-vsctl", "get-controller", spine.bridge) == before
    wait_until(lambda: connected(spine.bridge), timeout_s=15, what="reconnected")


def connected(bridge):
    uuid = _ovs("ovs-vsctl", "get", "bridge", bridge, "controller").strip("[]")
    return bool(uuid) and _ovs("ovs-vsctl", "get", "controller", uuid, "is_connected") == "true"


def test_gateway_down_darkens_its_wavelengths_at_the_far_gateway(lab):
    fabric, faults = lab.fabric, lab.faults
    faults.switch_down("dc2-gw1")
    far = [gateway_ports(fabric, w)[0] for w in W]        # dc1-gw1's ends
    wait_until(lambda: all(carrier(p) == {"admin_up": True, "carrier": False,
                                          "oper_up": False} for p in far), what="far LOS")
    faults.restore("dc2-gw1")
    wait_until(lambda: all(lit(fabric, w) for w in W), what="lit again")
    # its controller connection made again retries as the emulation's first did: at most
    # a second apart (OVS's default 8 s outlasted a restarted controller's gather)
    for bridge in (fabric.switches["dc2-gw1"].bridge, fabric.switches["dc1-gw1"].bridge):
        uuid = _ovs("ovs-vsctl", "get", "bridge", bridge, "controller").strip("[]")
        assert _ovs("ovs-vsctl", "get", "controller", uuid, "max_backoff") == "1000"


def test_flap_toggles_carrier_and_restore_stops_it(lab):
    fabric, faults = lab.fabric, lab.faults
    port = gateway_ports(fabric, W[2])[0]
    fault = faults.flap(W[2], period_s=1.0, count=3)   # each down 0.5 s: seen between samples
    # The start it answers is when its process began the schedule, as recorded (it said
    # the time asked, seconds early on a busy machine).
    [listed] = faults.list()
    assert listed.since == fault.since
    # Watched until its process has ended by itself (it may start late on a busy machine).
    seen, deadline = [], time.monotonic() + 20.0
    while time.monotonic() < deadline:
        seen.append(carrier(port)["carrier"])
        if len(seen) % 10 == 0 and faults.list() == []:
            break
        time.sleep(0.01)
    assert faults.list() == [], "the flap did not end by itself within 20 s"
    seen.append(carrier(port)["carrier"])
    downs = sum(1 for a, b in zip(seen, seen[1:]) if a and not b)
    assert downs == 3, seen
    assert seen[-1]
    assert lit(fabric, W[2])
    # Without a count it flaps until restored, and restore stops its process.
    fault = faults.flap(LINK, period_s=0.3)
    time.sleep(0.5)
    with pytest.raises(FaultError, match="shares with nothing"):
        faults.gray(W[0])
    faults.restore(LINK)
    assert not os.path.exists(f"/proc/{fault.pid}") or \
        b"dcilab.emulation.faults" not in open(f"/proc/{fault.pid}/cmdline", "rb").read()
    time.sleep(0.4)
    assert all(lit(fabric, w) for w in W)


def dcilab(*args):
    return subprocess.run([sys.executable, "-m", "dcilab", "fault", *args],
                          capture_output=True, text=True, timeout=30)


def test_cli_on_the_running_emulation(lab):
    fabric = lab.fabric
    done = dcilab("cut", "dc1-dc3")
    assert done.returncode == 2                   # bad input, as everywhere
    assert "unknown link or wavelength 'dc1-dc3'" in done.stderr and LINK in done.stderr
    assert "Traceback" not in done.stderr
    grayed = dcilab("gray", W[3])
    assert grayed.returncode == 0
    # which emulation it acted on, on stderr beside the report
    assert f"emulation {fabric.name} (" in grayed.stderr and f"pid {os.getpid()}" in \
        grayed.stderr, grayed.stderr
    listed = dcilab("list", "--json")
    assert [f["kind"] for f in json.loads(listed.stdout)["faults"]] == ["gray"]
    assert frames_through(fabric, W[3], 50) == 0
    # A fault left in force is undone when the emulation stops (next test).
    assert dcilab("cut", W[0]).returncode == 0
    assert dark_but_admin_up(fabric, W[0])
    again = dcilab("cut", W[0])
    assert again.returncode == 1 and "already has this fault" in again.stderr


def test_stop_removes_everything_and_cli_says_no_emulation(lab):
    flap = lab.faults.flap(W[1], period_s=0.5)
    lab.stop()
    assert leftovers() == {"bridges": [], "interfaces": [], "namespaces": [], "processes": [],
                           "directories": []}
    assert not FAULTS_STATE.exists()
    assert not os.path.exists(f"/proc/{flap.pid}") or \
        b"dcilab.emulation.faults" not in open(f"/proc/{flap.pid}/cmdline", "rb").read()
    done = dcilab("list")
    assert done.returncode == 1 and "no dcilab emulation is running" in done.stderr
