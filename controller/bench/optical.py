"""`dcilab bench --optical [FILE]`: rate adaptation against fail-and-restore, on the emulation.

One scripted degradation, run twice in one command: a span of one line system loses
light on a ramp (over gNMI, as `dcilab fault degrade` does), under constant UDP traffic
between the two sites and a bandwidth reservation. Once the controller runs with `--adapt`
(the wavelengths step down a mode, drained first); once without (the wavelengths run on
until the FEC gives up and they go dark, then restoration moves traffic to the other line
system). Measured per run: packets lost and seconds with loss (iperf3's receivers), data
delivered, whether the reservation kept its bandwidth, and the mode timeline; a PNG plots
GSNR, margin, mode and throughput over time, both runs.

The scenario (built in; FILE replaces its fabric): two sites joined by line system `a`,
two 400ZR+ wavelengths over 5 spans (400G with ~2.6 dB margin), and a long line system `b`
(one wavelength, 200G). The UDP load fits `a` at 300G per wavelength but not `b` alone.
Span 1 of `a` ramps to `--extra-loss-db` (default 11 dB: 400G goes dark, 300G keeps >1 dB)
over `--ramp-s`, then holds. Everything is scaled down for a shared 2-core machine; the
reconfiguration time is `--reconfiguration-s` (default 3 s, not the ~minute of real
modules, so the run stays short; see README "Rate adaptation").
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from argparse import ArgumentTypeError
from dataclasses import dataclass, field
from pathlib import Path

from ..argtypes import POSITIVE_SECONDS, SECONDS, checked, file_path
from ..fabric import FabricError, load_fabric
from ..files import unwritable
from ..lab import Lab
from ..resources import shipped_hint, topology_arg
from . import BenchError

SCENARIO = """\
# The optical bench's scenario: line system a degrades; b is long and thin.
name: optical-bench
scale: 2.5e-5          # 400 Gb/s -> 10 Mb/s
sites:
  - {name: dc1, spines: 1, leaves: 1, hosts_per_leaf: 4, gateways: 1, fabric_gbps: 1600}
  - {name: dc2, spines: 1, leaves: 1, hosts_per_leaf: 4, gateways: 1, fabric_gbps: 1600}
dci_links:
  - {name: a, a: dc1, b: dc2, fiber_km: 400, module: 400ZR+, wavelengths: 2}
  - {name: b, a: dc1, b: dc2, fiber_km: 1600, module: 400ZR+, wavelengths: 1}
"""
SAMPLE_S = 0.5
WARM_UP_S = 5.0          # traffic runs this long before the degradation starts
UDP_PORT = 5401


EXTRA_LOSS_DB = checked(float, lambda v: 0 <= v <= 40, "a number", "must be 0 to 40 dB")

def add_arguments(parser) -> None:
    g = parser.add_argument_group("optical bench (rate adaptation)")
    g.add_argument("--optical", nargs="?", const="scenario", metavar="FILE",
                   help="rate adaptation against fail-and-restore on the emulation (root); "
                        "FILE replaces the built-in two-line-system scenario (its first line "
                        "system degrades)")
    g.add_argument("--extra-loss-db", type=EXTRA_LOSS_DB, default=11.0, metavar="DB",
                   help="span loss the ramp ends at (default 11)")
    g.add_argument("--ramp-s", type=POSITIVE_SECONDS, default=30.0, metavar="S",
                   help="seconds the ramp takes (default 30)")
    g.add_argument("--hold-degraded-s", type=SECONDS, default=60.0, metavar="S",
                   help="seconds the line stays degraded after the ramp (default 60)")
    g.add_argument("--reconfiguration-s", type=SECONDS, default=3.0, metavar="S",
                   help="seconds a transceiver is dark while it changes mode (default 3; real "
                        "modules take about a minute, see README)")
    g.add_argument("--load", type=checked(float, lambda v: 0 < v <= 1, "a number",
                                            "must be over 0 and at most 1"), default=0.4, metavar="F",
                   help="UDP load, as a share of the degrading line system's capacity "
                        "(default 0.4: fits it at 300G even with three of the four flows on "
                        "one wavelength, not the other line system alone)")
    g.add_argument("--png", type=file_path, default=Path("optical-bench.png"), metavar="PATH",
                   help="where to write the plot (default optical-bench.png)")


@dataclass
class Run:
    adapt: bool
    seconds: float = 0.0
    sent_packets: int = 0
    lost_packets: int = 0
    seconds_with_loss: int = 0
    delivered_bytes: int = 0
    reservation_state: str = ""
    mode_changes: list = field(default_factory=list)     # (t, wavelength, mode)
    samples: list = field(default_factory=list)          # (t, wavelength, gsnr, margin, mode rate)
    throughput: list = field(default_factory=list)       # (t, delivered Mb/s scaled-up Gb/s)
    loss_windows: list = field(default_factory=list)     # t of seconds with loss
    loss_shares: dict = field(default_factory=dict)      # t of a second with loss: lost/sent
    dark_windows: list = field(default_factory=list)     # (t0, t1) a wavelength of the line was dark


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class RunFailed(RuntimeError):
    """A run's gNMI stream or iperf3 traffic did not start or report: said in one line."""


def run(args) -> int:
    from ..emulation.optical_faults import degrade, restore
    from ..gnmi import TransceiverClient

    problem = unwritable(args.png, "--png", png=True)
    if problem:          # said now, not after two runs of minutes (an outside tester's)
        raise BenchError(f"dcilab bench --optical: {problem}")
    with tempfile.TemporaryDirectory(prefix="dcilab-optical-") as tmp:
        if args.optical == "scenario":
            path = Path(tmp) / "optical-bench.yaml"
            path.write_text(SCENARIO)
        else:
            try:
                path = topology_arg(args.optical)
            except ArgumentTypeError as exc:
                raise BenchError(f"dcilab bench --optical: {exc}") from None
        try:
            fabric = load_fabric(path)
        except FabricError as exc:
            raise BenchError(f"{exc}{shipped_hint(path)}")
        line = next((l.line_system for l in fabric.wavelengths() if l.line_system), None)
        if line is None:
            raise BenchError(f"dcilab bench --optical: {path} has no DCI line system")
        waves = [l for l in fabric.wavelengths() if l.line_system == line]
        site_a, site_b = waves[0].site_a, waves[0].site_b
        src = sorted(h for h, x in fabric.hosts.items() if x.site == site_a)
        dst = sorted(h for h, x in fabric.hosts.items() if x.site == site_b)
        pairs = list(zip(src, dst))[:4]
        if len(pairs) < 2:
            raise BenchError("dcilab bench --optical: the two sites need at least two hosts each")
        offered_gbps = args.load * sum(l.rate_gbps for l in waves)
        catalog = fabric.catalog
        duration = WARM_UP_S + args.ramp_s + args.hold_degraded_s
        runs = []
        for adapt in (True, False):
            _say(f"run {'with' if adapt else 'without'} rate adaptation: {line} span 1 to "
                 f"+{args.extra_loss_db:g} dB over {args.ramp_s:g} s, {len(pairs)} UDP flows of "
                 f"{offered_gbps / len(pairs):g} Gb/s (real), {duration:g} s")
            extra = ["--adapt", "--hold-s", "30", "--drain-s", "1"] if adapt else []
            with Lab(fabric, path, say=_say, gnmi=True, controller_args=extra,
                     reconfiguration_s=args.reconfiguration_s) as lab:
                client = TransceiverClient(lab.gnmi).start()
                try:
                    result = _one_run(lab, fabric, client, catalog, line, waves, pairs,
                                      offered_gbps, duration, adapt, args, degrade, restore)
                except RunFailed as exc:           # said, not a traceback
                    raise BenchError(f"dcilab bench --optical: {exc}", 1)
                finally:
                    client.stop()
            runs.append(result)
            _say(f"  lost {result.lost_packets} of {result.sent_packets} packets, "
                 f"{result.seconds_with_loss} s with loss, delivered "
                 f"{result.delivered_bytes / 1e6:.1f} MB (scaled), reservation "
                 f"{result.reservation_state}, mode changes {mode_changes(result.mode_changes)}")
        report = _report(runs, args, line, offered_gbps, fabric.scale)
        try:
            _plot(runs, args.png, line)
            report["png"] = str(args.png)
        except OSError as exc:              # taken away since: the figures still print
            report["png_error"] = f"cannot write {args.png}: {exc.strerror or exc}"
            _say(report["png_error"])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 2 if "png_error" in report else 0      # as the fault bench's plot


def _one_run(lab, fabric, client, catalog, line, waves, pairs, offered_gbps, duration, adapt,
             args, degrade, restore) -> Run:
    from ..api.client import Client, state_name
    from ..gnmi.client import wait_until

    result = Run(adapt)
    names = [w.wavelength for w in waves]
    if not wait_until(lambda: all(len(client.wavelength(n)) == 2 for n in names), 20):
        raise RunFailed("the transceivers' gNMI stream did not start")
    api = Client(f"127.0.0.1:{lab.controller.grpc_port}")
    rid = api.reserve(pairs[-1][1], pairs[-1][0], 0.1 * offered_gbps).reservation_id
    stop = threading.Event()
    start = time.monotonic()
    last_mode: dict[str, str] = {}

    def sample():
        while not stop.wait(SAMPLE_S):
            t = time.monotonic() - start
            for name in names:
                ends = client.wavelength(name)
                osnr = [e.osnr_db for e in ends if e.osnr_db is not None]
                modes = {client.mode_name(e.mode_id) for e in ends}
                mode = next(iter(modes)) if len(modes) == 1 and None not in modes else None
                up = len(ends) == 2 and all(e.link_up for e in ends)
                gsnr = min((g for g in map(client.gsnr_db, ends) if g is not None), default=None)
                margin = rate = None
                if mode and osnr:
                    m = catalog.module(mode[0]).mode(mode[1])
                    margin, rate = min(osnr) - m.required_osnr_db, m.rate_gbps
                result.samples.append((t, name, gsnr, margin, rate if up else 0, up))
                label = mode[1] if mode else "changing"
                if last_mode.get(name) != label:
                    last_mode[name] = label
                    result.mode_changes.append((round(t, 1), name, label))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    emu = lab.emulation
    rate_mbps = offered_gbps / len(pairs) * 1e3 * fabric.scale
    servers, clients = [], []
    try:
        for i, (_, d) in enumerate(pairs):
            servers.append(emu.host(d).popen(["iperf3", "-s", "-1", "-J", "-p", str(UDP_PORT + i)],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)
        for i, (s, d) in enumerate(pairs):
            clients.append(emu.host(s).popen(
                ["iperf3", "-u", "-c", fabric.hosts[d].ip, "-p", str(UDP_PORT + i), "-b",
                 f"{rate_mbps:.3f}M", "-l", "1000", "-t", f"{duration:g}", "-J",
                 "--get-server-output"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True))
        time.sleep(WARM_UP_S - 1.0)
        degrade(line, span=1, extra_loss_db=args.extra_loss_db, ramp_s=args.ramp_s,
                address=lab.gnmi)
        outputs = []
        for (s, d), c in zip(pairs, clients):
            try:
                outputs.append(c.communicate(timeout=duration + 60)[0])
            except subprocess.TimeoutExpired:
                raise RunFailed(f"the iperf3 flow {s} -> {d} had not ended {duration + 60:g} s "
                                   f"after the run's end was due (its control connection "
                                   f"lost?)") from None
    finally:
        stop.set()
        for proc in servers + clients:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    restore(line, address=lab.gnmi)
    result.seconds = duration
    per_second: dict[int, list] = {}      # bytes, lost, packets, shortest interval s
    for out in outputs:
        try:
            server = json.loads(out)["server_output_json"]
        except (json.JSONDecodeError, KeyError):
            raise RunFailed(f"iperf3 gave no server report: {out[-300:]}") from None
        for interval in server["intervals"]:
            s = interval["sum"]
            second = int(round(s["start"]))
            slot = per_second.setdefault(second, [0, 0, 0, 1.0])
            slot[0] += int(s["bytes"])
            slot[1] += int(s.get("lost_packets", 0))
            slot[2] += int(s.get("packets", 0))
            slot[3] = min(slot[3], float(s.get("seconds", 1.0)))
    for second in sorted(per_second):
        got, lost, packets, seconds = per_second[second]
        result.delivered_bytes += got
        result.lost_packets += max(0, lost)
        result.sent_packets += packets          # iperf3 counts lost ones among its packets
        if seconds < 0.5:
            continue                # the server's last interval, cut short: a few packets
        if lost > 0:
            result.seconds_with_loss += 1
            result.loss_windows.append(second + 1.0)      # iperf3 started ~1 s after t=0
            result.loss_shares[second + 1.0] = lost / max(1, packets)
        result.throughput.append((second + 1.0, got * 8 / 1e9 / fabric.scale))
    result.reservation_state = state_name(api.get(rid))
    api.close()
    # when a wavelength of the line was out of use (dark, or changing mode)
    dark_since: dict[str, float] = {}
    for t, name, _, _, _, up in result.samples:
        if not up and name not in dark_since:
            dark_since[name] = t
        elif up and name in dark_since:
            result.dark_windows.append((dark_since.pop(name), t))
    result.dark_windows += [(t0, duration + 1) for t0 in dark_since.values()]
    return result


def _outside(t: float, windows: list[tuple[float, float]], slack: float = 2.0) -> bool:
    return all(not (t0 - slack <= t <= t1 + slack) for t0, t1 in windows)


def mode_changes(timeline: list[tuple[float, str, str]]) -> int:
    """How many times a wavelength went from one mode to another, in a timeline of
    (t, wavelength, mode or "changing") that starts with each wavelength's first mode."""
    modes: dict[str, list[str]] = {}
    for _, wavelength, mode in timeline:
        seen = modes.setdefault(wavelength, [])
        if mode != "changing" and (not seen or seen[-1] != mode):
            seen.append(mode)
    return sum(len(seen) - 1 for seen in modes.values())


def _report(runs: list[Run], args, line: str, offered_gbps: float, scale: float) -> dict:
    out = {"line_system": line, "extra_loss_db": args.extra_loss_db, "ramp_s": args.ramp_s,
           "hold_degraded_s": args.hold_degraded_s,
           "reconfiguration_s": args.reconfiguration_s, "offered_gbps_real": offered_gbps,
           "scale": scale, "runs": {}}
    for r in runs:
        flaps = {}
        for _, name, mode in r.mode_changes:
            flaps.setdefault(name, []).append(mode)
        out["runs"]["adapt" if r.adapt else "fail_and_restore"] = {
            "packets_sent": r.sent_packets, "packets_lost": r.lost_packets,
            "seconds_with_loss": r.seconds_with_loss,
            # from the degradation on (the first seconds lose a few packets to ARP and
            # the first placement, in both runs alike)
            "seconds_with_loss_outside_reconfiguration": sum(
                1 for t in r.loss_windows if t >= WARM_UP_S and _outside(t, r.dark_windows)),
            "delivered_bytes_scaled": r.delivered_bytes,
            "delivered_bytes_real": r.delivered_bytes / scale,
            "reservation_state": r.reservation_state,
            "mode_timeline": [{"t_s": t, "wavelength": n, "mode": m} for t, n, m in r.mode_changes],
            "modes_per_wavelength": flaps,
        }
    a, f = out["runs"]["adapt"], out["runs"]["fail_and_restore"]
    out["more_data_with_adaptation"] = (a["delivered_bytes_scaled"] / f["delivered_bytes_scaled"] - 1
                                        if f["delivered_bytes_scaled"] else None)
    return out


def _print(report: dict) -> None:
    print(f"line system {report['line_system']}: span 1 to +{report['extra_loss_db']:g} dB over "
          f"{report['ramp_s']:g} s, held {report['hold_degraded_s']:g} s; "
          f"reconfiguration {report['reconfiguration_s']:g} s; offered "
          f"{report['offered_gbps_real']:g} Gb/s (real)")
    print(f"{'run':18} {'sent':>8} {'lost':>8} {'s w/ loss':>10} {'outside reconf':>15} "
          f"{'delivered MB':>13} {'reservation':>12}")
    for name, r in report["runs"].items():
        print(f"{name:18} {r['packets_sent']:8d} {r['packets_lost']:8d} "
              f"{r['seconds_with_loss']:10d} {r['seconds_with_loss_outside_reconfiguration']:15d} "
              f"{r['delivered_bytes_scaled'] / 1e6:13.2f} {r['reservation_state']:>12}")
    for name, r in report["runs"].items():
        print(f"{name} mode timeline: " + "; ".join(
            f"{m['t_s']:g} s {m['wavelength']} {m['mode']}" for m in r["mode_timeline"]))
    more = report["more_data_with_adaptation"]
    print(f"data delivered with adaptation: {more:+.0%} against fail-and-restore"
          if more is not None else "fail-and-restore delivered nothing")
    print(f"plot: {report['png']}" if "png" in report else report["png_error"])


def _plot(runs: list[Run], png: Path, line: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 2, figsize=(13, 10), sharex=True)
    for col, r in enumerate(runs):
        title = "with rate adaptation" if r.adapt else "fail and restore"
        names = sorted({s[1] for s in r.samples})
        for name in names:
            pts = [s for s in r.samples if s[1] == name]
            t = [p[0] for p in pts]
            axes[0][col].plot(t, [p[2] if p[2] is not None else float("nan") for p in pts], label=name)
            axes[1][col].plot(t, [p[3] if p[3] is not None else float("nan") for p in pts], label=name)
            axes[2][col].step(t, [p[4] or 0 for p in pts], where="post", label=name)
        axes[1][col].axhline(1.0, color="grey", ls="--", lw=0.8)
        axes[1][col].axhline(0.0, color="red", ls=":", lw=0.8)
        axes[3][col].step([p[0] for p in r.throughput], [p[1] for p in r.throughput], where="post",
                          color="black")
        for t0, t1 in r.dark_windows:
            for ax in axes[:, col]:
                ax.axvspan(t0, t1, color="orange", alpha=0.15)
        axes[0][col].set_title(title)
        axes[0][col].set_ylabel("GSNR dB (signal bw)")
        axes[1][col].set_ylabel("margin dB")
        axes[2][col].set_ylabel("mode Gb/s")
        axes[3][col].set_ylabel("delivered Gb/s (real)")
        axes[3][col].set_xlabel("s")
        axes[0][col].legend(fontsize=7)
    fig.suptitle(f"line system {line}: span loss ramp (orange: a wavelength out of use)")
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)

