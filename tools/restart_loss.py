#!/usr/bin/env python3
"""Packets lost while the controller restarts, on the emulation.

    flock /tmp/dcilab-emulation.lock timeout 600 .venv/bin/python tools/restart_loss.py \
        [--rounds N] [--reserve] [--down S] [--kill]

Starts the fault bench's triangle (three sites, a way around every line system), with a
100 Gb/s reservation from a-h1 to b-h1 if --reserve, then N times: a one-way iperf3 UDP
stream a-h1 -> b-h1 at 1 000 packets/s for 8 s, and 2.5 s into it the controller is
stopped (SIGTERM, or SIGKILL with --kill), left down --down seconds, and started again on
the same state file. Prints each round's packets lost, per second, and the controller's
warnings; at the end the ingress leaf's meters and metered flows.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from dcilab.api.client import Client, state_name
from dcilab.bench.faults import DEFAULT_FABRIC
from dcilab.fabric import load_fabric
from dcilab.lab import ControllerProcess, Lab

PORT = 6100


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def ofctl(what: str, bridge: str) -> str:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", what, bridge],
                          capture_output=True, text=True, timeout=10).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reserve", action="store_true", help="a 100 Gb/s reservation")
    parser.add_argument("--down", type=float, default=0.0, help="seconds without controller")
    parser.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dcilab-restart-") as tmp:
        path = Path(tmp) / "triangle.yaml"
        path.write_text(DEFAULT_FABRIC)
        fabric = load_fabric(path)
        earlier: list[ControllerProcess] = []   # their directories hold the state file
        try:
            with Lab(fabric, path, say=lambda _msg: None) as lab:
                rounds(lab, fabric, path, args, earlier)
        finally:
            for controller in earlier:          # after the last one has stopped
                controller.stop()
    return 0


def rounds(lab: Lab, fabric, path: Path, args, earlier: list[ControllerProcess]) -> None:
    state = str(Path(lab.controller.state_dir) / "state.db")
    stream_s = max(8, int(args.down) + 6)
    if args.reserve:
        with Client(lab.controller.grpc_address) as client:
            res = client.reserve("a-h1", "b-h1", 100)
            deadline = time.monotonic() + 15
            while (state_name(client.get(res.reservation_id)) != "ACTIVE"
                   and time.monotonic() < deadline):
                time.sleep(0.1)
            log("reserved", res.reservation_id)
    for n in range(args.rounds):
        server = lab.emulation.host("b-h1").popen(
            ["iperf3", "-s", "-1", "-p", str(PORT), "-J"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        sender = lab.emulation.host("a-h1").popen(
            ["iperf3", "-c", fabric.hosts["b-h1"].ip, "-p", str(PORT), "-u", "-b", "1.6M",
             "-l", "200", "-t", str(stream_s), "-J"], stdout=subprocess.PIPE, text=True)
        time.sleep(2.5)
        started = time.monotonic()
        lab.controller.proc.send_signal(signal.SIGKILL if args.kill else signal.SIGTERM)
        lab.controller.proc.wait(timeout=15)
        time.sleep(args.down)
        earlier.append(lab.controller)
        lab.controller = ControllerProcess(path, earlier[0].port, extra_args=["--state", state])
        lab.controller.wait_listening()
        ready = lab.controller.wait_ready(60)
        log(f"round {n + 1}: restarted, ready={ready} {time.monotonic() - started:.1f} s "
            f"after the stop")
        sender.communicate(timeout=stream_s + 30)
        report = json.loads(server.communicate(timeout=30)[0])
        total = report["end"]["sum"]
        per_s = [i["sum"].get("lost_packets", 0) for i in report["intervals"]]
        log(f"round {n + 1}: {total['lost_packets']} of {total['packets']} packets lost; "
            f"per second {per_s}")
        log("  controller warnings:", [line[-140:] for line in lab.controller.lines
                                       if " WARNING " in line or " ERROR " in line])
    leaf = fabric.switches[fabric.hosts["a-h1"].leaf].bridge
    log("ingress leaf: meters", ofctl("dump-meters", leaf).count("meter="), "metered flows",
        ofctl("dump-flows", leaf).count("meter:"))


if __name__ == "__main__":
    raise SystemExit(main())
