"""`dcilab plan JOB`: the DCI a training job needs, its cost, power and step time."""

from __future__ import annotations

import json
import os
import sys

from ..argtypes import file_path
from .. import qot_helper
from ..files import unwritable
from ..resources import bundled_jobs, job_arg, shipped_hint
from ..te.placement import DEFAULT_MAX_STRETCH
from .failure import fail

JOB_FILE = "the job file being planned"    # what --plot and --fabric-out must not overwrite
TWO_HELPERS_KM = 8000.0     # site pairs' fibre from which a second GNPy helper pays


def register(sub) -> None:
    p = sub.add_parser(
        "plan", help="plan the DCI of a multi-site training job (jobs/*.yaml)",
        description="Read a training job file (model, sites in ring order, distances, "
                    "parallelism, step times, utilization target). For each site pair: the "
                    "bytes per sync, the bandwidth needed per direction, and the cheapest "
                    "feasible optics (module, mode at that distance, wavelengths, C-band "
                    "line systems, best launch power) with capex, power and latency, beside "
                    "classic WDM "
                    "transponders. Then the predicted step time and compute utilization, "
                    "the step with each line system cut (N-1: the sync on what is left, "
                    "round the other sites where its pair has no line left), and their "
                    "sensitivity to distance and capacity. Exit status 2 on a bad "
                    "job file or a pair no module can serve.")
    p.add_argument("job", type=job_arg,
                   help=f"job file (YAML), or the name of one shipped with dcilab "
                        f"({', '.join(bundled_jobs())})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--fabric-out", metavar="FILE", type=file_path,
                   help="write a fabric file with the planned DCI links and small sites, "
                        "scaled for the emulation (for `dcilab check`, `demo` and `train`)")
    p.add_argument("--plot", metavar="FILE.png", type=file_path,
                   help="draw step time and utilization against distance and capacity")
    p.add_argument("--replan", action="store_true",
                   help="at each distance of the sensitivity table, also say what a fresh "
                        "plan would buy (capex, wavelengths): GNPy for every site pair at "
                        "every distance, seconds more for many sites")
    p.set_defaults(run=run)


def run(args) -> int:
    # GNPy's import (over a second) on the other core while the planner's own load here;
    # then site pairs' propagations, one per core, in two helpers where there are two.
    qot_helper.start()
    try:
        return _plan(args)
    finally:
        qot_helper.stop()


def _workers(job) -> int:
    """Site pairs planned at once: two, with a second GNPy helper, where this process may
    run on two cores or more and the job's lines are long enough for their GNPy runs (about
    0.04 ms a km, each pair's line propagated a few times) to outweigh that helper's start
    (0.1-0.2 s)."""
    from ..plan.traffic import job_traffic
    if (len(os.sched_getaffinity(0)) < 2
            or sum(p.km for p in job_traffic(job).pairs) < TWO_HELPERS_KM):
        return 1
    return max(1, qot_helper.widen(2))


def _plan(args) -> int:
    from ..plan import JobError, NoFeasibleChoice, fabric_yaml, plan_job, read_job
    from ..plan.fabric_out import FabricOutError
    from ..plan.survival import line_cuts
    for problem in (unwritable(args.plot, "--plot", args.job, png=True, source_is=JOB_FILE),
                    unwritable(args.fabric_out, "--fabric-out", args.job,
                               source_is=JOB_FILE)):
        if problem:
            return fail(args, f"dcilab plan: {problem}")
    if args.plot:
        # matplotlib's import (over half a second) while the helper still imports GNPy.
        from ..plan.plot import sensitivity_figure
    try:
        job = read_job(args.job)
        plan = plan_job(job, replan=args.replan, workers=_workers(job))
    except (JobError, NoFeasibleChoice) as exc:
        return fail(args, (f"{exc}" if isinstance(exc, JobError) else f"{args.job}: {exc}")
                    + shipped_hint(args.job, "job"))
    except (ImportError, MemoryError) as exc:      # under a memory limit, say
        return fail(args, f"dcilab plan: cannot load GNPy, the optics library: "
                          f"{exc or type(exc).__name__}", 1)
    report = plan.to_dict()
    report["line_cuts"] = line_cuts(plan)
    try:
        fabric_text = fabric_yaml(plan) if args.fabric_out else None
    except FabricOutError as exc:
        return fail(args, f"dcilab plan: --fabric-out {args.fabric_out}: {exc}")
    path = None
    try:
        if fabric_text is not None:
            path = args.fabric_out
            path.write_text(fabric_text)
            report["fabric_out"] = str(path)
        if args.plot:
            path = args.plot
            # PNG under exactly the name given (matplotlib would add .png to a bare name).
            # tight: a legend wider than its axes (four entries) was cut at the left edge
            sensitivity_figure(plan).savefig(path, dpi=110, format="png", bbox_inches="tight")
            report["plot"] = str(path)
        path = None
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print_report(report)
        sys.stdout.flush()
    except OSError as exc:
        where = f"cannot write {path}" if path else "cannot write the output"
        print(f"dcilab plan: {where}: {exc.strerror or exc}", file=sys.stderr)
        if not path and sys.stdout is sys.__stdout__:
            sys.stdout = None                      # nothing more to flush at exit
        return 2 if path else 1
    return 0


LINE_CUT_ROWS = 6


def _way(sites: list[str]) -> str:
    if len(sites) <= 5:
        return " > ".join(sites)
    return f"{sites[0]} > {sites[1]} > ... > {sites[-1]} ({len(sites) - 1} lines)"


def _print_line_cuts(r: dict) -> None:
    """N-1: the step with each line system cut, the slowest first."""
    cuts = (r.get("line_cuts") or {}).get("cuts") or []
    if not cuts:
        return
    print("\n  one line system cut (N-1), the sync on what is left as the controller "
          "routes it:")
    print(f"    {'line system':<24} {'left Gb/s':>10} {'step s':>9} {'util':>7}  the sync's way")
    for c in cuts[:LINE_CUT_ROWS]:
        if c["step_time_s"] is None:
            # a pipeline's DCI carries activations and their gradients, not a sync
            what = "the job's traffic cannot pass" if r["across_sites"] == "pipeline" \
                else "its sync cannot end"
            step, util, way = "-", "-", f"no way left between {c['a']} and {c['b']}: {what}"
        else:
            step, util = f"{c['step_time_s']:.4f}", f"{c['compute_utilization']:.2%}"
            way = ", ".join(f"{d['a']}->{d['b']} round {_way(d['way'])}"
                            for d in c["detours"]) or f"{c['a']}-{c['b']}'s other line systems"
        print(f"    {c['line_system']:<24} {c['capacity_left_gbps']:>10,.0f} {step:>9} "
              f"{util:>7}  {way}")
    if len(cuts) > LINE_CUT_ROWS:
        print(f"    ... and {len(cuts) - LINE_CUT_ROWS} more, each as fast or faster (--json "
              f"has them; a pair's line systems of equal size are one row)")
    intact = r["line_cuts"]["intact"]
    if intact["step_time_s"] is not None and abs(intact["step_time_s"] - r["step_time_s"]) \
            > 1e-6 * r["step_time_s"]:
        print(f"    with nothing cut, the sync as the controller routes it (round a line it "
              f"passes by): step {intact['step_time_s']:.4f} s, "
              f"{intact['compute_utilization']:.2%}")


def print_report(r: dict) -> None:
    every = r["sync_every_steps"]
    # A pipeline's DCI carries activations and their gradients; its sync stays in a site.
    crossing = (f"sync {r['sync']}" if r["across_sites"] != "pipeline" else
                "activations and their gradients between stages")
    print(f"job {r['job']}: {len(r['sites'])} sites, {r['across_sites']} parallel across sites, "
          f"{crossing}" + (f" every {every} steps" if every > 1 else "")
          + f"; sync window {r['window_s']:.4f} s less "
          + ("the chain's round trip over every stage boundary" if r["chain"] else
             f"{r['latency_hops']} one-way latencies"
             + (("; two counter-rotating rings, one each way of every pair"
                 if r["rings"] == 2 else "; one ring (NCCL's), one direction of each pair")
                if len(r["sites"]) > 2 else "")))
    if r["unused_distances"]:
        crossed = ", ".join(f"{p['a']}-{p['b']}" for p in r["site_pairs"])
        print(f"  (distances not used: {', '.join(r['unused_distances'])}; the sync crosses "
              f"{crossed})")
    for w in r["passed_by"]:
        print(f"  warning: {w['a']}-{w['b']}'s line ({w['latency_ms']:.3f} ms) is over "
              f"{DEFAULT_MAX_STRETCH:g} x the way round the other pairs' lines "
              f"({w['shortest_ms']:.3f} ms): on the fabric planned the controller routes its "
              f"sync that way round, over lines sized for the other pairs, so steps come out "
              f"slower than predicted here (`dcilab check` of a --fabric-out file says so too)")
    print()
    print(f"  {'site pair':<24} {'km':>7} {'GB/sync':>9} {'need Gb/s':>10}  {'module':<7} "
          f"{'mode':<5} {'waves':>5} {'lines':>6} {'dBm':>5} {'capex $':>10} {'power W':>8} "
          f"{'ms':>7}  {'WDM $':>10} {'WDM W':>7}")
    for p in r["site_pairs"]:
        lines = f"{p['line_systems']}x{p['band']}"
        print(f"  {p['a'] + ' - ' + p['b']:<24} {p['km']:>7g} {p['bytes_per_sync'] / 1e9:>9.2f} "
              f"{p['required_gbps']:>10.1f}  {p['module']:<7} {p['mode']:<5} "
              f"{p['wavelengths']:>5} {lines:>6} {p['launch_power_dbm']:>5.1f} "
              f"{p['capex_usd']:>10,.0f} {p['power_w']:>8.0f} "
              f"{p['latency_ms']:>7.3f}  {p['wdm']['capex_usd']:>10,.0f} "
              f"{p['wdm']['power_w']:>7.0f}")
    w = r["wdm"]
    assumed = sorted({f"{p['module']} {figure.removesuffix('_usd').removesuffix('_w')}"
                      for p in r["site_pairs"] for figure, source in p["sources"].items()
                      if source.startswith("assumption")})
    print(f"\n  ZR optics:        capex ${r['capex_usd']:,.0f}, power {r['power_w']:,.0f} W"
          + (f" ({', '.join(assumed)}: assumption figures, see --json)" if assumed else ""))
    wdm_assumed = [k.removesuffix("_usd").removesuffix("_w").removesuffix("_gbps")
                   for k, v in w["assumptions"].items() if v != "job file"]
    whose = (f"{', '.join(wdm_assumed)}: assumption figures, see --json" if wdm_assumed
             else "the job file's figures")
    print(f"  classic WDM:      capex ${w['capex_usd']:,.0f}, power {w['power_w']:,.0f} W "
          f"({w['transponders']} transponders of {w['rate_gbps']}G; {whose})")
    print(f"  predicted:        step {r['step_time_s']:.4f} s, compute utilization "
          f"{r['compute_utilization']:.2%} (sync {r['sync_s']:.4f} s, exposed "
          f"{r['exposed_s']:.4f} s per sync)")
    if (f := r["with_flows"]) is not None:
        n, waves = f["flows_per_pair"], " or ".join(str(w) for w in f["wavelengths"])
        pairs = ", ".join(f["site_pairs"][:3]) + (", ..." if len(f["site_pairs"]) > 3 else "")
        fill = (f"flows_per_pair {f['flows_that_fill']}, the fewest from {n} up, fills them"
                if f["flows_that_fill"]
                else "no flows_per_pair a job file may give fills them all")
        flows = f"{n} flow{'s' if n > 1 else ''}"
        # said beside the figure: skimmed, 23 % under a 99 % target read as the plan's
        below = (f" (below the {target * 100:.4g}% target)"
                 if f["compute_utilization"] < (target := r["target_compute_utilization"])
                 else "")
        print(f"  {f'with {flows}:':<18}step {f['step_time_s']:.4f} s, compute utilization "
              f"{f['compute_utilization']:.2%}{below}:\n"
              f"{'':<20}the job's {flows} per pair, each on one wavelength, cannot fill "
              f"{waves} wavelengths\n{'':<20}evenly ({pairs});\n"
              f"{'':<20}{fill}\n"
              f"{'':<20}(the plan above sizes as if the sync split evenly over them)")
    _print_line_cuts(r)
    print()
    rows = r["sensitivity"].get("distance", [])
    replanned = any("replanned_capex_usd" in row for row in rows)
    print("  sensitivity to distance (planned wavelengths"
          + ("; fresh plan's capex):" if replanned else "; --replan adds a fresh plan's capex):"))
    print(f"    {'x km':>5} {'longest km':>11} {'step s':>9} {'util':>7}"
          + (f" {'capex $':>17}" if replanned else ""))
    for row in rows:
        capex = ""
        if replanned:
            capex = " " + ("no module reaches" if row["replanned_capex_usd"] is None
                           else f"{row['replanned_capex_usd']:>17,.0f}")
        past = {*row.get("beyond_dispersion_tolerance", ()), *row.get("beyond_reach", ())}
        mark = f" * {len(past)} site pair(s)" if past else ""
        print(f"    {row['factor']:>5g} {row['longest_km']:>11g} {row['step_time_s']:>9.4f} "
              f"{row['compute_utilization']:>7.2%}{capex}{mark}")
    if any(row.get("beyond_dispersion_tolerance") or row.get("beyond_reach") for row in rows):
        print("    * site pairs whose planned module is beyond its specified reach or whose "
              "mode does not tolerate that fibre's dispersion "
              + ("(the fresh plan's capex beside it re-checks GSNR)" if replanned
                 else "(GSNR is re-checked only by --replan)"))
    print("  sensitivity to capacity (Gb/s: every site pair's, one direction, summed):")
    print(f"    {'x cap':>5} {'total Gb/s':>11} {'step s':>9} {'util':>7}")
    for row in r["sensitivity"].get("capacity", []):
        print(f"    {row['factor']:>5g} {row['capacity_gbps']:>11,.0f} {row['step_time_s']:>9.4f} "
              f"{row['compute_utilization']:>7.2%}")
    for key, label in (("fabric_out", "fabric file"), ("plot", "plot")):
        if key in r:
            print(f"\n  {label}: {r[key]}")
