"""`dcilab demo [FILE]`: the whole thing on one VM, start to finish, in under a minute.

Starts Open vSwitch if needed, the controller and the emulation; pings every host pair;
runs iperf3 concurrently between one host pair of every site pair; prints what each flow
measured on which wavelength; stops and removes everything.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
import sys
import time
from collections import Counter
from pathlib import Path

from ..argtypes import SECONDS, WHOLE_SECONDS
from ..emulation import bfd
from ..emulation.datapath import AUTO, DATAPATHS
from ..emulation.datapath import HELP as DATAPATH_HELP
from ..emulation.network import EmulationError
from ..emulation.ovs import OvsError
from ..emulation.traffic import delivered_bytes, interface_rx_bytes, iperf_concurrent, ping_all
from ..fabric import Fabric, FabricError, load_fabric
from ..fabric.model import scaled_mbps
from ..lab import Lab
from ..metrics.prometheus_server import PrometheusError, start_prometheus, stop_prometheus
from ..resources import DEFAULT_TOPOLOGY, shipped_hint, topology_arg
from .controller import (adaptation_options, adaptation_problem, add_adaptation_arguments,
                         add_steering_arguments, steering_options)
from ..te.attribution import Crossing, MeasuredFlow, attribute, crossing, route_stages
from ..te.paths import PathEngine
from ..te.placement import DEFAULT_MAX_STRETCH, Candidates
from .pins import PinWatcher
from .progress import optical_model
from .stopping import Terminated


# pygnmi's command-line client, beside this Python (the venv's bin, often not on PATH)
PYGNMICLI = Path(sys.executable).parent / "pygnmicli"


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the fabric: ping every pair, iperf3 across every site pair",
                       description="Start Open vSwitch (if needed), the controller and the "
                                   "emulation of FILE; ping every host pair; run iperf3 at once "
                                   "between one host pair of every site pair; print the table; "
                                   "stop everything. Needs root. Exit status 0 only with 0 % "
                                   "ping loss.")
    p.add_argument("file", nargs="?", default=DEFAULT_TOPOLOGY, type=topology_arg,
                   help=f"fabric file, or the name of one shipped with dcilab "
                        f"(default {DEFAULT_TOPOLOGY})")
    p.add_argument("--duration", type=WHOLE_SECONDS, default=5, metavar="S",
                   help="seconds of iperf3 traffic (default 5)")
    p.add_argument("--verbose", action="store_true", help="echo the controller's log")
    p.add_argument("--prometheus", action="store_true",
                   help="also run a local Prometheus (Debian `prometheus`) scraping the "
                        "controller every second with deploy/prometheus/rules.yml; prints "
                        "its URL, and stops it with everything else")
    p.add_argument("--hold", type=SECONDS, default=0.0, metavar="S",
                   help="keep everything running S seconds after the table, to look at the "
                        "metrics, Prometheus or the gRPC API (Ctrl-C ends it early)")
    p.add_argument("--datapath", choices=DATAPATHS, default=AUTO, help=DATAPATH_HELP)
    add_transceiver_arguments(p)
    add_bfd_argument(p)
    add_steering_arguments(p)
    p.set_defaults(run=run)


def add_transceiver_arguments(p) -> None:
    """The emulated transceivers over gNMI, and rate adaptation on them (shared with
    `dcilab lab`)."""
    p.add_argument("--gnmi", action="store_true",
                   help="serve the gateways' ZR transceivers over gNMI (address printed) and "
                        "have the controller subscribe to them")
    p.add_argument("--reconfiguration-s", type=SECONDS, default=None, metavar="S",
                   help="with --gnmi: seconds a transceiver is dark while it changes mode "
                        "(default 68, an assumption: see emulation/optical_state.py)")
    add_adaptation_arguments(p)


def gnmi_problem(args) -> str | None:
    """What is wrong with the transceiver options, if anything."""
    from ..core.adaptation import DEFAULT_MISMATCH_S
    if (args.adapt or args.reconfiguration_s is not None
            or args.mismatch_s != DEFAULT_MISMATCH_S) and not args.gnmi:
        return ("--adapt, --reconfiguration-s and --mismatch-s need --gnmi (the transceivers "
                "are served and read over gNMI)")
    return adaptation_problem(args)


def _bfd_interval(text: str) -> int:
    try:
        ms = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of milliseconds: {text!r}")
    if not 10 <= ms <= 10_000:
        raise argparse.ArgumentTypeError(f"BFD interval {ms} ms is outside 10-10000 ms")
    return ms


def add_bfd_argument(parser) -> None:
    """`--bfd MS` / `--no-bfd`: BFD on every DCI port, on by default (gray failures)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--bfd", type=_bfd_interval, default=bfd.DEFAULT_INTERVAL_MS,
                       metavar="MS",
                       help="BFD interval on every DCI port (default "
                            f"{bfd.DEFAULT_INTERVAL_MS}): a gray failure (carrier up, nothing "
                            "passes) is detected within about 3 intervals")
    group.add_argument("--no-bfd", dest="bfd", action="store_const", const=None,
                       help="no BFD: only carrier loss is detected (heavy injected optical "
                            "loss makes BFD sessions flap, as it would on real links)")


def say(text: str) -> None:
    """A progress line; lost, not fatal, once the terminal is gone (a hangup: the write
    failed with EIO, and the emulation's stop was cut short by it)."""
    try:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)
    except OSError:
        pass


def demo_pairs(fabric: Fabric) -> list[tuple[str, str]]:
    """One (src, dst) host pair per site pair, using each site's hosts in turn."""
    turn = {site.name: itertools.cycle(fabric.hosts_of(site.name)) for site in fabric.sites}
    return [(next(turn[a.name]).name, next(turn[b.name]).name)
            for a, b in itertools.combinations(fabric.sites, 2)]


def run(args) -> int:
    problem = gnmi_problem(args)            # the arguments first: wrong wherever it runs
    if problem:
        print(f"dcilab demo: {problem}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("dcilab demo needs root (Mininet creates namespaces and OVS bridges)",
              file=sys.stderr)
        return 1
    try:
        fabric = load_fabric(args.file, optical_model("demo"))
    except FabricError as exc:
        print(f"{exc}{shipped_hint(args.file)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        with Lab(fabric, Path(args.file), say=say, echo_controller=args.verbose,
                 controller_args=steering_options(args) + adaptation_options(args),
                 datapath=args.datapath, gnmi=args.gnmi,
                 reconfiguration_s=args.reconfiguration_s,
                 bfd_ms=args.bfd) as lab:
            say(f"controller: policy {args.policy}; gRPC API on {lab.controller.grpc_address} "
                f"(try `dcilab links --server {lab.controller.grpc_address}`); "
                f"metrics on {lab.controller.metrics_url}"
                + (f"; transceivers' gNMI on {lab.gnmi} (try `{PYGNMICLI} -t {lab.gnmi} -i -u x "
                   f"-p x -o get -x /terminal-device`)" if lab.gnmi else ""))
            with _prometheus(lab, args.prometheus):
                code = _exercise(lab, fabric, args.duration, args.max_stretch)
                if args.hold > 0:
                    say(f"holding for {args.hold:g} s (Ctrl-C to stop now)")
                    try:       # over early if the controller dies: nothing to hold then
                        lab.controller.proc.wait(timeout=args.hold)
                    except subprocess.TimeoutExpired:
                        pass
                    except Terminated:
                        raise
                    except KeyboardInterrupt:
                        pass
                if lab.controller.proc.poll() is not None:      # said when it happened
                    code = code or 1        # a demo whose controller died did not pass
    except (EmulationError, OvsError, PrometheusError, RuntimeError) as exc:
        print(f"dcilab demo: {exc}", file=sys.stderr)
        return 1
    say(f"done in {time.monotonic() - started:.1f} s; everything stopped and removed")
    return code


@contextlib.contextmanager
def _prometheus(lab: Lab, wanted: bool):
    """A local Prometheus scraping the demo's controller, when asked for."""
    if not wanted:
        yield
        return
    workdir = Path(tempfile.mkdtemp(prefix="dcilab-prometheus-"))
    proc, url = start_prometheus([f"127.0.0.1:{lab.controller.metrics_port}"], workdir)
    lab.emulation.adopt(proc.pid, "prometheus")     # so `dcilab clean` finds it after a crash
    say(f"prometheus on {url} (e.g. {url}/graph?g0.expr=dcilab_link_utilization_ratio)")
    try:
        yield
    finally:
        stop_prometheus(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _exercise(lab: Lab, fabric: Fabric, duration_s: float,
              max_stretch: float = DEFAULT_MAX_STRETCH) -> int:
    n = len(fabric.hosts)
    say(f"pinging all {n * (n - 1)} host pairs")
    pings = ping_all(lab.emulation)
    lost = [p for p in pings if not p.ok]
    say(f"ping: {len(pings) - len(lost)}/{len(pings)} pairs answered, "
        f"{100.0 * len(lost) / max(1, len(pings)):.1f}% loss")
    for p in lost[:10]:
        say(f"  no answer: {p.src} -> {p.dst}")

    pairs = demo_pairs(fabric)
    if not pairs:
        say("one site only: no DCI traffic to measure")
        return 0 if not lost else 1
    say(f"running iperf3 for {duration_s:g} s on {len(pairs)} site pair(s) at once")
    before = interface_rx_bytes(fabric)
    with PinWatcher(lab.controller.grpc_address) as pins:
        results = iperf_concurrent(lab.emulation, pairs, duration_s)
    after = interface_rx_bytes(fabric)
    if pins.failure:
        say(f"  the controller's elephants could not be read ({pins.failure}): the table "
            "attributes every flow from byte counters")
    _print_table(fabric, pairs, results, before, after, max_stretch, pins.pins)
    failed = [r for r in results if r.error]
    for r in failed:
        say(f"  iperf3 {r.src} -> {r.dst} failed: {r.error}")
    return 0 if not lost and not failed else 1


def _print_table(fabric, pairs, results, before, after,
                 max_stretch: float = DEFAULT_MAX_STRETCH, pins: dict | None = None) -> None:
    """One row per flow: the wavelengths it crossed. Where the controller pinned it, as it
    said (`ListElephants`); otherwise read back from the byte counters, less what the
    pinned flows sent."""
    graph = PathEngine(fabric)
    tx = delivered_bytes(fabric, before, after)
    history = [(pins or {}).get((s, r.src_port, d, r.dst_port), [])
               for (s, d), r in zip(pairs, results)]
    pinned = [_crossings(fabric, seen[-1] if seen else None) for seen in history]
    for hops, result in zip(pinned, results):
        for c in hops or ():
            tx[(c.switch, c.port)] = tx.get((c.switch, c.port), 0) - result.bytes
    hashed = [i for i, hops in enumerate(pinned) if hops is None]
    flows = [MeasuredFlow(fabric.hosts[pairs[i][0]].leaf, fabric.hosts[pairs[i][1]].leaf,
                          results[i].bytes) for i in hashed]
    # The ways the controller may pin an elephant to, besides the hashed shortest ones (a
    # new user's table named wavelengths the controller had moved the flows off).
    candidates = Candidates(fabric, max_stretch, engine=graph)
    alternatives = [[route_stages(graph, route.hops) for route in candidates.routes(
        fabric.hosts[pairs[i][0]].site, fabric.hosts[pairs[i][1]].site)] for i in hashed]
    crossings = list(pinned)
    for i, hops in zip(hashed, attribute(graph, flows, tx, alternatives)):
        crossings[i] = hops
    # Where a flow read from counters left one gateway over one line system with any
    # other flow, its counters cannot tell which took which wavelength (a re-tester's
    # table swapped two): marked. Pinned ones count too: what they sent before their pin
    # (hashed, the first polls) stays on other wavelengths (a reviewer's).
    crossers = Counter((c.switch, c.link.line_system) for hops in crossings
                       for c in dict.fromkeys(hops))

    def named(c, counted: bool) -> str:
        return c.link.wavelength + ("?" if counted and crossers[(c.switch, c.link.line_system)] > 1
                                    else "")
    rows = [("site pair", "hosts", "path through gateways", "wavelength", "Mb/s", "% of λ")]
    for (src, dst), result, hops, pin, seen in zip(pairs, results, crossings, pinned, history):
        gateways: list[str] = []
        for c in hops:
            for node in (c.switch, c.link.other(c.switch).node):
                if not gateways or gateways[-1] != node:
                    gateways.append(node)
        slowest = min((c.link.rate_gbps for c in hops), default=0)
        mbps = result.bits_per_second / 1e6
        pct = 100 * mbps / scaled_mbps(fabric, slowest) if slowest else 0.0
        rows.append((f"{fabric.hosts[src].site} -> {fabric.hosts[dst].site}", f"{src} > {dst}",
                     " > ".join(gateways), ", ".join(named(c, pin is None) for c in hops)
                     + _moved_from(seen),
                     f"{mbps:.1f}", f"{pct:.1f}%"))
    print()
    print_table(rows, right=(4, 5))
    if any(pin is None and any(crossers[(c.switch, c.link.line_system)] > 1 for c in hops)
           for hops, pin in zip(crossings, pinned)):
        print("?: read from byte counters, and other flows crossed that line system from "
              "that gateway: the counters cannot tell which took which wavelength (flows on "
              "one wavelength each measure their share of it)")
    if any(pin is not None for pin in pinned):
        print("(flows the controller named are shown where it carried them last, and where "
              "they were moved from; under loadaware, before its pin, for the first polls, a "
              "flow is hashed like any other: `dcilab elephants` while traffic runs)")
    print()


def _moved_from(seen: list) -> str:
    """ " (moved from w2, w3)": the wavelengths of a flow's earlier pins, oldest first."""
    if len(seen) < 2:
        return ""
    return " (moved from " + "; ".join(", ".join(name for name, _ in path)
                                       for path in seen[:-1]) + ")"


def _crossings(fabric, pin) -> list[Crossing] | None:
    """A pinned path as the crossings it makes; None when the flow was not pinned."""
    return None if pin is None else [crossing(fabric, name, sender) for name, sender in pin]


def print_table(rows: list[tuple], right: tuple[int, ...] = ()) -> None:
    """Print rows as aligned columns; the first row is the header."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).rjust(w) if i in right else str(cell).ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
