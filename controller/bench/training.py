"""Training jobs on the fabric: on the emulation (`dcilab train`) and on its flow-level twin
(`dcilab bench --training`).

Both send the job's sync as `flows_per_pair` flows per loaded direction of every site pair
(`plan.workload.sync_flows`) and compare the step time with the planner's prediction on
the same capacities.

The twin places one sync's flows with each policy (`te.placement`, as the controller
does: ECMP hashes the 5-tuple; loadaware places each elephant where the resulting
utilization is lowest, then revisits) and lets them share wavelengths and NICs max-min
fairly (`te.fairshare`) until the last one ends. Each step draws new source ports: a draw
stands for one job, since a job keeps its connections (NCCL's channels, the emulation's
sync agent) and the fluid model repeats the same step for the same ports and placement,
so the mean over steps is the mean over jobs' hash draws. It also times `plan_job` on a
16-site job.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable
from pathlib import Path

import yaml

from ..argtypes import AT_LEAST_ONE
from ..emulation.network import EmulationError
from ..emulation.training import (SyncFlows, Transfer, limit_dci_queues, run_step,
                                  run_training)
from ..fabric import Fabric, FabricError, load_fabric, parse_fabric
from ..resources import job_arg, jobs_dir, shipped_hint
from ..fabric.model import HTB_MIN_MBPS, scaled_mbps
from ..lab import READY_MARK, Lab
from ..plan import JobError, NoFeasibleChoice, plan_job, read_job
from ..plan.fabric_out import CPU_BUDGET_MBPS, FabricOutError, fabric_data
from ..plan.load import Job
from ..plan.performance import predict
from ..plan.traffic import job_traffic, required_gbps
from ..plan.planner import predict_job
from ..plan.workload import (SyncFlow, WorkloadError, auto_stretch, directed_capacity_gbps,
                             directed_latency_ms, directed_wavelengths,
                             emulated_sync_mbps, fabric_prediction, fair_shares,
                             pair_capacity_gbps, pair_gbps_now, share_mbps, sync_flows,
                             unsplittable_prediction)
from ..te.fairshare import completion_times
from ..te.long_ways import fabric_lines, long_ways
from ..te.placement import (DEFAULT_MAX_STRETCH, POLICIES, Candidates, Flow, LoadAwarePlacer,
                            add_load, make_placer)
from ..te.scenarios import large_fabric_yaml
from . import BenchError

DEFAULT_JOB = jobs_dir() / "300b-data-16dc.yaml"
TWIN_FLOWS = (4, 8, 12, 16)
SYNC_SECONDS = 10.0
SETUP_S = 20.0              # a policy's controller, emulation and calibration (measured)
QUEUE_PACKETS = 30
# The sync flows' TCP congestion control ("" leaves the kernel's default, cubic).
CONGESTION = ""
# `dcilab train --pacing share` (the default): each sync flow's sender paced at this part of
# its share of the pair's capacity. RoCE fabrics run training lossless (PFC, ECN), each
# queue pair held at its rate by the NIC; unpaced TCP into 30-packet queues on a userspace
# datapath loses packets and waits out timeouts instead. 0.95 keeps a wavelength's wire load
# (Ethernet framing, the reverse direction's ACKs) under its line rate.
PACINGS = ("share", "none")
PACE_OF_SHARE = 0.95
# A sync not done after this many predicted syncs is broken (a step then reports errors).
SYNC_TIMEOUT_FACTOR = 8
# A sync a site pair's outage held up waits this long once every pair has a way again:
# TCP's retransmissions back off to a minute and more after a long cut.
OUTAGE_GRACE_S = 120.0
# How often the controller is asked during a sync: a wavelength lost meanwhile overruns
# the one left at the old pace until then (a second's overrun of a 20 Mb/s wavelength
# is some 1 600 frames dropped).
SYNC_ASK_S = 0.25
# The controller as `train` runs it: takes a flow for an elephant at its first poll over
# the threshold, so a sync's flows are placed within ~1-2 s of starting rather than ~3 s.
# Polling faster (0.5 s) was tried: TCP flows that stall for half a second then count as
# ended and are re-placed, 2.7x as many placements, and syncs no faster (measured).
TRAIN_CONTROLLER_ARGS = ["--elephant-polls", "1"]
# The sync's flows recur every step on the same connections: loadaware holds an idle
# elephant's pin this many (stretched) steps, so from step 2 on every flow starts on its
# placed wavelength.
PIN_HOLD_STEPS = 3
MIN_PIN_HOLD_S = 60.0


def add_arguments(parser) -> None:
    g = parser.add_argument_group("training bench (flow-level twin of `dcilab train`)")
    g.add_argument("--training", action="store_true",
                   help="run a training job's sync on the generated 16-site fabric (a job of "
                        "other sites: on the fabric `plan --fabric-out` writes for it) with "
                        "the max-min flow model, per policy and flows per pair; time `plan`")
    g.add_argument("--job", metavar="FILE", default=None, type=job_arg,
                   help=f"job file for --training, or a bundled job's name (default "
                        f"{DEFAULT_JOB.stem})")
    g.add_argument("--steps", type=AT_LEAST_ONE, default=20, metavar="N",
                   help="steps per policy for --training; each draws new source ports, i.e. "
                        "stands for another job's persistent connections (default 20)")


# --- flow-level twin -------------------------------------------------------------------------


def twin_step(fabric: Fabric, candidates: Candidates, flows: list[Flow], policy: str,
              demand: list[float]) -> float:
    """One sync: place `flows` by `policy`, each measured at its `demand` (b/s), then
    max-min share until the last ends (s)."""
    placer = make_placer(policy, candidates)
    load: dict = {}
    paths = {}
    for f, d in zip(flows, demand):
        paths[f] = placer.place(f, d, load)
        add_load(load, paths[f], d)
    if isinstance(placer, LoadAwarePlacer):
        placed = {f: (d, paths[f]) for f, d in zip(flows, demand)}
        for move in placer.revisit(placed, load):
            paths[move.flow] = move.new
    capacity = dict(candidates.capacity_bps)
    full = []
    for f in flows:
        up, down = candidates.host_links(f)
        capacity[up], capacity[down] = candidates.nic_bps(f.src), candidates.nic_bps(f.dst)
        full.append((up, *paths[f], down))
    return completion_times([f.size_bytes for f in flows], full, capacity).makespan_s


def twin_fabric(plan=None) -> Fabric:
    """The generated 16-site fabric (te.scenarios), with faster NICs; or, given a job's
    plan, the fabric `plan --fabric-out` writes for it (its sites, its line systems)."""
    if plan is None:
        data, source = yaml.safe_load(large_fabric_yaml()), "<generated large-ring>"
    else:
        data, source = fabric_data(plan), f"<planned for {plan.job.name}>"
    # Every host as fast as its site's whole DCI capacity: however the flows fall on the
    # hosts, no NIC limits a sync below what the wavelengths carry.
    dci = parse_fabric(yaml.safe_dump(data), source).dci_gbps_by_site()
    for site in data["sites"]:
        site["fabric_gbps"] = max(site["fabric_gbps"], dci[site["name"]])
    return parse_fabric(yaml.safe_dump(data), source)


def fabric_for(job: Job, plan) -> tuple[Fabric, bool]:
    """The generated ring if it has every DCI link the job's sync crosses, else the fabric
    planned for the job (as `plan --fabric-out` writes it); and whether it is the latter."""
    generated = twin_fabric()
    try:
        pair_capacity_gbps(job, generated, job_traffic(job))
    except WorkloadError:
        return twin_fabric(plan), True
    return generated, False


def twin(job: Job, fabric: Fabric, steps: int, flows_per_pair: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    candidates = Candidates(fabric)
    candidates.precompute()
    spec = job.spec
    every = job_traffic(job).sync_every_steps
    base = sync_flows(job, fabric, 1.0, flows_per_pair)
    # The controller measures each flow at its pace, one share for all of a pair's flows,
    # as `train` sends them. Sized by its hosts' NICs, a host's 2 flows looked half as big
    # as another's 1, and best fit put 3/2/1 on 3 wavelengths (an ML-infra tester's,
    # 1.125 x the prediction where the emulation placed 2/2/2).
    demands = {policy: [gbps * 1e9 for gbps in fair_shares(
        base, directed_capacity_gbps(fabric), directed_wavelengths(fabric),
        directed_latency_ms(fabric), policy_stretch(policy))] for policy in POLICIES}
    fluid = fabric_prediction(job, fabric)
    unsplit = unsplittable_prediction(job, fabric, flows_per_pair=flows_per_pair)
    out = {"flows_per_pair": flows_per_pair, "flows": len(base),
           "predicted_step_s": round(fluid.step_time_s, 4),
           "predicted_unsplittable_step_s": round(unsplit.step_time_s, 4), "policies": {}}
    for policy in POLICIES:
        step_times = []
        for _ in range(steps):
            flows = [Flow(i, s.src, s.dst, 49152 + rng.randrange(16384), size_bytes=s.bytes)
                     for i, s in enumerate(base)]
            sync = twin_step(fabric, candidates, flows, policy, demands[policy])
            step_times.append(predict(spec.step.compute_s, spec.step.overlap_s, every,
                                      sync).step_time_s)
        mean = statistics.fmean(step_times)
        out["policies"][policy] = {
            "step_time_s": round(mean, 4), "worst_step_s": round(max(step_times), 4),
            "ratio_to_prediction": round(mean / fluid.step_time_s, 4),
            "compute_utilization": round(spec.step.compute_s / mean, 4)}
    return out


def run(args) -> int:
    path = args.job or DEFAULT_JOB
    try:
        job = read_job(path)
    except JobError as exc:
        raise BenchError(f"{exc}{shipped_hint(path, 'job')}")
    started = time.perf_counter()
    try:
        plan = plan_job(job)
    except NoFeasibleChoice as exc:
        raise BenchError(f"{path}: {exc}")
    plan_s = time.perf_counter() - started
    try:
        fabric, planned = fabric_for(job, plan)
    except (FabricOutError, FabricError) as exc:     # the twin's fabric is a file's
        raise BenchError(f"dcilab bench --training: {path}: the twin runs on the fabric file its plan "
                         f"would give, and {exc}")
    report = {"job": job.name, "fabric": fabric.name, "sites": len(job.site_names),
              "fabric_source": "plan" if planned else "generated",
              "wavelengths_per_line_system": None if planned else 8, "steps": args.steps,
              "plan_seconds": round(plan_s, 4),
              "plan_step_s": round(plan.prediction.step_time_s, 4), "runs": [],
              # as `plan` and `train` warn (an ML-infra tester's twin was 1.10-1.125 x
              # the prediction on such a ring and said nothing)
              "warnings": _passed_by(fabric, sync_flows(job, fabric, 1.0, 1), POLICIES)}
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        # the job's own count too (the plan's "with N flows" is of it: a re-tester's 5 and
        # 6 printed the same table)
        for per in sorted({*TWIN_FLOWS, job.spec.flows_per_pair}):
            print(f"[bench --training] {per} flows per pair, {args.steps} steps per policy",
                  file=sys.stderr, flush=True)
            report["runs"].append(twin(job, fabric, args.steps, per))
    except WorkloadError as exc:
        raise BenchError(f"dcilab bench --training: {exc}")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    on = ("the fabric planned for it" if planned
          else f"{report['fabric']} (8 x 400G per line system)")
    print(f"training twin: job {report['job']} ({report['sites']} sites) on {on}, "
          f"{args.steps} steps per policy, max-min flow model")
    print(f"plan_job for {report['sites']} sites: {plan_s:.3f} s; the plan's step "
          f"{report['plan_step_s']:.4f} s on its optics, with latency")
    print("predicted s: the planner's model on this fabric's capacities, latency left out "
          "(the flow model has none)\n")
    print(f"  {'flows/pair':>10} {'predicted s':>12} {'unsplit s':>10}  " + "  ".join(
        f"{p + ' s':>13}" for p in POLICIES) + "  loadaware/pred")
    for r in report["runs"]:
        cells = "  ".join(f"{r['policies'][p]['step_time_s']:>13.4f}" for p in POLICIES)
        print(f"  {r['flows_per_pair']:>10} {r['predicted_step_s']:>12.4f} "
              f"{r['predicted_unsplittable_step_s']:>10.4f}  {cells}  "
              f"{r['policies']['loadaware']['ratio_to_prediction']:>14.3f}")
    return 0


# --- on the emulation (dcilab train) ----------------------------------------------------------


@dataclass(frozen=True)
class LabOptions:
    """How each policy's lab runs: BFD on the DCI ports (ms; None: off), the transceivers
    over gNMI, and more controller options (rate adaptation)."""

    bfd_ms: int | None = None
    gnmi: bool = False
    reconfiguration_s: float | None = None
    controller_args: tuple[str, ...] | list[str] = ()


def policy_stretch(policy: str) -> float:
    """How much longer than the shortest way a pair's own line may be and still carry its
    elephants under `policy`: loadaware steers within the stretch, hashed routes (ecmp,
    shortest) take only the shortest way."""
    return DEFAULT_MAX_STRETCH if policy == "loadaware" else 1.0


def _passed_by(fabric: Fabric, flows: list[SyncFlow], policies=("loadaware",)) -> list[str]:
    """The sync pairs whose own line the routes pass by (`te/long_ways.py`): the planner
    sized their sync on it, the controller sends it the short way round, over lines sized
    for other pairs (an ML-infra tester's ring, 139.6 % of the prediction, said nothing).
    Hashed routes (ecmp, shortest) take only the shortest way, so under them any line
    longer than the way round is passed by; loadaware steers within the stretch."""
    pairs = {frozenset(f.pair) for f in flows}
    hashed = [p for p in policies if p != "loadaware"]
    out = []
    least = min(map(policy_stretch, policies), default=DEFAULT_MAX_STRETCH)
    for w in long_ways(fabric_lines(fabric), least):
        if frozenset((w.a, w.b)) not in pairs:
            continue
        stretched = w.latency_ms > DEFAULT_MAX_STRETCH * w.shortest_ms
        under = "" if stretched else f" under {' and '.join(hashed)}"
        out.append(f"the sync between {w.a} and {w.b} does not take line system {w.line} "
                   f"({w.latency_ms:.3f} ms){under}, "
                   + (f"over {DEFAULT_MAX_STRETCH:g} x the shortest way between them"
                      if stretched else "longer than the shortest way between "
                      "them, the only one hashed routes take")
                   + f" ({w.shortest_ms:.3f} ms): the controller routes it that way, over "
                   f"lines the planner sized for other pairs, so steps come out slower than "
                   f"the prediction, which counts {w.line}'s capacity, where those lines' "
                   f"directions carry their own pairs' sync too (one ring leaves the reverse "
                   f"ones idle)")
    return out


def emulate(fabric_path: Path, job: Job, policies, steps: int, stretch: float | None,
            flows_per_pair: int | None, say, queue_packets: int = QUEUE_PACKETS,
            congestion: str = CONGESTION, pacing: str = PACINGS[0],
            lab_options: LabOptions = LabOptions()) -> dict:
    """Run the job's steps on the emulation of `fabric_path` under each policy, one lab per
    policy, and compare each with the planner's prediction on the fabric's capacities.
    `pacing` "share" paces every flow at PACE_OF_SHARE of its share of its pair's
    capacity; "none" leaves TCP's congestion control alone."""
    fabric = load_fabric(fabric_path)
    stretch = stretch or auto_stretch(job, fabric, SYNC_SECONDS)
    spec = job.spec
    per = flows_per_pair or spec.flows_per_pair
    flows = sync_flows(job, fabric, fabric.scale * stretch, per)
    # Paced for the ways each policy's routes take: hashed ones only the shortest.
    paces_of = {p: ([PACE_OF_SHARE * m for m in share_mbps(fabric, flows, policy_stretch(p))]
                    if pacing == "share" else [0.0] * len(flows)) for p in policies}
    paces = sorted({round(m, 4) for p in policies for m in paces_of[p]})
    fluid = fabric_prediction(job, fabric, stretch)
    unsplit = unsplittable_prediction(job, fabric, stretch, per)
    every = job_traffic(job).sync_every_steps
    compute, overlap = spec.step.compute_s * stretch, spec.step.overlap_s * stretch
    report = {"job": job.name, "fabric": fabric.name, "scale": fabric.scale,
              "stretch": round(stretch, 4), "flows_per_pair": per, "flows": len(flows),
              "bytes_per_flow": flows[0].bytes if flows else 0,
              "compute_s": round(compute, 4), "overlap_s": round(overlap, 4),
              "sync_every_steps": every, "queue_packets": queue_packets,
              "congestion_control": congestion or "kernel default",
              "pacing": pacing, "pace_mbps": paces,
              "wavelengths": {f"{a}-{b}": sum(1 for l in fabric.wavelengths()
                                             if {l.site_a, l.site_b} == {a, b})
                              for a, b in {tuple(sorted(f.pair)) for f in flows}},
              "predicted": fluid.to_dict(), "predicted_unsplittable": unsplit.to_dict(),
              "warnings": [], "policies": {}}
    offered = emulated_sync_mbps(job, fabric)
    if offered > CPU_BUDGET_MBPS * 1.01:
        slowest = min((l.rate_gbps for l in fabric.wavelengths()), default=0.0)
        floor = scaled_mbps(fabric, slowest) <= HTB_MIN_MBPS * 1.05
        report["warnings"].append(
            f"at scale {fabric.scale:g} the sync offers the emulation {offered:.0f} Mb/s in "
            f"all, over the {CPU_BUDGET_MBPS:g} Mb/s a planned fabric keeps to: a 2-core "
            f"machine's switches may not forward it, and steps then come out slower than "
            f"the planner's for that reason alone; "
            + (f"no smaller scale emulates its wavelengths (htb's {HTB_MIN_MBPS:g} Mb/s): "
               f"the job has too many for this machine" if floor else
               "`dcilab plan JOB --fabric-out F.yaml` writes a fabric scaled for this job"))
        say(f"warning: {report['warnings'][-1]}")
    short = _short_of_target(job, fabric, fluid)
    if short:
        report["warnings"].append(short)
        say(f"warning: {short}")
    for passed_by in _passed_by(fabric, flows, policies):
        report["warnings"].append(passed_by)
        say(f"warning: {passed_by}")
    say(f"{job.name} on {fabric.name} at scale {fabric.scale:g}, time x{stretch:.3g}: "
        f"{len(flows)} flows of "
        f"{report['bytes_per_flow'] / 1e6:.2f} MB per sync"
        + (f", each paced at {paces[0]:.3g} Mb/s" if pacing == "share" and len(paces) == 1
           else f", paced at {paces[0]:.3g}-{paces[-1]:.3g} Mb/s" if pacing == "share" and paces
           else "")
        + f"; compute {compute:.2f} s, overlap "
        f"{overlap:.2f} s; predicted step {fluid.step_time_s:.2f} s (sync {fluid.sync_s:.2f} s)")
    # Set-up and the calibration flow take about this long per policy; steps take at least
    # their compute phase (a pipeline's is long beside its sync).
    minutes = len(policies) * (steps * max(compute, fluid.step_time_s) + SETUP_S) / 60
    say(f"{len(policies)} polic{'y' if len(policies) == 1 else 'ies'} x {steps} "
        f"step{'' if steps == 1 else 's'}: about "
        f"{math.ceil(minutes)} min" + ("" if minutes < 5 else
                                       " (--steps, --policy or --stretch shorten it)"))
    if every > 1:
        say(f"a sync every {every} steps: each step below is a sync step as run; the "
            f"summary amortises them over the {every}-step period, as the planner does")
    hold = max(MIN_PIN_HOLD_S, PIN_HOLD_STEPS * fluid.step_time_s)
    report["pin_hold_s"] = round(hold, 1)
    for policy in policies:
        say(f"policy {policy}: starting controller and emulation")
        with Lab(fabric, fabric_path, say=lambda _: None,
                 controller_args=["--policy", policy, *TRAIN_CONTROLLER_ARGS,
                                  "--pin-hold", f"{hold:.1f}", *lab_options.controller_args],
                 bfd_ms=lab_options.bfd_ms, gnmi=lab_options.gnmi,
                 reconfiguration_s=lab_options.reconfiguration_s) as lab:
            if queue_packets:
                limit_dci_queues(lab.emulation, queue_packets)
            watch = DciWatch(lab.grpc_address, job, fabric, flows, stretch,
                             paces_of[policy] if pacing == "share" else None,
                             lambda m, p=policy: say(f"policy {p}: {m}"),
                             policy_stretch(policy))
            transfers = [Transfer(f.src, f.dst, f.bytes, pace)
                         for f, pace in zip(flows, paces_of[policy])]
            with contextlib.closing(watch):
                results = run_training(
                    lab.emulation, transfers, compute, overlap, steps,
                    say=lambda m, p=policy: say(f"policy {p}: {m}"),
                    timeout_s=max(60.0, SYNC_TIMEOUT_FACTOR * fluid.sync_s),
                    congestion=congestion, before_sync=watch,
                    during_sync=lambda step, pace: watch.during_sync(step, pace,
                                                                     OUTAGE_GRACE_S))
            log = list(lab.controller.lines)
            exited = lab.controller.proc.poll()
            # After the steps: under loadaware the lone flow's pin would be held, keeping
            # room on its wavelength while the sync's flows are placed.
            if policy == policies[-1] and flows:
                report["calibration"] = _calibrate(lab, job, fabric, flows[0], stretch,
                                                   congestion)
                say(f"one flow alone on a wavelength: "
                    f"{report['calibration']['single_flow_mbps']:.2f} Mb/s of "
                    f"{report['calibration']['wavelength_mbps']:.2f}; planner on that goodput: "
                    f"step {report['calibration']['predicted']['step_time_s']:.2f} s")
        report["policies"][policy] = policy_summary(results, compute, every, fluid, log,
                                                    exited, watch.notes, watch.during)
        # each policy's own: a pair whose line hashed routes pass by is paced for the way round
        report["policies"][policy]["pace_mbps"] = sorted({round(m, 4) for m in paces_of[policy]})
    goodput_step = report.get("calibration", {}).get("predicted", {}).get("step_time_s")
    for r in report["policies"].values():
        for key in ("step", "steady_step"):
            r[f"{key}_ratio_to_goodput_prediction"] = (
                round(r[f"{key}_time_s"] / goodput_step, 4)
                if goodput_step and r[f"{key}_time_s"] is not None else None)
    return report


def amortized_s(compute_s: float, exposed_s: float, every: int) -> float:
    """A step's time averaged over its sync period, as the planner counts it: the K-1
    steps of a DiLoCo period between syncs send nothing."""
    return compute_s + exposed_s / every


def policy_summary(results, compute: float, every: int, fluid, log: list[str],
                   exited: int | None, changed: dict[int, dict] | None = None,
                   during: dict[int, list[str]] | None = None) -> dict:
    """One policy's figures from its steps (each ran a sync): step times amortised over
    the sync period, so they compare with the planner's, and the raw ones beside them.
    `changed`: the DCI each step whose sync started on a fabric faults had changed ran on
    (`DciWatch.notes`); those steps are also compared with the planner on that DCI.
    `during`: how the DCI changed in the middle of a step's sync (`DciWatch.during`):
    those steps ran on neither DCI, and are compared with no prediction."""
    changed, during = changed or {}, during or {}
    exposed = statistics.fmean(r.exposed_s for r in results)
    step = amortized_s(compute, exposed, every)
    sync = statistics.fmean(r.sync_s for r in results)
    # From step 2 on the flows are the ones placed in step 1 (same connections); a run of
    # one step has no steady state to report, nor do steps on a DCI faults changed (an
    # ML-infra tester's "steady 109.0 %" mixed them with intact steps at 102 %).
    later = [r for r in results[1:] if r.step not in changed and r.step not in during]
    steady = amortized_s(compute, statistics.fmean(r.exposed_s for r in later),
                         every) if later else None
    return {
        "steady_step_time_s": round(steady, 4) if later else None,
        "steady_step_ratio_to_prediction":
            round(steady / fluid.step_time_s, 4) if later else None,
        "steady_sync_s": round(statistics.fmean(r.sync_s for r in later), 4) if later else None,
        "controller": {what: sum(1 for line in log if mark in line)
                       for what, mark in (("pinned", " pinned to "), ("back", " back on "),
                                          ("moved", " moved to "),
                                          ("unpinned", ": unpinned"))},
        "step_time_s": round(step, 4), "sync_s": round(sync, 4),
        "exposed_s": round(exposed, 4), "compute_utilization": round(compute / step, 4),
        "step_ratio_to_prediction": round(step / fluid.step_time_s, 4),
        "sync_ratio_to_prediction": round(sync / fluid.sync_s, 4) if fluid.sync_s else None,
        # step_s: the sync step as run; amortized_step_s: over its K-step period
        # (compute_utilization of a step is as run; amortized_*: over the period)
        "steps": [{**r.to_dict(),
                   "amortized_step_s": round(amortized_s(compute, r.exposed_s, every), 4),
                   "amortized_compute_utilization": round(
                       compute / amortized_s(compute, r.exposed_s, every), 4),
                   **({"dci_changed": changed[r.step]} if r.step in changed else {}),
                   **({"dci_changed_during_sync": during[r.step]}
                      if r.step in during else {})}
                  for r in results],
        # a step repaired (or cut again) during its sync ran on neither DCI (a tester's:
        # compared with the cut DCI's prediction)
        "changed_dci": _changed_summary(results, compute, every,
                                        {k: v for k, v in changed.items() if k not in during}),
        "controller_events": controller_events(log, [(r.step, r.started_at)
                                                      for r in results if r.started_at]),
        "errors": [e for r in results for e in r.errors] + (
            [f"the controller exited (code {exited}) during the run: the fabric ran on "
             f"without it, and its counts above stop there"] if exited is not None else [])}


def _changed_summary(results, compute: float, every: int, changed: dict[int, dict]
                     ) -> dict | None:
    """The steps whose sync ran on a DCI faults had changed, against the planner's
    prediction on that DCI (None if there were none)."""
    steps = [r for r in results if r.step in changed]
    if not steps:
        return None
    judged = [(amortized_s(compute, r.exposed_s, every), changed[r.step]["predicted_step_s"])
              for r in steps if changed[r.step]["predicted_step_s"]]
    return {"steps": [r.step for r in steps],
            "step_ratio_to_prediction_now": (
                round(statistics.fmean(s / p for s, p in judged), 4) if judged else None)}


# What a controller's log says happened to the fabric once it was ready (faults injected
# meanwhile, a switch lost): the step times beside them are not the plain job's.
_EVENT_MARKS = (" is down", " is back", " disconnected", " DEGRADED", " lost its controller",
                " drained: ", " back in use at ")


def controller_events(lines: list[str], steps: list[tuple[int, float]] = ()) -> list[str]:
    """The controller's log lines about failures after it first became ready, as
    'HH:MM:SS message' (level and logger left out), or 'HH:MM:SS (step N) message' given
    each step's number and wall-clock start (`time.time()`): the step each came in (an
    ML-infra tester matched clock times to steps by hand)."""
    events, ready = [], False
    for line in lines:
        if not ready:
            ready = READY_MARK in line
            continue
        if " port " not in line and any(mark in line for mark in _EVENT_MARKS):
            when, _, rest = line.partition(" ")     # each end's port: the link says it
            events.append((when, rest.split(': ', 1)[-1].split(';')[0]))
    if not steps:
        return [f"{when} {what}" for when, what in events]
    # the log's clock is the controller's local time to the second, as the steps' here
    starts = _seconds_of_day([time.strftime("%H:%M:%S", time.localtime(t)) for _, t in steps])
    times = _seconds_of_day([when for when, _ in events], after=starts[0])
    out = []
    for (when, what), t in zip(events, times):
        step = next((n for (n, _), start in zip(reversed(steps), reversed(starts))
                     if start <= t), None)
        out.append(f"{when} ({'before step 1' if step is None else f'step {step}'}) {what}")
    return out


def _seconds_of_day(clock_times: list[str], after: float | None = None) -> list[float]:
    """'HH:MM:SS' times, in order, as seconds from one midnight: a day later from the one
    that falls more than 12 hours before the latest so far (or `after`), a midnight
    crossed."""
    out, day, latest = [], 0.0, -math.inf if after is None else after
    for text in clock_times:
        try:
            h, m, sec = (int(x) for x in text.split(":"))
        except ValueError:                  # not a time: where the last one was
            out.append(out[-1] if out else max(latest, 0.0))
            continue
        t = day + 3600 * h + 60 * m + sec
        if t < latest - 12 * 3600:
            day += 86400
            t += 86400
        out.append(t)
        latest = max(latest, t)
    return out


def _calibrate(lab: Lab, job: Job, fabric: Fabric, flow, stretch: float,
               congestion: str = CONGESTION) -> dict:
    """One flow alone on one wavelength: the goodput g a wavelength delivers here (TCP and
    Ethernet overhead, a busy CPU). The planner's prediction on W x g per site pair is what
    the emulation could do at best; compare with it too."""
    with SyncFlows(lab.emulation, [Transfer(flow.src, flow.dst, flow.bytes)],
                   base_port=5501, congestion=congestion) as alone:
        g_mbps = run_step(lab.emulation, alone, 0.0, 0.0, count_wavelengths=False).flow_mbps[0]
    return goodput_prediction(job, fabric, flow, g_mbps, stretch)


def goodput_prediction(job: Job, fabric: Fabric, flow, g_mbps: float, stretch: float) -> dict:
    """The planner's prediction with every pair's capacity times the goodput ratio `flow`
    got alone: `g_mbps` over a wavelength of its own site pair (a fabric's pairs may run
    different modes)."""
    traffic = job_traffic(job)
    capacity = pair_capacity_gbps(job, fabric, traffic)
    rate = min(l.rate_gbps for l in fabric.wavelengths()
               if {l.site_a, l.site_b} == set(flow.pair))
    wavelength_mbps = scaled_mbps(fabric, rate)
    ratio = g_mbps / wavelength_mbps
    pred = predict_job(job, traffic, {k: v * ratio for k, v in capacity.items()},
                       {k: 0.0 for k in capacity}, byte_factor=stretch, time_factor=stretch)
    return {"single_flow_mbps": round(g_mbps, 3), "wavelength_mbps": round(wavelength_mbps, 3),
            "goodput_ratio": round(ratio, 4), "predicted": pred.to_dict()}


class DciWatch:
    """The DCI as the controller sees it as each sync starts: its wavelengths in service
    (up, not held down after a flap nor drained), each at the rate of the mode it runs now
    (`ListLinks`). When faults have changed it (a cut, a
    transceiver dark, a mode lowered by rate adaptation), the flows are paced at their fair
    share of what is left, as a RoCE NIC's rate follows its congestion control (kept at
    the intact fabric's, they overran it: an ML-infra tester counted 258 drops a sync
    before a cut and ~8 500 after), and the step is predicted on that DCI too.

    Called by `run_training` before each sync: returns the flows' new paces (Mb/s) when
    the DCI changed and the flows are paced, else None; and during each (`during_sync`),
    which re-paces the flows at once when the DCI changes in the middle of a sync."""

    def __init__(self, grpc_address: str, job: Job, fabric: Fabric, flows: list[SyncFlow],
                 stretch: float, paces: list[float] | None, say,
                 max_stretch: float = DEFAULT_MAX_STRETCH):
        self.address, self.job, self.fabric, self.flows = grpc_address, job, fabric, flows
        self.stretch, self.first_paces, self.say = stretch, paces, say
        self.latency, self.max_stretch = directed_latency_ms(fabric), max_stretch
        self.intact = directed_capacity_gbps(fabric)
        self.current = self.intact
        # each direction's wavelengths in service, as last read: pace no flow above what
        # whole flows can send on them (paced at the capacity over the flows after a cut,
        # 8 flows over 3 wavelengths put 3 flows' pace on one: a reviewer's)
        self.waves = directed_wavelengths(fabric)
        self._waves_read = self.waves
        self.out: list[str] = []              # the DCI wavelengths out of service, as read
        self._out_read: list[str] = []
        self.notes: dict[int, dict] = {}     # step -> the changed DCI its sync started on
        self.during: dict[int, list[str]] = {}   # step -> how the DCI changed in its sync
        self._unread = False
        self._paces: list[float] = []         # each flow's, on the DCI as it is
        self._pace_now = list(paces or [])    # each flow's pace in force (sent last)
        self._client = None                   # one channel for the run's many reads

    def __call__(self, step: int) -> list[float] | None:
        now = self._read()
        changed = now is not None and not _same_capacity(now, self.current)
        if changed:
            self.current, self.waves, self.out = now, self._waves_read, self._out_read
        if _same_capacity(self.current, self.intact):
            if changed:
                self.say(f"step {step}: the DCI is whole again"
                         + ("; flows back at their first pace" if self.first_paces else ""))
            if changed and self.first_paces:
                self._pace_now = list(self.first_paces)
            return self.first_paces if changed else None
        note = self._note(step)
        self.notes[step] = note
        # a change during the last sync was said then, but not what the planner predicts
        # on it (a tester's: the step started silently)
        if changed or step - 1 in self.during:
            predicted = note["predicted_step_s"]
            self.say(f"step {step}: the DCI is not the fabric's: {note['dci']}"
                     + (f"; flows paced at {_paces_text(note['pace_mbps'])} Mb/s"
                        if self.first_paces else "")
                     + (f"; the planner on the DCI as it is: step {predicted:.2f} s"
                        if predicted else "; a site pair has no way left: its sync cannot end"))
        if changed and self.first_paces:
            self._pace_now = list(self._paces)
        return self._paces if changed and self.first_paces else None

    def _read(self) -> dict | None:
        """Each direction's capacity up now (Gb/s), or None if the controller did not
        answer (the last view stands; said once)."""
        from ..api.client import ApiError, Client, Unreachable   # grpc only when run
        try:
            if self._client is None:
                self._client = Client(self.address, timeout=2.0, read_patience=3.0)
            links = self._client.links("dci")
        except (ApiError, Unreachable) as exc:
            if isinstance(exc, Unreachable):
                # a fresh channel next time: a kept one backs off its reconnection up to
                # 120 s, and saw a controller back 22 s after a 40 s outage (a reviewer's)
                self.close()
            if not self._unread:
                self.say(f"the controller did not say which wavelengths are up ({exc}): "
                         f"the flows keep their pace")
            self._unread = True
            return None
        if self._unread:
            self.say("the controller answers again")
            self._unread = False           # a later outage is said too
        now = {d: 0.0 for d in self.intact}
        waves: dict[tuple[str, str], list[float]] = {}
        self._out_read = sorted({link.wavelength or link.link for link in links
                                 if not link.in_service})
        for link in links:
            if link.in_service:     # not one held down after a flap (a re-tester's)
                now[(link.site_a, link.site_b)] = (now.get((link.site_a, link.site_b), 0.0)
                                                   + link.capacity_bps / 1e9)
                waves.setdefault((link.site_a, link.site_b), []).append(
                    link.capacity_bps / 1e9)
        self._waves_read = waves
        return now

    def during_sync(self, step: int, pace: Callable[[list[float]], None], grace_s: float,
                    clock: Callable[[], float] = time.monotonic) -> Callable[[], float | None]:
        """For one sync (`SyncFlows.burst`'s `later`), the controller asked at most every
        `SYNC_ASK_S`. When the DCI changes, paced flows are re-paced at once (`pace`) at their
        share of it, or at their first pace once it is whole: kept at the pace the sync
        started with, flows overran a wavelength cut meanwhile until the next sync (an
        ML-infra tester: 1 167-1 864 drops a sync against 0-35). The deadline: while a
        site pair with flows has no way left, always a little ahead; once every pair has
        one again, `grace_s` after that; None if no pair lost its way. Flows cut off wait
        on TCP's backed-off retransmissions: the same tester's flow missed the 80 s limit
        43 s after a 37 s cut was repaired, and the run ended."""
        state = {"asked": -math.inf, "cut": False, "back": None, "answered": clock()}

        def later() -> float | None:
            now = clock()
            if now - state["asked"] >= SYNC_ASK_S:
                state["asked"] = now
                capacity = self._read()
                if capacity is not None:
                    state["answered"] = now
                if capacity is not None and not _same_capacity(capacity, self.current):
                    self._changed_during(step, capacity, pace)
                if capacity is not None and self._cut_off(capacity):
                    state["cut"], state["back"] = True, None
                elif capacity is not None and state["cut"] and state["back"] is None:
                    state["back"] = now
                    self.say(f"the DCI has a way for every pair again: the sync waits up "
                             f"to {grace_s:g} s more for flows that were cut off")
            if state["cut"] and state["back"] is None:
                # while the controller says so; not for good once it says nothing
                return min(now + 2.0, state["answered"] + grace_s)
            return state["back"] + grace_s if state["back"] is not None else None
        return later

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _changed_during(self, step: int, capacity: dict,
                        pace: Callable[[list[float]], None]) -> None:
        self.current, self.waves, self.out = capacity, self._waves_read, self._out_read
        whole = _same_capacity(capacity, self.intact)
        what = "whole again" if whole else self._dci_now()
        self.during.setdefault(step, []).append(what)
        shares = self._shares()
        cut_off = not whole and any(g <= 0 for g in shares)
        said = ""
        if self.first_paces:
            paces = self.first_paces if whole else self._paces_for(shares)
            pace(paces)
            self._pace_now = list(paces)
            moved = sorted({round(m, 4) for m, g in zip(paces, shares) if whole or g > 0})
            said = f"; flows re-paced at {_paces_text(moved)} Mb/s" if moved else ""
        self.say(f"step {step}, during its sync: the DCI is "
                 + ("whole again" if whole else f"not the fabric's: {what}") + said
                 + ("; a site pair has no way left: its flows keep their pace until one "
                    "returns" if cut_off else ""))

    def _dci_now(self) -> str:
        """The site pairs short of the fabric's capacity, and the wavelengths out of
        service (a tester's: "east-west" alone did not say which line)."""
        return _dci_text(self.current, self.intact) + (
            f" ({', '.join(self.out[:4])}{' ...' if len(self.out) > 4 else ''} out of "
            f"service)" if self.out else "")

    def _shares(self) -> list[float]:
        """Each flow's fair share (Gb/s) of the DCI as last read."""
        return fair_shares(self.flows, self.current, self.waves, self.latency,
                           self.max_stretch)

    def _paces_for(self, shares: list[float]) -> list[float]:
        """Each flow's pace at its share; a flow with no way left keeps the pace it has
        (0 would lift it) until one returns."""
        kept = self._pace_now or [0.0] * len(shares)
        return [PACE_OF_SHARE * scaled_mbps(self.fabric, g) if g > 0 else p
                for g, p in zip(shares, kept)]

    def _cut_off(self, capacity: dict) -> bool:
        """Whether some flow has no way left on the DCI `capacity` gives (`_read`)."""
        shares = fair_shares(self.flows, capacity, self._waves_read, self.latency,
                             self.max_stretch)
        return any(g <= 0 for g in shares)

    def _note(self, step: int) -> dict:
        shares = self._shares()
        self._paces = paces = self._paces_for(shares)
        pairs = pair_gbps_now(self.job, self.flows, shares)
        predicted = None
        if all(g > 0 for g in pairs.values()):
            predicted = predict_job(self.job, job_traffic(self.job), pairs,
                                    {k: 0.0 for k in pairs}, byte_factor=self.stretch,
                                    time_factor=self.stretch)
        return {"dci": self._dci_now(),
                "predicted_step_s": round(predicted.step_time_s, 4) if predicted else None,
                "predicted_sync_s": round(predicted.sync_s, 4) if predicted else None,
                "pace_mbps": sorted({round(p, 4) for p in paces}),
                # a pair's flows share one route, hence one pace (a re-tester's: which is whose)
                "pace_mbps_by_direction": {f"{f.pair[0]}->{f.pair[1]}": round(p, 4)
                                           for f, p in zip(self.flows, paces)}}


def _same_capacity(a: dict, b: dict) -> bool:
    return all(abs(a.get(d, 0.0) - b.get(d, 0.0)) <= 1e-6 * max(b.get(d, 0.0), 1.0)
               for d in a.keys() | b.keys())


def _dci_text(now: dict, intact: dict) -> str:
    """The site pairs short of the fabric's capacity, e.g. 'dc1-dc2 1,200 of 1,600 Gb/s'
    (a direction short alone is named as one)."""
    parts = []
    for (a, b), whole in sorted(intact.items()):
        there, back = now.get((a, b), 0.0), now.get((b, a), 0.0)
        if a < b and (there < whole or back < whole):
            name = f"{a}-{b}" if abs(there - back) <= 1e-6 * whole else (
                f"{a}->{b}" if there < back else f"{b}->{a}")
            parts.append(f"{name} {min(there, back):,.0f} of {whole:,.0f} Gb/s")
    return ", ".join(parts)


def _paces_text(paces: list[float]) -> str:
    return ", ".join(f"{m:.3g}" for m in paces)


def _short_of_target(job: Job, fabric, fluid) -> str | None:
    """What to say when this fabric's DCI cannot give the job its target utilization (an
    ML-infra tester ran a 1T job on two-dc: 334 % of the prediction, and only the CPU
    warning spoke, mixing a fabric too small with the emulation's limit): the pair
    furthest short, its need and what it has. None when the fabric meets the target."""
    target = job.spec.target_compute_utilization
    if fluid.compute_utilization >= target - 5e-4:
        return None
    traffic = job_traffic(job)
    have = pair_capacity_gbps(job, fabric, traffic)
    # the rate that fits each pair's sync in its window (the emulation has no latency)
    need = {(p.a, p.b): required_gbps(p.bytes_per_sync, traffic.window_s, 0.0)
            for p in traffic.pairs}
    a, b = max(need, key=lambda k: need[k] / have[k])
    return (f"this fabric's DCI gives {job.name} {fluid.compute_utilization:.1%} compute "
            f"utilization, under its {target:.0%} target: {a}-{b} has {have[(a, b)]:,.0f} "
            f"Gb/s and the sync needs about {need[(a, b)]:,.0f} Gb/s "
            f"({need[(a, b)] / have[(a, b)]:.1f}x); steps are compared with the prediction "
            f"on this fabric, and `dcilab plan JOB --fabric-out F.yaml` sizes one for the "
            f"target")


def emulate_or_explain(fabric_path: Path, job: Job, policies, steps, stretch, flows_per_pair,
                       say, queue_packets: int = QUEUE_PACKETS,
                       congestion: str = CONGESTION, pacing: str = PACINGS[0],
                       lab_options: LabOptions = LabOptions()) -> dict | str:
    """`emulate`, or the message of a fabric or workload that does not fit, or of an
    emulation that cannot start (another one running: a traceback before)."""
    try:
        return emulate(fabric_path, job, policies, steps, stretch, flows_per_pair, say,
                       queue_packets, congestion, pacing, lab_options)
    except (FabricError, WorkloadError, EmulationError) as exc:
        return str(exc)
