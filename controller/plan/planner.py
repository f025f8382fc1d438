"""`plan_job`: from a checked job to hardware per site pair, cost, power and step time."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..optics import DEFAULT_CATALOG, Catalog
from ..optics.line import LATENCY_US_PER_KM
from ..te.long_ways import long_ways
from .hardware import (WDM_POWER_W, WDM_PRICE_USD, WDM_RATE_GBPS, WDM_SOURCES, Choice, Wdm,
                       cheapest, choose, pair_names, planned_line)
from .load import Job
from .performance import Prediction, predict, sync_time_s
from .schema import MAX_FLOWS_PER_PAIR, MAX_KM
from .traffic import GOODPUT_OF_LINE_RATE, JobTraffic, Pair, job_traffic

DISTANCE_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
CAPACITY_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class JobPlan:
    job: Job
    traffic: JobTraffic
    choices: tuple[Choice, ...]
    prediction: Prediction
    wdm: Wdm
    sensitivity: dict
    catalog: Catalog             # with the job's overrides: the figures the plan used

    @property
    def capex_usd(self) -> float:
        return sum(c.capex_usd for c in self.choices)

    @property
    def power_w(self) -> float:
        return sum(c.power_w for c in self.choices)

    def with_flows(self) -> dict | None:
        """The step on the planned wavelengths with the job's `flows_per_pair` flows, each
        on one wavelength, where they cannot fill them (8 flows on 5 wavelengths carry
        what 4 do), and what would: None where they fill every pair's. (The plan sizes as
        if the sync split evenly, as the many flows of a large job's ranks do; an ML-infra
        tester's 300b job on its planned 5 x 800ZR made 83 % of the 92.8 % predicted.)"""
        flows = self.job.spec.flows_per_pair
        short = [c for c in self.choices if c.carried_gbps(flows) < c.capacity_gbps * (1 - 1e-9)]
        if not short:
            return None
        carried = {(c.a, c.b): c.carried_gbps(flows) * GOODPUT_OF_LINE_RATE for c in self.choices}
        pred = predict_job(self.job, self.traffic, carried, _latency(self.choices))
        waves = sorted({c.wavelengths for c in short})
        # Flows that fill a pair are a multiple of its wavelengths: every pair's, or a new
        # count would leave a pair filled now short (8 fill 4; 10, for a 5, would not).
        fill = math.lcm(*{c.wavelengths for c in self.choices})
        return {"flows_per_pair": flows,
                "site_pairs": [f"{c.a}-{c.b}" for c in short],
                "wavelengths": waves,
                "step_time_s": round(pred.step_time_s, 6),
                "compute_utilization": round(pred.compute_utilization, 6),
                "sync_s": round(pred.sync_s, 6),
                # the fewest flows per pair from the job's up that fill every pair's
                # wavelengths, None past what a job file may ask
                "flows_that_fill": (fill * math.ceil(flows / fill)
                                    if fill * math.ceil(flows / fill) <= MAX_FLOWS_PER_PAIR
                                    else None)}

    def wdm_total(self) -> dict:
        per = [self.wdm.for_capacity(c.capacity_gbps) for c in self.choices]
        return {"rate_gbps": self.wdm.rate_gbps,
                "wavelengths": sum(p["wavelengths"] for p in per),
                "transponders": sum(p["transponders"] for p in per),
                "capex_usd": round(sum(p["capex_usd"] for p in per), 2),
                "power_w": round(sum(p["power_w"] for p in per), 3),
                "assumptions": {k: (v if k not in self._wdm_overridden() else "job file")
                                for k, v in WDM_SOURCES.items()}}

    def _wdm_overridden(self) -> set[str]:
        return {k for k, v in self.job.spec.wdm.model_dump().items() if v is not None}

    def to_dict(self) -> dict:
        spec = self.job.spec
        pairs = []
        for c in self.choices:
            t = self.traffic.pair(c.a, c.b)
            module = self.catalog.module(c.module)
            pairs.append({
                "a": c.a, "b": c.b, "km": c.km,
                "bytes_per_sync": t.bytes_per_sync,
                "bytes_per_sync_ab": t.bytes_ab, "bytes_per_sync_ba": t.bytes_ba,
                "required_gbps": round(c.required_gbps, 3),
                "module": c.module, "mode": c.mode, "rate_gbps": c.rate_gbps,
                "wavelengths": c.wavelengths, "line_systems": c.line_systems, "band": c.band,
                "capacity_gbps": c.capacity_gbps,
                "capex_usd": round(c.capex_usd, 2), "power_w": round(c.power_w, 3),
                # where the module's price and power come from (some are assumptions)
                "sources": {f: module.source_of(f) for f in ("price_usd", "power_w")},
                "latency_ms": round(c.latency_ms, 6),
                "launch_power_dbm": round(c.launch_power_dbm, 3),
                "wdm": self.wdm.for_capacity(c.capacity_gbps),
            })
        return {
            "job": spec.name,
            "sites": [{"name": s.name, "gpus": s.gpus} for s in spec.sites],
            "across_sites": spec.across_sites, "sync": spec.sync,
            "sync_every_steps": self.traffic.sync_every_steps,
            "window_s": round(self.traffic.window_s, 6),
            "latency_hops": self.traffic.latency_hops,
            "chain": self.traffic.chain,
            "rings": spec.rings,           # 1: NCCL's, one direction of each ring pair
            "site_pairs": pairs,
            # distances given for pairs the sync does not cross (a full matrix for a ring)
            "unused_distances": sorted(
                "-".join(sorted(pair)) for pair in self.job.distances
                if pair not in {frozenset((c.a, c.b)) for c in self.choices}),
            # pairs whose own line the routes of the fabric planned pass by (a ring pair
            # over 1.5 x the way round the others): their sync would go that way round
            "passed_by": [{"a": w.a, "b": w.b, "latency_ms": round(w.latency_ms, 6),
                           "shortest_ms": round(w.shortest_ms, 6)}
                          for w in long_ways((f"{c.a}-{c.b}", c.a, c.b, c.latency_ms)
                                             for c in self.choices)],
            # the share of each wavelength's rate the sync's payload gets (sizing, step)
            "goodput_of_line_rate": round(GOODPUT_OF_LINE_RATE, 6),
            "step_time_s": round(self.prediction.step_time_s, 6),
            "compute_utilization": round(self.prediction.compute_utilization, 6),
            "target_compute_utilization": spec.target_compute_utilization,
            "sync_s": round(self.prediction.sync_s, 6),
            "exposed_s": round(self.prediction.exposed_s, 6),
            "capex_usd": round(self.capex_usd, 2),
            "power_w": round(self.power_w, 3),
            "wdm": self.wdm_total(),
            "sensitivity": self.sensitivity,
            "with_flows": self.with_flows(),
        }


def job_catalog(job: Job, catalog: Catalog = DEFAULT_CATALOG) -> tuple[Catalog, tuple[str, ...]]:
    """The catalog with the job's price and power overrides, and the modules it may use."""
    overrides = {}
    for name, choice in job.spec.modules.items():
        figures = {k: v for k, v in (("price_usd", choice.price_usd), ("power_w", choice.power_w))
                   if v is not None}
        if figures:
            overrides[name] = figures
    available = tuple(n for n in catalog.names
                      if job.spec.modules.get(n) is None or job.spec.modules[n].available)
    return catalog.with_overrides(overrides), available


def predict_job(job: Job, traffic: JobTraffic, capacity_gbps, latency_s,
                byte_factor: float = 1.0, time_factor: float = 1.0) -> Prediction:
    """Step time and utilization on these capacities. For the emulation, bytes are scaled by
    `byte_factor` and compute times by `time_factor`."""
    step = job.spec.step
    sync = sync_time_s(traffic, capacity_gbps, latency_s, byte_factor)
    return predict(step.compute_s * time_factor, step.overlap_s * time_factor,
                   traffic.sync_every_steps, sync)


def plan_job(job: Job, catalog: Catalog = DEFAULT_CATALOG, sensitivity: bool = True,
             replan: bool = False, workers: int = 1) -> JobPlan:
    """Plan the job's DCI: the cheapest feasible hardware per site pair and its performance.

    `replan`: the distance sensitivity also says what hardware a fresh plan would buy at
    each distance (GNPy for every pair at every distance: seconds for many sites).
    `workers`: site pairs chosen at once (each pair's GNPy runs are its own; worth it only
    where propagations run in as many processes: `dcilab.qot_helper`).

    Raises
    ------
    NoFeasibleChoice
        A site pair that no module can serve in time (the message says why per module).
    """
    catalog, available = job_catalog(job, catalog)
    traffic = job_traffic(job)
    names = pair_names([(p.a, p.b) for p in traffic.pairs])
    bound = _latency_bound_s(traffic, catalog, available)
    def pair_choice(pair_and_name) -> Choice:
        p, name = pair_and_name
        return choose(p.a, p.b, p.km, p.bytes_per_sync, traffic.window_s, traffic.latency_hops,
                      traffic.other_latency_s(bound, (p.a, p.b)), catalog, available, name)
    pairs = list(zip(traffic.pairs, names))
    if workers > 1 and len(pairs) > 1:
        # in order, so the first pair that cannot be served is the one said, as one by one
        with ThreadPoolExecutor(min(workers, len(pairs))) as pool:
            choices = tuple(pool.map(pair_choice, pairs))
    else:
        choices = tuple(map(pair_choice, pairs))
    prediction = predict_job(job, traffic, _goodput(choices), _latency(choices))
    w = job.spec.wdm
    wdm = Wdm(w.rate_gbps or WDM_RATE_GBPS,
              WDM_PRICE_USD if w.price_usd is None else w.price_usd,
              WDM_POWER_W if w.power_w is None else w.power_w)
    sens = _sensitivity(job, traffic, choices, catalog, available, replan) if sensitivity else {}
    return JobPlan(job, traffic, choices, prediction, wdm, sens, catalog)


def _goodput(choices: tuple[Choice, ...]) -> dict[Pair, float]:
    """What each pair's wavelengths carry of a training flow's payload, Gb/s."""
    return {(c.a, c.b): c.capacity_gbps * GOODPUT_OF_LINE_RATE for c in choices}


def _latency(choices: tuple[Choice, ...]) -> dict[Pair, float]:
    return {(c.a, c.b): c.one_way_latency_s for c in choices}


def _latency_bound_s(traffic: JobTraffic, catalog: Catalog, available: tuple[str, ...],
                     f: float = 1.0) -> dict[Pair, float]:
    """Each pair's one-way latency before its module is chosen, with routes `f` times as
    long: the fibre plus the slowest DSP the job may use (a chain's sizing counts the other
    boundaries' latency; microseconds of DSP either way)."""
    dsp_us = max(catalog.module(m).dsp_latency_us for m in available)
    return {(p.a, p.b): (LATENCY_US_PER_KM * p.km * f + dsp_us) / 1e6 for p in traffic.pairs}


def _sensitivity(job: Job, traffic: JobTraffic, choices: tuple[Choice, ...], catalog: Catalog,
                 available: tuple[str, ...], replan: bool) -> dict:
    """Step time and utilization as distance and capacity change.

    Distance: every fibre route times a factor, up to the longest route a job file may
    give, on the planned wavelengths (only latency changes; the site pairs whose planned
    mode no longer tolerates the dispersion are named, without GNPy runs), and with
    `replan` the hardware a fresh plan would buy at that distance. Capacity: the planned
    capacity of every pair times a factor.
    """
    goodput, latency = _goodput(choices), _latency(choices)
    distance_rows = []
    unreachable: dict[tuple[str, str], float] = {}     # pair -> km where its replan failed
    longest = max(c.km for c in choices)
    for f in DISTANCE_FACTORS:
        if f > 1 and longest * f > MAX_KM:
            break
        stretched = {(c.a, c.b): c.one_way_latency_s + (f - 1) * (c.one_way_latency_s
                     - _dsp_s(catalog, c.module)) for c in choices}
        pred = predict_job(job, traffic, goodput, stretched)
        row = {"factor": f, "longest_km": round(longest * f, 3), **pred.to_dict(),
               "beyond_dispersion_tolerance": [
                   f"{c.a}-{c.b}" for c in choices
                   if planned_line(c.km * f).dispersion_ps_nm
                   > catalog.module(c.module).mode(c.mode).cd_tolerance_ps_nm],
               # the planner holds a module to its specified reach too (a tester's 800ZR
               # at 140 km, over OIF's 120, went unmarked)
               "beyond_reach": [
                   f"{c.a}-{c.b}" for c in choices
                   if catalog.module(c.module).reach_km is not None
                   and c.km * f > catalog.module(c.module).reach_km]}
        if replan:
            row.update(_replanned(f, traffic, choices, catalog, available, unreachable))
        distance_rows.append(row)
    capacity_rows = []
    for f in CAPACITY_FACTORS:
        pred = predict_job(job, traffic, {k: v * f for k, v in goodput.items()}, latency)
        capacity_rows.append({"factor": f,
                              "capacity_gbps": round(sum(c.capacity_gbps for c in choices) * f,
                                                     3),
                              **pred.to_dict()})
    return {"distance": distance_rows, "capacity": capacity_rows}


def _replanned(f: float, traffic: JobTraffic, choices: tuple[Choice, ...], catalog: Catalog,
               available: tuple[str, ...], unreachable: dict[tuple[str, str], float]) -> dict:
    """What a fresh plan buys with every fibre route `f` times as long (capex and
    wavelengths), or why none can; `unreachable` (pair -> km its replan failed at) is
    carried from factor to factor."""
    fresh, error = [], None
    # Twice the fibre of a pair nothing reached: as many spans or more, none shorter,
    # twice the dispersion and latency, so it fails again (no GNPy run needed).
    doubled = next((c for c in choices
                    if c.km * f == 2 * unreachable.get((c.a, c.b), math.nan)), None)
    if doubled is not None:
        c, km = doubled, doubled.km * f
        error = (f"{c.a} - {c.b} ({km:g} km): no module carries the sync in time, as "
                 f"none did at {km / 2:g} km")
        unreachable[(c.a, c.b)] = km
    bound = _latency_bound_s(traffic, catalog, available, f)
    for c in choices if error is None else ():
        try:
            fresh.append(cheapest(c.a, c.b, c.km * f, traffic.pair(c.a, c.b).bytes_per_sync,
                                  traffic.window_s, traffic.latency_hops,
                                  traffic.other_latency_s(bound, (c.a, c.b)), catalog,
                                  available, explain=False))
        except ValueError as exc:
            error = str(exc)
            unreachable[(c.a, c.b)] = c.km * f
            break
    if error is not None:
        return {"replanned_capex_usd": None, "replanned_error": error}
    return {"replanned_capex_usd": round(sum(x.capex_usd for x in fresh), 2),
            "replanned_wavelengths": sum(x.wavelengths for x in fresh)}


def _dsp_s(catalog: Catalog, module: str) -> float:
    return catalog.module(module).dsp_latency_us / 1e6
