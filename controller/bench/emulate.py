"""`dcilab bench --emulate FILE`: the placement policies side by side on the real emulation.

For each policy, one after another in one run: start the controller (with that policy)
and the emulated fabric; start the same set of elephant TCP flows at once between the two
sites joined directly by the most usable wavelengths (those of line systems within the
max stretch, which placement may use), more flows than that; each sends the same number
of bytes, as one step of a collective. Measured: each flow's goodput, the collective's
completion time (when its last flow ends), the aggregate goodput and each wavelength's
utilization.

Aggregate goodput is the sum of the flows' goodput while all of them run, from
`SETTLE_S` after the start to when the first one ends: that is what placement decides.
(An elephant is known at the third 1 s poll, two polls with a rate after the first
reading; its pins then take effect and TCP settles on the new path within about a
second.) The emulated optimum comes from the same run: one flow alone on one wavelength
gives the goodput g a wavelength delivers; F flows over the W usable wavelengths cannot
together exceed min(F, W) x g, and F flows of S bytes cannot all finish before
F*S / (W*g).

Scale: the fabric's `scale` is lowered (or set by --scale) so that all flows together
stay well within what userspace OVS forwards on 2 cores, and the figures measure
placement rather than the CPU.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from ..argtypes import checked
from ..emulation.datapath import AUTO, DATAPATHS
from ..emulation.datapath import HELP as DATAPATH_HELP
from ..emulation.network import EmulationError
from ..emulation.traffic import delivered_bytes, interface_rx_bytes, iperf_concurrent
from ..fabric import Fabric, FabricError, load_fabric, parse_fabric
from ..fabric.model import scaled_mbps
from ..fabric.schema import MIN_SCALE
from ..lab import Lab, rescaled
from ..plan.fabric_out import CPU_BUDGET_MBPS
from ..resources import shipped_hint, topology_arg
from ..te.placement import POLICIES, Candidates
from . import BenchError

# Below this many scaled Mb/s in all, userspace OVS on 2 cores is not the bottleneck.
SETTLE_S = 5.0


FLOWS = checked(int, lambda v: 0 <= v <= 1000, "a whole number", "must be 0 (the default) to 1000")
MEGABYTES = checked(float, lambda v: 0 <= v <= 100_000, "a number",
                    "must be 0 (the default) to 100000")
SCALE = checked(float, lambda v: v == 0 or MIN_SCALE <= v <= 1, "a number",
                f"must be 0 (the default) or {MIN_SCALE:g} to 1")

def add_arguments(parser) -> None:
    g = parser.add_argument_group("emulated bench")
    g.add_argument("--emulate", metavar="FILE", type=topology_arg,
                   help="compare the policies on the emulation of FILE (root) instead of the "
                        "flow-level scenarios")
    g.add_argument("--datapath", choices=DATAPATHS, default=AUTO, help=DATAPATH_HELP)
    g.add_argument("--flows", type=FLOWS, default=0, metavar="N",
                   help="elephant flows (default: the site pair's wavelengths + 2)")
    g.add_argument("--megabytes", type=MEGABYTES, default=0.0, metavar="MB",
                   help="bytes each flow sends (default: ~8 s alone on a wavelength)")
    g.add_argument("--scale", type=SCALE, default=0.0, metavar="X",
                   help=f"emulation scale (default: the largest keeping all wavelengths of the "
                        f"pair under {CPU_BUDGET_MBPS:g} Mb/s together)")


def _say(text: str) -> None:
    print(f"[bench --emulate] {text}", file=sys.stderr, flush=True)


def _busiest_pair(fabric: Fabric, max_stretch: float):
    """The site pair joined directly by the most wavelengths that placement may use (on
    line systems within `max_stretch` of the shortest latency), and those wavelengths."""
    candidates = Candidates(fabric, max_stretch)
    pairs: dict[tuple[str, str], list] = {}
    for link in fabric.wavelengths():
        pairs.setdefault((link.site_a, link.site_b), [])
    for a, b in pairs:
        direct = [r for r in candidates.routes(a, b) if len(r.hops) == 1]
        pairs[(a, b)] = [fabric.link(name) for r in direct for name, _ in r.hops[0].wavelengths]
    return max(pairs.items(), key=lambda kv: (len(kv[1]), kv[0]))


def run(args) -> int:
    try:
        return _run(args)
    except EmulationError as exc:       # another emulation running, a failed calibration
        raise BenchError(f"dcilab bench --emulate: {exc}")


def _run(args) -> int:
    if os.geteuid() != 0:
        raise BenchError("dcilab bench --emulate needs root (Mininet creates namespaces and OVS "
                         "bridges)", 1)
    try:
        original = load_fabric(args.emulate)
    except FabricError as exc:
        raise BenchError(f"{exc}{shipped_hint(args.emulate)}")
    (site_a, site_b), waves = _busiest_pair(original, args.max_stretch)
    if len(waves) < 1:
        raise BenchError("dcilab bench --emulate: the fabric has no DCI link")
    w = len(waves)
    rate_gbps = min(l.rate_gbps for l in waves)
    scale = args.scale or min(original.scale, CPU_BUDGET_MBPS / (w * rate_gbps * 1000))
    flows_n = args.flows or w + 2
    with tempfile.TemporaryDirectory(prefix="dcilab-bench-emulate-") as tmp:
        topology = rescaled(Path(args.emulate), scale, Path(tmp))
        try:
            fabric = parse_fabric(topology.read_text(), str(topology))
        except FabricError as exc:     # --scale out of a fabric's range: a traceback was
            raise BenchError(f"dcilab bench --emulate --scale {scale:g}: {exc}") from None
        wave_mbps = scaled_mbps(fabric, rate_gbps)
        size = int(args.megabytes * 1e6) or int(wave_mbps * 1e6 / 8 * 8)   # ~8 s alone
        hosts_a, hosts_b = fabric.hosts_of(site_a), fabric.hosts_of(site_b)
        pairs = [(hosts_a[i % len(hosts_a)].name, hosts_b[i % len(hosts_b)].name)
                 for i in range(flows_n)]
        ports = [41000 + i for i in range(flows_n)]
        _say(f"{fabric.name} at scale {scale:g}: {flows_n} flows of {size / 1e6:.1f} MB from "
             f"{site_a} to {site_b} over {w} wavelengths of {wave_mbps:g} Mb/s")
        report = {"fabric": fabric.name, "scale": scale, "site_pair": [site_a, site_b],
                  "wavelengths": w, "wavelength_mbps": wave_mbps, "flows": flows_n,
                  "bytes_per_flow": size, "policies": {}}
        for policy in POLICIES:
            _say(f"policy {policy}: starting controller and emulation")
            with Lab(fabric, topology, say=lambda m: None, datapath=args.datapath,
                     controller_args=["--policy", policy,
                                      "--max-stretch", str(args.max_stretch)]) as lab:
                if "optimum" not in report:
                    report["optimum"] = _calibrate(lab, pairs[0], size, flows_n, w)
                    _say(f"one flow alone: {report['optimum']['single_flow_mbps']:.2f} Mb/s")
                _say(f"policy {policy}: {flows_n} flows at once")
                report["policies"][policy] = _measure(lab, fabric, pairs, ports, size, waves,
                                                      site_a)
        opt = report["optimum"]
        for result in report["policies"].values():
            result["ratio_to_optimum"] = round(result["aggregate_mbps"] / opt["aggregate_mbps"], 3)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def _calibrate(lab: Lab, pair, size: int, flows: int, w: int) -> dict:
    [alone] = iperf_concurrent(lab.emulation, [pair], size_bytes=size, base_port=5290)
    g = alone.bits_per_second / 1e6
    if alone.error or g <= 0:
        raise EmulationError(f"the calibration flow ({pair[0]} -> {pair[1]} alone) failed: "
                             f"{alone.error or 'no bytes arrived'}; nothing to compare with")
    return {"single_flow_mbps": round(g, 3), "aggregate_mbps": round(min(flows, w) * g, 3),
            "completion_s": round(flows * size * 8 / 1e6 / (w * g), 3)}


def _measure(lab: Lab, fabric: Fabric, pairs, ports, size: int, waves, source: str) -> dict:
    """The flows of `pairs` at once from site `source`; each wavelength's utilization in
    their direction (a line system may be written either way round: a reviewer's, written
    from the far site, showed only the ACKs)."""
    before = interface_rx_bytes(fabric)
    started = time.monotonic()
    results = iperf_concurrent(lab.emulation, pairs, size_bytes=size, client_ports=ports)
    elapsed = time.monotonic() - started
    delivered = delivered_bytes(fabric, before, interface_rx_bytes(fabric))
    failed = [r.error for r in results if r.error]
    completion = max(r.seconds for r in results)
    # the flows that ran (a failed one's 0 s would empty every policy's window)
    window = (SETTLE_S, min((r.seconds for r in results if not r.error), default=0.0))
    aggregate = _window_mbps(results, *window)
    if window[1] < window[0] + 1 and not failed:
        # every flow's settled part is empty: a rate of 0 would read as a policy's failure;
        # their own goodput, as the receivers counted it (the senders' intervals end
        # when the last bytes are in the socket buffer, and read high)
        failed.append(f"the first flow ended after {window[1]:.1f} s, before the measured "
                      f"window ({SETTLE_S:g} s from the start, to settle); the aggregate is "
                      f"the flows' own goodput: give each flow more --megabytes")
        aggregate = sum(r.bits_per_second for r in results) / 1e6
    utilization = wavelength_utilization(fabric, waves, delivered, elapsed, source)
    return {"aggregate_mbps": round(aggregate, 3),
            "window_s": [round(w, 2) for w in window],
            "completion_s": round(completion, 3),
            "flow_mbps": [round(r.bits_per_second / 1e6, 3) for r in results],
            "wavelength_utilization": utilization, "errors": failed}


def wavelength_utilization(fabric: Fabric, waves, delivered: dict, seconds: float,
                           source: str) -> dict[str, float]:
    """Each wavelength's utilization over `seconds` in the direction leaving site `source`
    (`delivered`: traffic.delivered_bytes, keyed by the end a direction leaves from)."""
    out = {}
    for link in waves:
        end = link.a if fabric.switches[link.a.node].site == source else link.b
        mbps = delivered[(end.node, end.port)] * 8 / 1e6 / seconds
        out[link.name] = round(mbps / scaled_mbps(fabric, link.rate_gbps), 3)
    return out


def _window_mbps(results, start: float, end: float) -> float:
    """Sum over flows of each flow's mean goodput in [start, end] (its 1 s intervals)."""
    total = 0.0
    for r in results:
        inside = [(e - s, bps) for s, e, bps in r.intervals if s >= start and e <= end + 1e-6]
        seconds = sum(d for d, _ in inside)
        total += sum(d * bps for d, bps in inside) / seconds if seconds else 0.0
    return total / 1e6


def _print(report: dict) -> None:
    opt = report["optimum"]
    print(f"emulated bench: {report['fabric']} at scale {report['scale']:g}, "
          f"{report['flows']} flows x {report['bytes_per_flow'] / 1e6:.1f} MB "
          f"{report['site_pair'][0]} -> {report['site_pair'][1]} over {report['wavelengths']} "
          f"wavelengths of {report['wavelength_mbps']:g} Mb/s")
    print(f"optimum: aggregate {opt['aggregate_mbps']:.2f} Mb/s (one flow alone: "
          f"{opt['single_flow_mbps']:.2f} Mb/s), completion >= {opt['completion_s']:.2f} s\n")
    print(f"  {'policy':<10} {'aggregate Mb/s':>15} {'of optimum':>11} {'completion s':>13}  "
          f"wavelength utilization (whole run)")
    for name, r in report["policies"].items():
        utils = " ".join(f"{u:.2f}" for u in r["wavelength_utilization"].values())
        print(f"  {name:<10} {r['aggregate_mbps']:>15.2f} {r['ratio_to_optimum']:>10.1%} "
              f"{r['completion_s']:>13.2f}  {utils}")
        for error in r["errors"]:
            print(f"    error: {error}")
