"""Real traffic between emulated hosts: ping every pair, iperf3 between chosen pairs, and
the byte counters of OVS interfaces."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from ..fabric.model import GATEWAY
from .network import Emulation


@dataclass(frozen=True)
class PingResult:
    src: str
    dst: str
    ok: bool


def ping_all(emu: Emulation, count: int = 1, timeout_s: int = 2) -> list[PingResult]:
    """Ping every ordered host pair; each source pings its destinations in one shell, and
    all sources run at once (a pair that fails is retried by nothing: loss is loss)."""
    hosts = list(emu.fabric.hosts.values())
    procs = {}
    for src in hosts:
        targets = " ".join(h.ip for h in hosts if h is not src)
        script = (f"for ip in {targets}; do if ping -n -q -c {count} -W {timeout_s} $ip "
                  f">/dev/null 2>&1; then echo ok $ip; else echo fail $ip; fi; done")
        procs[src.name] = emu.host(src.name).popen(["sh", "-c", script], stdout=subprocess.PIPE,
                                                    text=True)
    results = []
    for src_name, proc in procs.items():
        out, _ = proc.communicate()
        for line in out.splitlines():
            verdict, ip = line.split()
            results.append(PingResult(src_name, emu.fabric.host_by_ip(ip).name, verdict == "ok"))
    return results


@dataclass(frozen=True)
class IperfResult:
    src: str
    dst: str
    bits_per_second: float      # goodput seen by the receiver
    bytes: int
    error: str | None = None
    seconds: float = 0.0        # how long the transfer took (receiver side)
    src_port: int = 0           # the client's TCP port
    dst_port: int = 0           # the server's
    intervals: tuple = ()       # (start s, end s, bits/s) per report interval, sender side


def iperf_concurrent(emu: Emulation, pairs: list[tuple[str, str]], duration_s: float = 5.0,
                     base_port: int = 5301, size_bytes: int | None = None,
                     client_ports: list[int] | None = None,
                     server_ports: list[int] | None = None,
                     interval_s: float | None = None,
                     stop: threading.Event | None = None) -> list[IperfResult]:
    """Run one TCP iperf3 flow per (src, dst) pair, all at once: for `duration_s`, or until
    each has sent `size_bytes`. `client_ports` and `server_ports` fix each flow's source
    and destination ports (its 5-tuple); servers default to base_port, base_port + 1, ...
    `interval_s` sets how often each reports its rate (iperf3's default: 1 s). Setting
    `stop` interrupts them early (their error then says "interrupt")."""
    server_ports = server_ports or [base_port + i for i in range(len(pairs))]
    servers, clients = [], []
    try:
        for i, (_, dst) in enumerate(pairs):
            servers.append(emu.host(dst).popen(
                ["iperf3", "-s", "-1", "-p", str(server_ports[i])], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        for i, (_, dst) in enumerate(pairs):
            _wait_listening(emu, dst, server_ports[i])
        # iperf3 runs whole seconds: `-t 0.5` is 0, which it takes for "forever" (a
        # reviewer's `demo --duration 0.5` waited 30 s, then a traceback)
        amount = (["-n", str(size_bytes)] if size_bytes
                  else ["-t", str(max(1, math.ceil(duration_s)))])
        if interval_s:
            amount += ["-i", f"{interval_s:g}"]
        for i, (src, dst) in enumerate(pairs):
            cport = ["--cport", str(client_ports[i])] if client_ports else []
            clients.append(emu.host(src).popen(
                ["iperf3", "-c", emu.fabric.hosts[dst].ip, "-p", str(server_ports[i]), *amount,
                 *cport, "-J"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        if stop is not None:
            stop.wait(duration_s)
            for client in clients:
                if client.poll() is None:
                    client.send_signal(signal.SIGINT)     # iperf3 still prints its JSON
        results = []
        timeout = duration_s + 30 if not size_bytes else 600
        deadline = time.monotonic() + timeout
        for (src, dst), client in zip(pairs, clients):
            try:
                out, err = client.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                client.kill()
                out, err = client.communicate()
                err = f"did not finish within {timeout:g} s; {err}"
            results.append(_parse_iperf(src, dst, out, err, server_ports[len(results)]))
        return results
    finally:
        for proc in servers + clients:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait_listening(emu: Emulation, host: str, port: int, attempts: int = 50) -> None:
    node = emu.host(host)
    for _ in range(attempts):
        if f":{port} " in node.cmd(f"ss -ltnH 'sport = :{port}'"):
            return
        node.cmd("sleep 0.1")
    raise RuntimeError(f"iperf3 server on {host} port {port} did not start")


def _parse_iperf(src: str, dst: str, out: str, err: str, dst_port: int = 0) -> IperfResult:
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        return IperfResult(src, dst, 0.0, 0, f"iperf3 printed no JSON: {err.strip()[:200]}")
    # A flow that broke off still reports the intervals it ran.
    intervals = tuple((i["sum"]["start"], i["sum"]["end"], i["sum"]["bits_per_second"])
                      for i in data.get("intervals", []))
    if "error" in data:
        return IperfResult(src, dst, 0.0, 0, data["error"], intervals=intervals)
    received = data["end"]["sum_received"]
    connected = data.get("start", {}).get("connected") or [{}]
    return IperfResult(src, dst, received["bits_per_second"], int(received["bytes"]),
                       seconds=float(received.get("seconds", 0.0)),
                       src_port=int(connected[0].get("local_port", 0)), dst_port=dst_port,
                       intervals=intervals)


_PORT_LINE = re.compile(r"port\s+(\d+): rx pkts=\d+, bytes=(\d+)")


def interface_rx_bytes(fabric) -> dict[str, int]:
    """Bytes received so far by every gateway port, by interface name: what really crossed
    each wavelength. Read live from the switches (`ovs-ofctl dump-ports`): the statistics
    in ovsdb refresh only every 5 s, and userspace OVS counts as sent what a shaped link
    then drops, so a receive counter is the truth."""
    counters = {}
    for sw in fabric.switches.values():
        if sw.role != GATEWAY:
            continue
        out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-ports", sw.bridge],
                             capture_output=True, text=True, check=True)
        for port, rx in _PORT_LINE.findall(out.stdout):
            counters[sw.interface(int(port))] = int(rx)
    return counters


def delivered_bytes(fabric, before: dict[str, int], after: dict[str, int]
                    ) -> dict[tuple[str, int], int]:
    """Bytes each wavelength delivered in each direction between two interface_rx_bytes()
    readings, keyed by the (switch, port) the direction leaves from."""
    out = {}
    for link in fabric.wavelengths():
        for src, dst in ((link.a, link.b), (link.b, link.a)):
            intf = fabric.switches[dst.node].interface(dst.port)
            out[(src.node, src.port)] = after.get(intf, 0) - before.get(intf, 0)
    return out
