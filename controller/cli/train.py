"""`dcilab train FABRIC --job JOB`: a training job's steps on the emulation, per policy."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from ..argtypes import file_path
from ..bench.training import (CONGESTION, PACE_OF_SHARE, PACINGS, QUEUE_PACKETS, SYNC_SECONDS,
                              LabOptions, emulate_or_explain, read_job)
from ..files import unwritable
from ..plan import JobError
from .failure import fail
from ..resources import bundled_jobs, job_arg, shipped_hint, topology_arg
from ..te.placement import POLICIES
from .controller import adaptation_options
from .demo import add_bfd_argument, add_transceiver_arguments, gnmi_problem
from .plan import JOB_FILE


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="run a training job's sync traffic on the emulation (root)",
        description="Start the controller and the emulation of FABRIC (e.g. from `dcilab plan "
                    "--fabric-out`) and run the job's steps: a compute phase, then its sync "
                    "split over flows_per_pair TCP flows per loaded direction of each site "
                    "pair, sent from the hosts; the next step waits for every flow. Measures "
                    "each step's time, sync time, exposed part and compute utilization, and "
                    "compares them with the planner's prediction on the fabric's capacities. "
                    "Bytes follow the fabric's scale, and time runs --stretch times slower "
                    "than the job's so that syncs last seconds. Run emulations one at a time.")
    p.add_argument("fabric", type=topology_arg,
                   help="fabric file (YAML) with the job's sites (others may be there "
                        "too), or a shipped one's name")
    p.add_argument("--job", required=True, type=job_arg,
                   help=f"job file (YAML), or the name of one shipped with dcilab "
                        f"({', '.join(bundled_jobs())})")
    p.add_argument("--steps", type=int, default=3, metavar="N", help="sync steps per policy (default 3)")
    p.add_argument("--policy", choices=[*POLICIES, "all"], default="loadaware",
                   help="placement policy of the controller, or all of them one after another "
                        "(default loadaware)")
    p.add_argument("--flows-per-pair", type=int, default=None, metavar="N",
                   help="parallel flows per loaded direction (default: the job's, 8)")
    p.add_argument("--stretch", type=float, default=None, metavar="X",
                   help=f"time runs X times slower than the job's (default: the predicted "
                        f"sync lasts {SYNC_SECONDS:g} s)")
    p.add_argument("--queue-packets", type=int, default=QUEUE_PACKETS, metavar="N",
                   help=f"queue of each emulated wavelength, in packets (default "
                        f"{QUEUE_PACKETS}: milliseconds, as on a line card, rather than the "
                        f"seconds a 1000-packet queue holds at a few Mb/s; 0 leaves it)")
    p.add_argument("--congestion-control", default=CONGESTION, metavar="NAME",
                   help="the sync flows' TCP congestion control, one of the kernel's "
                        "(net.ipv4.tcp_available_congestion_control; default: "
                        f"{CONGESTION or 'the kernel default'})")
    p.add_argument("--pacing", choices=PACINGS, default=PACINGS[0],
                   help=f"share (default): every sync flow's sender is paced at "
                        f"{PACE_OF_SHARE * 100:.0f}%% of its share of its site pair's capacity, as "
                        f"the NIC holds a RoCE queue pair at its rate on a lossless fabric; "
                        f"none: TCP alone, which loses packets in the wavelengths' queues "
                        f"and waits out timeouts")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE.png", type=file_path,
                   help="draw each policy's step times against the prediction")
    # As `dcilab lab`: BFD finds a gray failure injected meanwhile (without it, flows
    # hashed onto the wavelength were blackholed and the run stopped), and the
    # transceivers over gNMI let `dcilab fault degrade` and rate adaptation act on it.
    add_bfd_argument(p)
    add_transceiver_arguments(p)
    p.set_defaults(run=run)


def available_congestion() -> list[str]:
    """The TCP congestion controls this kernel offers (every namespace shares them)."""
    try:
        return Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()
    except OSError:
        return []


def _say(text: str) -> None:
    print(f"[train] {text}", file=sys.stderr, flush=True)


def run(args) -> int:
    flows, stretch = args.flows_per_pair, args.stretch
    # each named with what it got (one sentence for all four left the user to guess)
    bad = []
    if args.steps < 1:
        bad.append(f"--steps must be >= 1, got {args.steps}")
    if args.queue_packets < 0:
        bad.append(f"--queue-packets must be >= 0 (0 leaves the queues as they are), got "
                   f"{args.queue_packets}")
    if flows is not None and flows < 1:
        bad.append(f"--flows-per-pair must be >= 1, got {flows}")
    if stretch is not None and not 0 < stretch < math.inf:
        bad.append(f"--stretch must be a finite number > 0, got {stretch:g}")
    bad += [problem for problem in (gnmi_problem(args), unwritable(
        args.plot, "--plot", args.job, png=True, source_is=JOB_FILE)) if problem]
    if bad:                            # said now, not after minutes of emulation
        return fail(args, f"dcilab train: {'; '.join(bad)}")
    try:
        job = read_job(args.job)
    except JobError as exc:
        return fail(args, f"{exc}{shipped_hint(args.job, 'job')}")
    if args.congestion_control and args.congestion_control not in available_congestion():
        return fail(args, f"dcilab train: --congestion-control {args.congestion_control}: "
                          f"this kernel offers "
                          f"{', '.join(available_congestion()) or 'none it will name'}")
    if os.geteuid() != 0:
        return fail(args, "dcilab train runs the emulation: it needs root (Mininet, "
                          "Open vSwitch)")
    policies = list(POLICIES) if args.policy == "all" else [args.policy]
    lab = LabOptions(bfd_ms=args.bfd, gnmi=args.gnmi,
                     reconfiguration_s=args.reconfiguration_s,
                     controller_args=adaptation_options(args))
    report = emulate_or_explain(args.fabric, job, policies, args.steps, stretch, flows, _say,
                                args.queue_packets,
                                args.congestion_control, args.pacing, lab)
    if isinstance(report, str):
        return fail(args, f"{report}{shipped_hint(args.fabric)}")
    return finish(report, args.plot, args.json)


def finish(report: dict, plot: Path | None, as_json: bool) -> int:
    """Save the plot, then print the report, whatever became of the plot: a run of
    minutes is not lost to a full disk or a directory removed meanwhile."""
    plot_error = None
    if plot:
        from ..bench.training_plot import train_figure   # matplotlib only when asked
        try:
            train_figure(report).savefig(plot, dpi=110, format="png")
            report["plot"] = str(plot)
        except OSError as exc:
            plot_error = f"dcilab train: cannot write {plot}: {exc.strerror or exc}"
            report["plot_error"] = plot_error
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    sys.stdout.flush()
    if plot_error:
        print(plot_error, file=sys.stderr)
        return 2
    failed = [e for r in report["policies"].values() for e in r["errors"]]
    return 1 if failed else 0


def _figure(value, spec: str) -> str:
    """A figure of the report, or "-" where the run had none to give."""
    return "-" if value is None else format(value, spec)


def print_report(r: dict) -> None:
    pred, unsplit = r["predicted"], r["predicted_unsplittable"]
    waves = ", ".join(f"{k}: {v}" for k, v in r["wavelengths"].items())
    print(f"train: job {r['job']} on {r['fabric']} (scale {r['scale']:g}, time x{r['stretch']:g}), "
          f"{r['flows']} flows ({r['flows_per_pair']} per direction) of "
          f"{r['bytes_per_flow'] / 1e6:.2f} MB per sync; wavelengths {waves}")
    if r["pacing"] == "share":
        print(f"each flow paced at {', '.join(f'{m:.3g}' for m in r['pace_mbps'])} Mb/s "
              f"({PACE_OF_SHARE:.0%} of its share of the wavelengths its way crosses, flows "
              f"kept whole; a pair whose own line the routes pass by goes the way round)")
    else:
        print("flows not paced (TCP alone)")
    print(f"compute {r['compute_s']:.2f} s per step, the sync may overlap its last "
          f"{r['overlap_s']:.2f} s" + (f"; a sync every {r['sync_every_steps']} steps"
                                       if r["sync_every_steps"] > 1 else ""))
    print(f"planner: step {pred['step_time_s']:.3f} s, sync {pred['sync_s']:.3f} s, "
          f"utilization {pred['compute_utilization']:.1%} (flows kept whole on wavelengths: "
          f"step {unsplit['step_time_s']:.3f} s, sync {unsplit['sync_s']:.3f} s)")
    cal = r["calibration"]
    print(f"one flow alone on a wavelength: {cal['single_flow_mbps']:.2f} of "
          f"{cal['wavelength_mbps']:.2f} Mb/s; planner on that goodput: step "
          f"{cal['predicted']['step_time_s']:.3f} s, sync {cal['predicted']['sync_s']:.3f} s\n")
    for warning in r.get("warnings", []):
        print(f"warning: {warning}")
    every = r["sync_every_steps"]
    print("  steady: steps 2 on, when every flow is back on the connection placed in step 1,"
          " but those whose DCI faults changed (- where none is left)")
    if every > 1:
        print(f"  each step here is a sync step; its time is amortised over the {every}-step "
              f"period (the other {every - 1} send nothing), as the planner counts it")
    print(f"  {'policy':<10} {'step s':>8} {'of pred':>8} {'steady s':>9} {'of pred':>8} "
          f"{'of goodput pred':>16} {'sync s':>8} {'steady':>7} {'util':>7}  "
          f"{'pinned/back/moved':>17}  steps (s" + (f", amortised over {every})" if every > 1
                                                    else ")"))
    for name, p in r["policies"].items():
        steps = " ".join(f"{s['amortized_step_s']:.2f}" for s in p["steps"])
        c = p["controller"]
        print(f"  {name:<10} {p['step_time_s']:>8.3f} {p['step_ratio_to_prediction']:>8.1%} "
              f"{_figure(p['steady_step_time_s'], '.3f'):>9} "
              f"{_figure(p['steady_step_ratio_to_prediction'], '.1%'):>8} "
              f"{_figure(p['steady_step_ratio_to_goodput_prediction'], '.1%'):>16} "
              f"{p['sync_s']:>8.3f} {_figure(p['steady_sync_s'], '.3f'):>7} "
              f"{p['compute_utilization']:>7.1%}  "
              f"{c['pinned']:>7}/{c['back']}/{c['moved']:<5}  {steps}")
        if every > 1:
            raw = " ".join(f"{s['step_s']:.2f}" for s in p["steps"])
            print(f"    sync steps as run (s): {raw}")
        changed = p.get("changed_dci")
        if changed:
            ratio = changed["step_ratio_to_prediction_now"]
            print(f"    step{'s' if len(changed['steps']) > 1 else ''} "
                  f"{', '.join(map(str, changed['steps']))} ran on a DCI faults had changed ("
                  + "; ".join(dict.fromkeys(s['dci_changed']['dci'] for s in p['steps']
                                            if s['step'] in changed['steps']))  # in order
                  + "): " + (f"{ratio:.1%} of the planner's prediction on that DCI"
                             if ratio is not None else "no prediction: a site pair had no way"))
        during = [s for s in p["steps"] if "dci_changed_during_sync" in s]
        if during:
            print("    the DCI changed during the sync of step"
                  + ("s " if len(during) > 1 else " ")
                  + "; ".join(f"{s['step']} (" + ", then ".join(s["dci_changed_during_sync"])
                              + ")" for s in during)
                  + (": the flows' pace followed each change" if r.get("pacing") == "share"
                     else "")
                  + "; left out of steady")
        events = p.get("controller_events", [])
        if events:
            print(f"    the controller saw, during the run: {'; '.join(events[:6])}"
                  + (f"; and {len(events) - 6} more" if len(events) > 6 else ""))
        for error in p["errors"]:
            print(f"    error: {error}")
    if "plot" in r:
        print(f"\n  plot: {r['plot']}")
