"""A PROTECTED reservation on the real emulation: its line system is cut under traffic,
the ingress gateway's fast-failover group takes the reserved standby by itself, and the
reservation is never DEGRADED."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time

from dcilab.api.client import Client, state_name
from dcilab.core.reservation_rules import PROTECT_GROUP_BASE
from dcilab.fabric import load_fabric
from dcilab.lab import Lab

from test_failures import (TRIANGLE, ping_stream, received, set_line_system, wait_for,
                           wavelengths)


def quiet(_msg: str) -> None:
    pass


@contextlib.contextmanager
def protected_on_triangle(tmp_path):
    """The fault bench's triangle emulated, a client, and a PROTECTED a-h1 -> b-h1 of
    100 Gb/s, ACTIVE: (fabric, lab, client, reservation)."""
    path = tmp_path / "tri.yaml"
    path.write_text(TRIANGLE)
    fabric = load_fabric(path)
    with Lab(fabric, path, say=quiet) as lab, Client(lab.controller.grpc_address) as client:
        res = client.reserve("a-h1", "b-h1", 100, protection="PROTECTED")
        wait_for(lambda: state_name(client.get(res.reservation_id)) == "ACTIVE", 10, "ACTIVE")
        yield fabric, lab, client, res


def test_a_protected_reservation_survives_a_line_system_cut_on_its_standby(tmp_path,
                                                                           no_leftovers):
    with protected_on_triangle(tmp_path) as (fabric, lab, client, res):
        assert wavelengths(res) == {"a-b"}
        assert {h.wavelength.rsplit(".", 1)[0] for h in res.standby_hops if h.wavelength} == \
            {"a-c", "b-c"}
        gateway = fabric.switches[next(h.switch for h in res.hops if h.wavelength)].bridge
        group = PROTECT_GROUP_BASE + res.meter_id
        stream = ping_stream(lab, "a-h1", "b-h1", seconds=6)
        time.sleep(2)
        # The controller is frozen through the cut: the switches alone must carry it.
        pid = lab.controller.proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            set_line_system(fabric, "a-b", up=False)
            # The reservation's group at its gateway sends the packets onto the standby
            # (its second bucket): half a second's pings, waited for while it stays frozen.
            deadline, standby = time.monotonic() + 5.0, 0
            while standby < 50 and time.monotonic() < deadline:
                stats = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-group-stats",
                                        gateway, f"group_id={group}"], capture_output=True,
                                       text=True, timeout=10).stdout
                found = re.search(r"bucket1:packet_count=(\d+)", stats)
                standby = int(found.group(1)) if found else 0
                time.sleep(0.1)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert standby >= 50, stats
        states = set()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            states.add(state_name(client.get(res.reservation_id)))
            time.sleep(0.1)
        assert "DEGRADED" not in states, states
        sent, got = received(stream)
        # As the fault issue's target for a cut: a few packets at most while carrier goes
        # (100 pps: 1 packet = 10 ms).
        assert sent - got <= 10, (sent, got)
        set_line_system(fabric, "a-b", up=True)


def _group_on(bridge: str, group: int) -> bool:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", bridge],
                         capture_output=True, text=True, timeout=10).stdout
    return f"group_id={group}," in out


def test_a_standby_lost_to_a_cut_comes_back_and_its_repair_never_degrades(tmp_path,
                                                                           no_leftovers):
    """An outside tester's case on the real switches: the standby's line system (a-c) is
    cut, its room on b-c is taken by others, a-c is repaired: the reservation stays ACTIVE
    on its primary, metered (it went DEGRADED, its meter removed); once room is released,
    its standby and the gateway's fast-failover group come back."""
    with protected_on_triangle(tmp_path) as (fabric, lab, client, res):
        gateway = fabric.switches[next(h.switch for h in res.hops if h.wavelength)].bridge
        group = PROTECT_GROUP_BASE + res.meter_id
        assert _group_on(gateway, group)
        set_line_system(fabric, "a-c", up=False)
        wait_for(lambda: not client.get(res.reservation_id).standby_hops, 15, "standby gone")
        fill = [client.reserve(f"c-h{i}", f"b-h{i}", 360) for i in (1, 2)]   # b-c, c -> b
        for r in fill:
            wait_for(lambda r=r: state_name(client.get(r.reservation_id)) == "ACTIVE", 15,
                     "the fill ACTIVE")
        set_line_system(fabric, "a-c", up=True)
        states = set()
        deadline = time.monotonic() + 4                    # held down 1 s, then in use
        while time.monotonic() < deadline:
            now = client.get(res.reservation_id)
            states.add(state_name(now))
            time.sleep(0.1)
        assert states == {"ACTIVE"}, states
        assert not now.standby_hops and not now.degraded_reason
        leaf = fabric.switches[res.hops[0].switch].bridge
        meters = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", leaf],
                                capture_output=True, text=True, timeout=10).stdout
        assert f"meter={res.meter_id} " in meters, meters
        client.release(fill[0].reservation_id)
        back = wait_for(lambda: client.get(res.reservation_id).standby_hops, 15, "a standby")
        assert {h.wavelength.rsplit(".", 1)[0] for h in back if h.wavelength} == {"a-c", "b-c"}
        wait_for(lambda: _group_on(gateway, group), 15, "the fast-failover group")
        assert state_name(client.get(res.reservation_id)) == "ACTIVE"
