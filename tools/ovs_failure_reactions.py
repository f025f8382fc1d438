#!/usr/bin/env python3
"""How userspace Open vSwitch reacts to failures, measured on a private two-bridge rig.

    flock /tmp/dcilab-emulation.lock timeout 900 .venv/bin/python tools/ovs_failure_reactions.py [--reps 5] [--json]

The rig (every name starts `dx`, everything is removed at the end, whatever happens):

    [netns dxh1] dxh1e0 - dxs1p1 [bridge dxs1] dxs1p2 - [netns dxfibre1: dx1w1a = dx1w1b] - dxs2p2 [bridge dxs2] dxs2p1 - dxh2e0 [netns dxh2]
                                               dxs1p3 - [                 dx1w2a = dx1w2b] - dxs2p3

Both bridges are `datapath_type=netdev`, OpenFlow 1.3, fail-mode secure, no controller.
The two "wavelengths" run through a fibre namespace exactly as in the emulation
(`dcilab.emulation.fibre`). Each bridge sends host traffic into group 1 over ports 2 and 3;
probes are sequence-numbered UDP at 1000 pps each way (`dcilab.emulation.probes`).

It measures:
  (a) PORT_STATUS (seen by `ovs-ofctl --timestamp monitor`) for an administrative shutdown
      (`ovs-ofctl mod-port ... down`, `ip link set ... down`) and for carrier loss (both
      middle ends down in the fibre namespace; one end only): config and state bits, delay;
  (b) loss windows when the primary wavelength is cut, with a fast-failover group, a
      select group whose buckets watch their ports, and a select group without watch ports;
  (d) what the fibre element costs: unshaped TCP goodput through it and through a plain
      veth pair (port 4), alternating;
  (c) BFD on ports 2 (`bfd:enable=true`, min_tx = min_rx = M ms): session up on this
      datapath?, a gray failure (carrier up, nft drops everything) -> time until the port
      is no longer live, PORT_STATUS, and the probes' loss window through the FF group.
Timing figures are noisy on a shared 2-core machine: each is given as median and max of
--reps repetitions.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone


from dcilab.emulation.fibre import (WavelengthEnds, connect, create_namespace,
                                    delete_namespace, set_drops, set_light)
from dcilab.emulation.probe_analysis import loss_window
from dcilab.emulation.probes import Probes, Stream, netns_runner

FIBRE = "dxfibre1"
W1 = WavelengthEnds("w1", "dx", FIBRE, "dx1w1a", "dx1w1b", "w1a", "w1b", "s1", "s2")
W2 = WavelengthEnds("w2", "dx", FIBRE, "dx1w2a", "dx1w2b", "w2a", "w2b", "s1", "s2")
HOSTS = {"h1": ("dxh1", "dxh1e0", "10.99.0.1", "02:dd:00:00:00:01"),
         "h2": ("dxh2", "dxh2e0", "10.99.0.2", "02:dd:00:00:00:02")}
BRIDGES = ("dxs1", "dxs2")


def sh(*cmd: str, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout


def ofctl(*args: str, check: bool = True) -> str:
    return sh("ovs-ofctl", "-O", "OpenFlow13", *args, check=check)


# -- the rig -------------------------------------------------------------------------

def teardown() -> None:
    for br in BRIDGES:
        sh("ovs-vsctl", "--if-exists", "del-br", br, check=False)
    for ns, *_ in HOSTS.values():
        sh("ip", "netns", "delete", ns, check=False)
    delete_namespace(FIBRE)
    for br in BRIDGES:      # veth ends left in the root namespace, if any
        for p in (1, 2, 3, 4):
            sh("ip", "link", "del", f"{br}p{p}", check=False)


def build() -> None:
    create_namespace(FIBRE)
    for i, (name, (ns, intf, ip, mac)) in enumerate(HOSTS.items(), start=1):
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", f"dxs{i}p1", "type", "veth", "peer", "name", intf, "netns", ns)
        sh("ip", "-n", ns, "link", "set", "dev", intf, "address", mac)
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", intf)
        sh("ip", "-n", ns, "link", "set", "dev", intf, "up")
        sh("ip", "-n", ns, "link", "set", "dev", "lo", "up")
        # Userspace OVS and offloaded checksums do not mix (ENVIRONMENT.md).
        sh("ip", "netns", "exec", ns, "ethtool", "-K", intf, "tx", "off", check=False)
    for h, (ns, intf, _ip, _mac) in HOSTS.items():
        other = HOSTS["h2" if h == "h1" else "h1"]
        sh("ip", "-n", ns, "neigh", "replace", other[2], "lladdr", other[3], "dev", intf)
    connect(W1, "dxs1p2", "dxs2p2")
    connect(W2, "dxs1p3", "dxs2p3")
    # A plain veth pair as port 4, to price the fibre element (d).
    sh("ip", "link", "add", "dxs1p4", "type", "veth", "peer", "name", "dxs2p4")
    for i, br in enumerate(BRIDGES, start=1):
        sh("ovs-vsctl", "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev",
           "fail-mode=secure", "protocols=OpenFlow13",
           f"other-config:datapath-id={0xdd00 + i:016x}")
        for p in (1, 2, 3, 4):
            sh("ovs-vsctl", "add-port", br, f"{br}p{p}", "--", "set", "interface",
               f"{br}p{p}", f"ofport_request={p}")
            sh("ip", "link", "set", "dev", f"{br}p{p}", "up")


def program(group_type: str, watch: bool = True) -> None:
    """Host traffic into group 1 over ports 2 and 3; what comes from them to the host."""
    for br in BRIDGES:
        ofctl("del-flows", br)
        ofctl("del-groups", br, check=False)
        buckets = ",".join(
            (f"bucket=watch_port:{p},actions=output:{p}" if watch else
             f"bucket=actions=output:{p}") for p in (2, 3))
        ofctl("add-group", br, f"group_id=1,type={group_type},{buckets}")
        ofctl("add-flow", br, "in_port=1,actions=group:1")
        ofctl("add-flow", br, "in_port=2,actions=output:1")
        ofctl("add-flow", br, "in_port=3,actions=output:1")


def wait_flowing(timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if subprocess.run(["ip", "netns", "exec", "dxh1", "ping", "-c", "1", "-W", "0.3",
                           HOSTS["h2"][2]], capture_output=True).returncode == 0:
            return
    raise RuntimeError("the rig does not forward")


# -- PORT_STATUS ---------------------------------------------------------------------

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}): (.*)$")


class Monitor:
    """`ovs-ofctl --timestamp monitor BRIDGE`: every PORT_STATUS with its time (UTC ms)."""

    def __init__(self, bridge: str):
        self.events: list[dict] = []
        # A service connection gets asynchronous messages only with a miss_send_len set
        # (the 128). With --timestamp, ovs-ofctl prints the messages on stderr.
        self.proc = subprocess.Popen(["ovs-ofctl", "-O", "OpenFlow13", "--timestamp", "monitor",
                                      bridge, "128"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self._out = self.proc.stderr
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.3)

    def _read(self) -> None:
        current = None
        for line in self._lines():
            m = _STAMP.match(line)
            if m:
                stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(
                    tzinfo=timezone.utc).timestamp()
                current = {"t": stamp, "head": m.group(2), "config": "", "state": ""}
                if "PORT_STATUS" in line:
                    self.events.append(current)
            elif current is not None:
                key, _, value = line.strip().partition(":")
                if key in ("config", "state"):
                    current[key] = value.strip()

    def _lines(self):
        try:
            yield from self._out
        except OSError:         # the pty closes when ovs-ofctl exits
            return

    def wait_for(self, port: int, after: float, pred, timeout_s: float = 3.0) -> dict | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for e in self.events:
                if e["t"] >= after - 0.002 and f" {port}(" in e["head"] and pred(e):
                    return e
            time.sleep(0.005)
        return None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


def _down(e) -> bool:
    return "LINK_DOWN" in e["state"] or "PORT_DOWN" in e["config"]


def _up(e) -> bool:
    return not _down(e)


def measure_port_status(reps: int) -> dict:
    methods = {
        "admin: ovs-ofctl mod-port down": (lambda: ofctl("mod-port", "dxs1", "2", "down"),
                                           lambda: ofctl("mod-port", "dxs1", "2", "up")),
        "admin: ip link set down": (lambda: sh("ip", "link", "set", "dev", "dxs1p2", "down"),
                                    lambda: sh("ip", "link", "set", "dev", "dxs1p2", "up")),
        "carrier loss: cut (both middle ends down)": (lambda: set_light(W1, False, False),
                                                      lambda: set_light(W1, True, True)),
        "carrier loss: near middle end only": (lambda: set_light(W1, False, True),
                                               lambda: set_light(W1, True, True)),
    }
    out = {}
    mon1, mon2 = Monitor("dxs1"), Monitor("dxs2")
    try:
        for name, (inject, undo) in methods.items():
            rows = []
            for _ in range(reps):
                t = time.time()
                inject()
                e = mon1.wait_for(2, t, _down)
                not_live = mon1.wait_for(2, t, lambda e: "LIVE" not in e["state"], timeout_s=0.5)
                far = mon2.wait_for(2, t, _down, timeout_s=0.5)
                time.sleep(0.2)
                seen = [f"[{m['config']}|{m['state']}]" for m in mon1.events
                        if m["t"] >= t - 0.002 and " 2(" in m["head"]]
                t2 = time.time()
                undo()
                e2 = mon1.wait_for(2, t2, _up)
                rows.append({"down_ms": (e["t"] - t) * 1000 if e else None,
                             "not_live_ms": (not_live["t"] - t) * 1000 if not_live else None,
                             "config": e["config"] if e else None,
                             "state": e["state"] if e else None,
                             "messages": " ".join(seen),
                             "far_end_saw": (far["state"] or far["config"]) if far else "nothing",
                             "up_ms": (e2["t"] - t2) * 1000 if e2 else None,
                             "state_after_up": e2["state"] if e2 else None})
                time.sleep(0.3)
            out[name] = rows
    finally:
        mon1.stop()
        mon2.stop()
    return out


# -- loss windows --------------------------------------------------------------------

def _rx_packets(ends: WavelengthEnds) -> int:
    out = sh("ip", "netns", "exec", ends.namespace, "cat",
             f"/sys/class/net/{ends.end_a}/statistics/rx_packets")
    return int(out)


def active_wavelength() -> WavelengthEnds:
    """The wavelength carrying h1 -> h2 now (its near middle end's receive counter grows)."""
    before = {w.end_a: _rx_packets(w) for w in (W1, W2)}
    time.sleep(0.2)
    grew = {w: _rx_packets(w) - before[w.end_a] for w in (W1, W2)}
    return max(grew, key=grew.get)


def measure_windows(reps: int, inject, undo, pick=lambda: W1, gap_s: float = 0.8,
                    down_s: float = 0.6) -> dict:
    """Probes both ways; `reps` times: fault at t, undone down_s later. Loss window of each
    stream around each fault and around each undo (the revert)."""
    streams = [Stream("h1", "h2", HOSTS["h2"][2]), Stream("h2", "h1", HOSTS["h1"][2])]
    runner = netns_runner({h: v[0] for h, v in HOSTS.items()})
    events = []
    with Probes(runner, streams, port=7300) as probes:
        time.sleep(0.6)
        for _ in range(reps):
            target = pick()
            t = time.time()
            inject(target)
            time.sleep(down_s)
            t2 = time.time()
            undo(target)
            events.append((t, t2, target.wavelength))
            time.sleep(gap_s)
        records = probes.stop()
    out = {}
    for name, rec in records.items():
        cut = [loss_window(rec, t, horizon_s=down_s - 0.05) for t, _t2, _w in events]
        back = [loss_window(rec, t2, horizon_s=gap_s - 0.1, before_s=0.0) for _t, t2, _w in events]
        out[name] = {"fault_ms": [round(w.loss_ms, 1) for w in cut],
                     "recovered": [w.recovered for w in cut],
                     "revert_ms": [round(w.loss_ms, 1) for w in back],
                     "wavelength_cut": [w for _t, _t2, w in events]}
    return out


# -- BFD -----------------------------------------------------------------------------

def bfd_status(intf: str) -> dict:
    out = sh("ovs-vsctl", "get", "interface", intf, "bfd_status")
    return dict(re.findall(r'([\w-]+)="?([^",}]*)"?', out))


def wait_bfd(intf: str, pred, timeout_s: float) -> float | None:
    start = time.time()
    while time.time() - start < timeout_s:
        if pred(bfd_status(intf)):
            return time.time()
        time.sleep(0.002)
    return None


def measure_bfd(reps: int, interval_ms: int) -> dict:
    for br in BRIDGES:
        sh("ovs-vsctl", "set", "interface", f"{br}p2", "bfd:enable=true",
           f"bfd:min_tx={interval_ms}", f"bfd:min_rx={interval_ms}")
    try:
        up = wait_bfd("dxs1p2", lambda s: s.get("state") == "up", 10.0)
        show = sh("ovs-appctl", "bfd/show", "dxs1p2", check=False)
        if up is None:
            return {"interval_ms": interval_ms, "session_up": False, "bfd_show": show}
        program("ff")
        wait_flowing()
        rows = []
        mon = Monitor("dxs1")
        try:
            streams = [Stream("h1", "h2", HOSTS["h2"][2])]
            runner = netns_runner({h: v[0] for h, v in HOSTS.items()})
            events = []
            with Probes(runner, streams, port=7400) as probes:
                time.sleep(0.6)
                for _ in range(reps):
                    before = bfd_status("dxs1p2")
                    t = time.time()
                    set_drops(W1, gray=True, loss_per_mille=0)
                    down = wait_bfd("dxs1p2", lambda s: s.get("forwarding") == "false", 5.0)
                    ps = mon.wait_for(2, t, lambda e: "LIVE" not in e["state"], timeout_s=0.5)
                    time.sleep(0.3)
                    t2 = time.time()
                    set_drops(W1, gray=False, loss_per_mille=0)
                    back = wait_bfd("dxs1p2", lambda s: s.get("forwarding") == "true", 10.0)
                    ps2 = mon.wait_for(2, t2, lambda e: "LIVE" in e["state"], timeout_s=0.5)
                    events.append(t)
                    rows.append({"forwarding_before": before.get("forwarding"),
                                 "flaps_before": before.get("flap_count"),
                                 "bfd_down_ms": round((down - t) * 1000, 1) if down else None,
                                 "port_status_not_live_ms":
                                     round((ps["t"] - t) * 1000, 1) if ps else None,
                                 "port_status_state": ps["state"] if ps else None,
                                 "bfd_up_again_ms": round((back - t2) * 1000, 1) if back else None,
                                 "port_status_live_again_ms":
                                     round((ps2["t"] - t2) * 1000, 1) if ps2 else None})
                    time.sleep(0.5)
                records = probes.stop()
            rec = next(iter(records.values()))
            for row, t in zip(rows, events):
                w = loss_window(rec, t, horizon_s=1.5)
                row["probe_loss_window_ms"] = round(w.loss_ms, 1)
        finally:
            mon.stop()
        return {"interval_ms": interval_ms, "session_up": True,
                "bfd_show": show.strip().splitlines()[:14], "gray": rows}
    finally:
        for br in BRIDGES:
            sh("ovs-vsctl", "remove", "interface", f"{br}p2", "bfd", "enable", "min_tx",
               "min_rx", check=False)


# -- the fibre element's cost ----------------------------------------------------------

def iperf(seconds: float = 4.0) -> float:
    server = subprocess.Popen(["ip", "netns", "exec", "dxh2", "iperf3", "-s", "-1", "-p", "5399"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = sh("ip", "netns", "exec", "dxh1", "iperf3", "-c", HOSTS["h2"][2], "-p", "5399",
                 "-t", f"{seconds:g}", "-J")
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        server.wait(timeout=10)


def measure_fibre_cost(reps: int) -> dict:
    """TCP goodput h1 -> h2, unshaped, through the fibre element (port 2) and through a
    plain veth pair (port 4), alternating, in the same run."""
    out = {"through fibre namespace": [], "plain veth pair": []}
    for _ in range(reps):
        for label, port in (("through fibre namespace", 2), ("plain veth pair", 4)):
            for br in BRIDGES:
                ofctl("del-flows", br)
                ofctl("add-flow", br, f"in_port=1,actions=output:{port}")
                ofctl("add-flow", br, f"in_port={port},actions=output:1")
            wait_flowing()
            out[label].append(round(iperf(), 1))
    return out


# -- main ----------------------------------------------------------------------------

def med_max(values) -> str:
    v = [x for x in values if x is not None]
    if not v:
        return "none seen"
    return f"median {statistics.median(v):.1f}, max {max(v):.1f} (n={len(v)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--bfd-ms", type=int, nargs="*", default=[1, 10, 100],
                        help="BFD min_tx/min_rx to try (ms)")
    parser.add_argument("--only", default="abcd", help="which parts to run (default abcd)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    teardown()
    results: dict = {}
    try:
        build()
        program("ff")
        wait_flowing()
        results = {"port_status": {}, "windows": {}, "bfd": []}
        if "a" in args.only:
            print("(a) PORT_STATUS on dxs1 port 2", file=sys.stderr)
            results["port_status"] = measure_port_status(args.reps)

        def cut(w):
            set_light(w, False, False)

        def light(w):
            set_light(w, True, True)

        for label, gtype, watch in (("fast-failover group", "ff", True),
                                    ("select group, buckets watch their port", "select", True),
                                    ("select group, no watch port", "select", False)):
            if "b" not in args.only:
                break
            print(f"(b) loss windows: {label}", file=sys.stderr)
            program(gtype, watch)
            wait_flowing()
            pick = (lambda: W1) if gtype == "ff" else active_wavelength
            results["windows"][label] = measure_windows(args.reps, cut, light, pick)
        if "d" in args.only:
            print("(d) the fibre element's cost", file=sys.stderr)
            results["fibre_cost_mbps"] = measure_fibre_cost(max(2, args.reps // 2))
        if "c" in args.only:
            print("(c) BFD", file=sys.stderr)
            results["bfd"] = [measure_bfd(max(3, args.reps // 2), ms) for ms in args.bfd_ms]
    finally:
        teardown()
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print("(a) PORT_STATUS seen on dxs1 for its port 2 (delay from the command, ms)")
    for name, rows in results["port_status"].items():
        r = rows[0]
        print(f"  {name}: messages [config|state] {r['messages']}; far end: "
              f"{r['far_end_saw']}; not LIVE {med_max(x['not_live_ms'] for x in rows)}; "
              f"down {med_max(x['down_ms'] for x in rows)}; "
              f"back up {med_max(x['up_ms'] for x in rows)} (state [{r['state_after_up']}])")
    print("(b) loss window when the wavelength a stream uses is cut (ms), and on restore")
    for label, per_stream in results["windows"].items():
        for stream, w in per_stream.items():
            print(f"  {label}, {stream}: cut {w['fault_ms']} recovered {w['recovered']}; "
                  f"restore {w['revert_ms']}")
    print("(c) BFD on port 2 of both bridges; gray failure on that wavelength")
    for b in results["bfd"]:
        if not b["session_up"]:
            print(f"  min_tx=min_rx={b['interval_ms']} ms: session never came up")
            continue
        rows = b["gray"]
        print(f"  min_tx=min_rx={b['interval_ms']} ms: bfd forwarding=false after "
              f"{med_max(r['bfd_down_ms'] for r in rows)} ms; PORT_STATUS without LIVE "
              f"{med_max(r['port_status_not_live_ms'] for r in rows)} ms "
              f"(state [{rows[0]['port_status_state']}]); FF loss window "
              f"{med_max(r['probe_loss_window_ms'] for r in rows)} ms; back after "
              f"{med_max(r['bfd_up_again_ms'] for r in rows)} ms; forwarding before each: "
              f"{[r['forwarding_before'] for r in rows]}, flaps {[r['flaps_before'] for r in rows]}")
        print("    " + "\n    ".join(b["bfd_show"]))
    if "fibre_cost_mbps" in results:
        print("(d) TCP goodput h1 -> h2 unshaped (Mb/s), alternating in one run")
        for label, values in results["fibre_cost_mbps"].items():
            print(f"  {label}: {values}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
