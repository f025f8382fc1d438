"""`dcilab bench --admission`: reservation admission against the offline optimum.

For each fabric (the repository topologies, the three-site fabric of issue 11, and a
generated 16-site ring with chords) and each request sequence (random host pairs, sizes,
arrivals and holding times; with or without selectors and latency bounds), the same
sequence is run through the reservation book twice:

- `repath`: today's admission (a full aggregate moves as a whole; one other aggregate may
  be moved aside; then every movable aggregate may be re-packed, `te.repack`; refused
  only when that finds no room);
- `pinned`: the previous rule, as the baseline: a pair's later reservations only on the
  path its first one took, and no rearrangement.

After every arrival and release, every directed link's reservations are summed from the
reservations' own hops (not the book's ledger) and checked against the link's reservable
capacity: an overbooked link is reported.

The offline optimum sees the whole sequence: it chooses which requests to admit and, for
each, a route and one wavelength per DCI hop, so that at every arrival the live requests
fit every directed wavelength and host link (at the same reservable fraction), each
request within its latency bound, maximizing the Gb/s admitted. It is a MILP solved with
HiGHS (`scipy.optimize.milp`) within a time limit; when it does not finish, the LP
relaxation's bound is reported instead (`optimum_kind: lp_bound`). It relaxes two of the
online rules, so it is an upper bound on the true optimum and the ratio is conservative:
the reservations of one pair without a selector may take different paths, and links
inside sites are not modelled (the fabrics here size them above the wavelengths).
Candidate routes are the placement candidates (`te.placement.Candidates`) with a wide
stretch, so they include every route the book could take in these fabrics.

`fcfs` is what the best first-come-first-served admission takes of the same sequence:
every request admitted that fits once everything live is re-packed anywhere (a MILP
feasibility problem per arrival, `fcfs_bound`), as aggregates (`fcfs_gbps`) and one
reservation at a time (`fcfs_split_gbps`). No admission that refuses only what cannot
fit does better by more than chance (which later requests an early admission blocks);
where it is below the optimum, the gap is the optimum's knowledge of the future.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path


from ..argtypes import AT_LEAST_ONE, POSITIVE_SECONDS, checked
from ..fabric import Fabric, load_fabric, parse_fabric
from ..fabric.model import INTRA_SITE_LATENCY_MS
from ..fabric.schema import MAX_SITES
from ..te.milp import Milp
from ..te.placement import Candidates
from ..te.repack import Unit, repack
from ..te.reservations import (DEFAULT_RESERVABLE_FRACTION, AdmissionError, ReservationBook,
                               ReservationRequest, Selector, State)
from ..te.scenarios import large_fabric_yaml
from . import verdict

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
TARGET_RATIO = 0.95
SIZES_GBPS = (10, 25, 50, 50, 100, 100, 200)

# The fabric of issue 11: three 400G wavelengths frankfurt-amsterdam, and a way through
# paris; intra-site links sized above the wavelengths.
THREE_SITES = """
name: three-site
scale: 1.0e-4
sites:
  - {name: fra, spines: 2, leaves: 2, hosts_per_leaf: 2, gateways: 1, fabric_gbps: 1600}
  - {name: ams, spines: 2, leaves: 2, hosts_per_leaf: 2, gateways: 1, fabric_gbps: 1600}
  - {name: par, spines: 2, leaves: 1, hosts_per_leaf: 2, gateways: 1, fabric_gbps: 1600}
dci_links:
  - {name: fra-ams, a: fra, b: ams, fiber_km: 80, module: 400ZR, wavelengths: 3}
  - {name: fra-par, a: fra, b: par, fiber_km: 90, module: 400ZR, wavelengths: 1}
  - {name: par-ams, a: par, b: ams, fiber_km: 90, module: 400ZR, wavelengths: 1}
"""


def add_arguments(parser) -> None:
    g = parser.add_argument_group("reservation admission bench")
    g.add_argument("--admission", action="store_true",
                   help="benchmark reservation admission (and the previous rule) against the "
                        "offline optimum on random request sequences")
    g.add_argument("--admission-requests", type=AT_LEAST_ONE, default=120, metavar="N",
                   help="requests per sequence (default 120)")
    g.add_argument("--admission-seeds", type=AT_LEAST_ONE, default=2, metavar="K",
                   help="random sequences per fabric and kind (default 2)")
    g.add_argument("--admission-time-limit", type=POSITIVE_SECONDS, default=30.0, metavar="S",
                   help="seconds for each MILP before its LP bound is used (default 30)")
    g.add_argument("--admission-sites", type=checked(int, lambda v: 3 <= v <= MAX_SITES,
                                                     "a whole number",
                                                     f"must be 3 (a ring) to {MAX_SITES} "
                                                     f"(a fabric's most)"),
                   default=16, metavar="N", help="sites of the generated fabric (default 16)")


def fabrics(sites: int = 16) -> dict[str, Fabric]:
    # The generated ring: two wavelengths per line system so that requests contend; its
    # intra-site links (fabric_gbps) above the line systems, as the MILP assumes.
    ring = large_fabric_yaml(sites, wavelengths=2).replace("fabric_gbps: 400",
                                                           "fabric_gbps: 3200")
    return {"two-dc": load_fabric(TOPOLOGIES / "two-dc.yaml"),
            "four-dc-ring": load_fabric(TOPOLOGIES / "four-dc-ring.yaml"),
            "three-site": parse_fabric(THREE_SITES, "<three-site>"),
            f"ring-{sites}": parse_fabric(ring, "<generated ring>")}


# --- request sequences -------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    request: ReservationRequest
    arrive: int                  # the step it arrives at
    leave: int                   # the step it is released at (after the arrivals)


def sequence(fabric: Fabric, n: int, seed: int, selectors: bool, bounds: bool) -> list[Ask]:
    """`n` requests, one per step, each held for a random number of steps (mean n/3).
    Host pairs concentrate on a few hot site pairs (so that the network fills); with
    `selectors` half carry a TCP destination port of their own; with `bounds` a third
    carry a latency bound 1.0-1.5 x the pair's unloaded shortest latency."""
    rng = random.Random(seed)
    sites = [s.name for s in fabric.sites]
    hosts = {s: [h.name for h in fabric.hosts_of(s)] for s in sites}
    hot = [tuple(rng.sample(sites, 2)) for _ in range(max(1, len(sites) // 3))]
    book = ReservationBook(fabric)
    out = []
    for i in range(n):
        a, b = rng.choice(hot) if rng.random() < 0.7 else tuple(rng.sample(sites, 2))
        src, dst = rng.choice(hosts[a]), rng.choice(hosts[b])
        sel = Selector(6, 5000 + i, 5000 + i) if selectors and rng.random() < 0.5 else None
        bound = None
        if bounds and rng.random() < 0.33:
            shortest = book._find(src, dst, 0.0, None)[0]
            bound = round(shortest * rng.uniform(1.0, 1.5) + 1e-6, 6)
        hold = max(1, round(rng.expovariate(3.0 / n)))
        req = ReservationRequest(src, dst, float(rng.choice(SIZES_GBPS)), bound,
                                 request_id=f"q{i}", selector=sel)
        out.append(Ask(req, i, i + hold))
    return out


# --- online ------------------------------------------------------------------------------


def overbooked(fabric: Fabric, book: ReservationBook, fraction: float) -> list[str]:
    """Directed links whose live reservations, summed from their own hops, exceed the
    link's reservable capacity. A PROTECTED one's standby counts on the links only its
    standby crosses, shared: there the largest sum, over single risk events (a line
    system, an SRLG, a gateway), of the standbys whose primaries that event fails."""
    events = {d.name: [f"ls {d.name}"] + [f"srlg {g}" for g in d.srlg]
              for d in fabric.spec.dci_links}
    load: dict[tuple[str, str], float] = {}
    standby: dict[tuple[str, str], dict[str, float]] = {}
    for res in book.live():
        if res.state == State.DEGRADED:
            continue
        gbps, src = res.request.bandwidth_gbps, res.request.src_host
        primary = {(src, src)} | {(h.link, h.switch) for h in res.hops}
        for step in primary:
            load[step] = load.get(step, 0.0) + gbps
        fails = {e for h in res.hops for e in events.get(fabric.link(h.link).line_system, ())}
        # and each gateway its wavelengths join but the first (the ingress, which its
        # standby shares), where its standby does not cross it too
        crossed = {h.switch for h in res.standby}
        ends = [end for h in res.hops if fabric.link(h.link).wavelength
                for end in (h.switch, fabric.link(h.link).other(h.switch).node)][1:]
        fails |= {f"gateway {g}" for g in ends if g not in crossed}
        for step in {(h.link, h.switch) for h in res.standby} - primary:
            need = standby.setdefault(step, {})
            for e in fails:
                need[e] = need.get(e, 0.0) + gbps
    for step, need in standby.items():
        load[step] = load.get(step, 0.0) + max(need.values(), default=0.0)
    return [f"{link} from {frm}: {gbps:g} Gb/s" for (link, frm), gbps in load.items()
            if gbps > book.engine.rate_gbps(fabric.link(link)) * fraction + 1e-6]


def run_online(fabric: Fabric, asks: list[Ask], rearrange: bool,
               fraction: float = DEFAULT_RESERVABLE_FRACTION) -> dict:
    book = ReservationBook(fabric, fraction, rearrange=rearrange)
    leaving: dict[int, list[str]] = {}
    admitted, gbps, problems, moves = 0, 0.0, [], 0
    started = time.perf_counter()
    for ask in asks:
        for rid in leaving.pop(ask.arrive, []):
            book.end(rid, State.RELEASED)
        for step in sorted(s for s in leaving if s < ask.arrive):
            for rid in leaving.pop(step):
                book.end(rid, State.RELEASED)
        try:
            res, moved = book.admit_moving(ask.request, ask.request.request_id, ask.arrive)
        except AdmissionError:
            pass
        else:
            admitted += 1
            gbps += ask.request.bandwidth_gbps
            moves += len(moved)
            leaving.setdefault(ask.leave, []).append(res.reservation_id)
        problems += overbooked(fabric, book, fraction)
    elapsed = time.perf_counter() - started
    return {"requests_admitted": admitted, "gbps_admitted": gbps, "aggregate_moves": moves,
            "overbooked_links": len(problems), "overbooked_examples": problems[:3],
            "admission_ms_mean": round(1e3 * elapsed / max(1, len(asks)), 3)}


# --- the best first-come-first-served admission -----------------------------------------


def fcfs_bound(fabric: Fabric, asks: list[Ask], per_reservation: bool,
               time_limit_s: float = 2.0,
               fraction: float = DEFAULT_RESERVABLE_FRACTION) -> dict:
    """What admitting every request that fits, with every live one free to move anywhere
    at every arrival (unlimited re-packing, `te.repack`), takes of the sequence: the most
    any admission that refuses only what cannot fit can take (the packing chosen at one
    step never limits a later one, since everything may move again). Links inside sites
    are not modelled, as for the optimum. `per_reservation`: each reservation is placed
    on its own (as the optimum assumes); otherwise a pair's reservations without a
    selector move as one aggregate, one path (as the switches' rules and meters do)."""
    cands = Candidates(fabric, max_stretch=100.0, max_routes=16)
    host_ms = 2 * INTRA_SITE_LATENCY_MS
    capacity = {w: c * fraction for w, c in cands.capacity_bps.items()}
    live: dict[int, Ask] = {}
    host_load: dict[tuple[str, str], float] = {}
    admitted, gbps, unsure = 0, 0.0, 0
    for i, ask in enumerate(asks):
        for j in [j for j, a in live.items() if a.leave <= ask.arrive]:
            gone = live.pop(j).request
            for key in ((gone.src_host, gone.src_host), (gone.dst_host, "in")):
                host_load[key] -= gone.bandwidth_gbps
        req = ask.request
        nic = min(fabric.link(req.src_host).rate_gbps, fabric.link(req.dst_host).rate_gbps)
        if any(host_load.get(k, 0.0) + req.bandwidth_gbps > nic * fraction + 1e-9
               for k in ((req.src_host, req.src_host), (req.dst_host, "in"))):
            continue
        group: dict[object, list[ReservationRequest]] = {}
        for j, a in list(live.items()) + [(i, ask)]:
            r = a.request
            key = j if per_reservation else (r.src_host, r.dst_host, r.selector)
            group.setdefault(key, []).append(r)
        units = []
        for rs in group.values():
            src, dst = fabric.hosts[rs[0].src_host], fabric.hosts[rs[0].dst_host]
            if src.site == dst.site:
                continue
            bounds = [r.max_latency_ms for r in rs if r.max_latency_ms]
            routes = tuple(r for r in cands.routes(src.site, dst.site)
                           if not bounds or r.latency_ns / 1e6 + host_ms <= min(bounds) + 1e-9)
            units.append(Unit(sum(r.bandwidth_gbps for r in rs) * 1e9, routes))
        if units and repack(units, capacity, time_limit_s) is None:
            unsure += 1
            continue
        live[i] = ask
        for key in ((req.src_host, req.src_host), (req.dst_host, "in")):
            host_load[key] = host_load.get(key, 0.0) + req.bandwidth_gbps
        admitted += 1
        gbps += req.bandwidth_gbps
    return {"requests_admitted": admitted, "gbps_admitted": gbps}


# --- offline optimum ----------------------------------------------------------------------


def optimum(fabric: Fabric, asks: list[Ask], time_limit_s: float,
            fraction: float = DEFAULT_RESERVABLE_FRACTION) -> dict:
    """The most Gb/s any admission could take of the sequence (see the module doc)."""
    cands = Candidates(fabric, max_stretch=100.0, max_routes=16)
    host_ms = 2 * INTRA_SITE_LATENCY_MS                  # the two host links
    model = Milp()                                       # maximizes Gb/s: minimizes -Gb/s
    x_cols: list[list[int]] = []                         # per ask: its route columns
    usage: dict[tuple[str, str], list[tuple[int, int]]] = {}   # link -> [(ask, column)]
    for i, ask in enumerate(asks):
        req = ask.request
        src, dst = fabric.hosts[req.src_host], fabric.hosts[req.dst_host]
        mine = []
        for route in cands.routes(src.site, dst.site):
            if req.max_latency_ms is not None and \
                    route.latency_ns / 1e6 + host_ms > req.max_latency_ms + 1e-9:
                continue
            x = model.column(cost=-req.bandwidth_gbps)
            mine.append(x)
            for key in ((req.src_host, req.src_host), (req.dst_host, dst.leaf)):
                usage.setdefault(key, []).append((i, x))
            for hop in route.hops:
                ys = [model.column() for _ in hop.wavelengths]
                model.row([(y, 1.0) for y in ys] + [(x, -1.0)], 0.0, 0.0)   # sum_w y = x
                for y, w in zip(ys, hop.wavelengths):
                    usage.setdefault(w, []).append((i, y))
        x_cols.append(mine)
    if model.columns == 0:
        return {"gbps": 0.0, "requests": 0, "kind": "milp", "seconds": 0.0}
    for mine in x_cols:                                   # admit at most once
        if mine:
            model.row([(c, 1.0) for c in mine], upper=1.0)
    for link, uses in usage.items():                      # capacity at every arrival
        cap = fabric.link(link[0]).rate_gbps * fraction
        for t in sorted({asks[i].arrive for i, _ in uses}):
            live = [(c, asks[i].request.bandwidth_gbps) for i, c in uses
                    if asks[i].arrive <= t < asks[i].leave]
            if sum(v for _, v in live) > cap + 1e-9:      # rows that cannot bind are left out
                model.row(live, upper=cap)
    started = time.perf_counter()
    res = model.solve(time_limit_s)
    seconds = time.perf_counter() - started
    if res.status == 0 and res.x is not None:
        chosen = [i for i, mine in enumerate(x_cols) if any(res.x[x] > 0.5 for x in mine)]
        return {"gbps": sum(asks[i].request.bandwidth_gbps for i in chosen),
                "requests": len(chosen), "kind": "milp", "seconds": round(seconds, 2)}
    relaxed = model.solve(relax=True)
    bound = -relaxed.fun if relaxed.status == 0 else math.inf
    dual = getattr(res, "mip_dual_bound", None)
    if dual is not None and math.isfinite(dual):
        bound = min(bound, -dual)
    return {"gbps": bound, "requests": None, "kind": "lp_bound", "seconds": round(seconds, 2)}


# --- the bench ----------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"[bench --admission] {message}", file=sys.stderr, flush=True)


def scenario(name: str, fabric: Fabric, kind: str, seed: int, n: int,
             time_limit_s: float) -> dict:
    selectors, bounds = kind == "selectors+bounds", kind == "selectors+bounds"
    asks = sequence(fabric, n, seed, selectors, bounds)
    best = optimum(fabric, asks, time_limit_s)
    out = {"fabric": name, "sequence": kind, "seed": seed, "requests": n,
           "requested_gbps": sum(a.request.bandwidth_gbps for a in asks),
           "optimum_gbps": best["gbps"], "optimum_requests": best["requests"],
           "optimum_kind": best["kind"], "optimum_seconds": best["seconds"]}
    fcfs = fcfs_bound(fabric, asks, per_reservation=False)
    fcfs_split = fcfs_bound(fabric, asks, per_reservation=True)
    out["fcfs_gbps"], out["fcfs_requests"] = fcfs["gbps_admitted"], fcfs["requests_admitted"]
    out["fcfs_split_gbps"] = fcfs_split["gbps_admitted"]
    out["fcfs_ratio_to_optimum"] = (round(max(fcfs["gbps_admitted"], fcfs_split["gbps_admitted"])
                                          / best["gbps"], 4) if best["gbps"] else 1.0)
    for rule, rearrange in (("repath", True), ("pinned", False)):
        got = run_online(fabric, asks, rearrange)
        got["ratio_to_optimum"] = (round(got["gbps_admitted"] / best["gbps"], 4)
                                   if best["gbps"] else 1.0)
        out[rule] = got
    return out


def run(args) -> int:
    results = []
    for name, fabric in fabrics(args.admission_sites).items():
        for kind in ("plain", "selectors+bounds"):
            for seed in range(1, args.admission_seeds + 1):
                _progress(f"{name} {kind} seed {seed}: {args.admission_requests} requests")
                results.append(scenario(name, fabric, kind, seed, args.admission_requests,
                                        args.admission_time_limit))
    exact = [r for r in results if r["optimum_kind"] == "milp"]
    summary = {
        "scenarios": len(results), "optimum_exact": len(exact),
        "min_ratio_exact": min((r["repath"]["ratio_to_optimum"] for r in exact), default=None),
        "min_ratio_exact_pinned": min((r["pinned"]["ratio_to_optimum"] for r in exact),
                                      default=None),
        "min_fcfs_ratio_exact": min((r["fcfs_ratio_to_optimum"] for r in exact), default=None),
        "overbooked_links": sum(r[k]["overbooked_links"] for r in results
                                for k in ("repath", "pinned")),
        "target_ratio": TARGET_RATIO}
    summary["met"] = (summary["overbooked_links"] == 0 and bool(exact)
                      and summary["min_ratio_exact"] >= TARGET_RATIO)
    if args.json:
        print(json.dumps({"results": results, "summary": summary}, indent=2))
        return verdict(args, summary["met"])
    print(f"{'fabric':<14}{'sequence':<18}{'seed':>4}{'optimum Gb/s':>14}{'kind':>10}"
          f"{'repath Gb/s':>13}{'ratio':>7}{'pinned Gb/s':>13}{'ratio':>7}{'fcfs Gb/s':>11}{'ratio':>7}"
          f"{'ms':>7}{'reqs r/p/opt':>15}")
    for r in results:
        opt_n = r["optimum_requests"] if r["optimum_requests"] is not None else "-"
        print(f"{r['fabric']:<14}{r['sequence']:<18}{r['seed']:>4}{r['optimum_gbps']:>14.0f}"
              f"{r['optimum_kind']:>10}{r['repath']['gbps_admitted']:>13.0f}"
              f"{r['repath']['ratio_to_optimum']:>7.3f}{r['pinned']['gbps_admitted']:>13.0f}"
              f"{r['pinned']['ratio_to_optimum']:>7.3f}"
              f"{max(r['fcfs_gbps'], r['fcfs_split_gbps']):>11.0f}{r['fcfs_ratio_to_optimum']:>7.3f}"
              f"{r['repath']['admission_ms_mean']:>7.2f}"
              f"{r['repath']['requests_admitted']:>7}/{r['pinned']['requests_admitted']}/{opt_n}")
    print(f"exact optimum in {summary['optimum_exact']} of {summary['scenarios']} scenarios; "
          f"lowest ratio where exact: repath {summary['min_ratio_exact']}, pinned "
          f"{summary['min_ratio_exact_pinned']} (target >= {TARGET_RATIO}); best first come first "
          f"served (every request that fits admitted, unlimited re-packing): "
          f"{summary['min_fcfs_ratio_exact']}; overbooked links: "
          f"{summary['overbooked_links']}")
    return verdict(args, summary["met"])
