"""`dcilab bench --api`: ReservePath + ReleasePath through a real gRPC server.

A running controller (`dcilab controller`, its own process, no switch connected,
reservations persisted in a temporary SQLite file as in production) on a generated large
fabric; clients are threads in this process, each with its own channel. Measured with 1
and with 16 concurrent clients: reservations per second (one reservation = ReservePath
then ReleasePath) and the latency of each call. Clients and controller share the
machine's two cores.

bench.py calls `add_api_arguments(parser)` and, when --api is given, `run_api_bench(args)`.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..api.client import ApiError, Client, Unreachable
from ..fabric import parse_fabric
from ..lab import ControllerProcess, free_port

TARGET_P99_MS = 10.0
TARGET_PER_SECOND = 500.0


def add_api_arguments(parser) -> None:
    g = parser.add_argument_group("gRPC API bench")
    g.add_argument("--api", action="store_true",
                   help="benchmark ReservePath + ReleasePath through a real gRPC server "
                        "instead of the placement policies")
    g.add_argument("--api-requests", type=int, default=2000, metavar="N",
                   help="reservations per concurrency level (default 2000)")
    g.add_argument("--api-clients", default="1,16", metavar="LIST",
                   help="concurrent clients to measure, comma-separated (default 1,16)")
    g.add_argument("--api-sites", type=int, default=16, metavar="N",
                   help="sites in the generated fabric (default 16)")


def api_fabric_yaml(sites: int = 16, spines: int = 4, leaves: int = 4, hosts_per_leaf: int = 8,
                    gateways: int = 2, wavelengths: int = 8) -> str:
    """A ring of `sites` sites plus (above 8 sites) a chord from every other site to the
    one four further round; every line system carries `wavelengths` 400ZR+ at 400G."""
    names = [f"s{i + 1:02d}" for i in range(sites)]
    out = ["name: api-bench", "scale: 1.0e-4", "sites:"]
    out += [f"  - {{name: {n}, spines: {spines}, leaves: {leaves}, "
            f"hosts_per_leaf: {hosts_per_leaf}, gateways: {gateways}, fabric_gbps: 800}}"
            for n in names]
    out.append("dci_links:")
    pairs = [(i, (i + 1) % sites, 100) for i in range(sites if sites > 2 else 1)]
    if sites > 8:
        pairs += [(i, (i + 4) % sites, 250) for i in range(0, sites, 2)]
    out += [f"  - {{name: {names[a]}-{names[b]}, a: {names[a]}, b: {names[b]}, fiber_km: {km}, "
            f"module: 400ZR+, mode: 400G, wavelengths: {wavelengths}}}" for a, b, km in pairs]
    return "\n".join(out) + "\n"


def _percentile_ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def _host_pairs(fabric, n: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    hosts = list(fabric.hosts.values())
    pairs = []
    while len(pairs) < n:
        a, b = rng.sample(hosts, 2)
        if a.site != b.site:
            pairs.append((a.name, b.name))
    return pairs


def _cycles(address: str, pairs, count: int, offset: int, reserve_s: list, release_s: list,
            errors: list, start: threading.Barrier) -> None:
    with Client(address) as client:
        client.fabric()                                  # connected before the clock starts
        start.wait()
        for k in range(count):
            src, dst = pairs[(offset + k) % len(pairs)]
            try:
                t0 = time.perf_counter()
                res = client.reserve(src, dst, 1.0)
                t1 = time.perf_counter()
                client.release(res.reservation_id)
                t2 = time.perf_counter()
            except (ApiError, Unreachable) as exc:
                errors.append(str(exc))
                continue
            reserve_s.append(t1 - t0)
            release_s.append(t2 - t1)


def _measure(address: str, pairs, clients: int, requests: int) -> dict:
    reserve_s: list[float] = []
    release_s: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    per = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    threads = [threading.Thread(target=_cycles, args=(address, pairs, per[i], i * 97, reserve_s,
                                                      release_s, errors, start))
               for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    done = len(reserve_s)
    return {
        "clients": clients, "reservations": done, "errors": len(errors),
        "first_error": errors[0] if errors else None, "seconds": round(wall, 3),
        "reservations_per_second": round(done / wall, 1) if wall else 0.0,
        "reserve_ms_p50": round(_percentile_ms(reserve_s, 0.50), 3),
        "reserve_ms_p99": round(_percentile_ms(reserve_s, 0.99), 3),
        "release_ms_p50": round(_percentile_ms(release_s, 0.50), 3),
        "release_ms_p99": round(_percentile_ms(release_s, 0.99), 3),
    }


def _progress(message: str) -> None:
    print(f"[bench --api] {message}", file=sys.stderr, flush=True)


def run_api_bench(args) -> int:
    levels = [int(c) for c in str(args.api_clients).split(",") if c.strip()]
    if not levels or min(levels) < 1 or args.api_requests < 1 or args.api_sites < 2:
        print("dcilab bench --api: --api-clients needs positive counts, --api-requests at "
              "least 1, --api-sites at least 2", file=sys.stderr)
        return 2
    started = time.perf_counter()
    fabric = parse_fabric(api_fabric_yaml(args.api_sites), "<generated api-bench fabric>")
    with tempfile.TemporaryDirectory(prefix="dcilab-bench-api-") as tmp:
        topology = Path(tmp) / "api-bench.yaml"
        topology.write_text(api_fabric_yaml(args.api_sites))
        controller = ControllerProcess(topology, free_port(), extra_args=["--log-level", "warning"])
        try:
            controller.wait_listening(timeout_s=60)
            address = controller.grpc_address
            setup_s = time.perf_counter() - started
            _progress(f"fabric {fabric.name}: {len(fabric.switches)} switches, "
                      f"{len(fabric.hosts)} hosts, {sum(1 for _ in fabric.wavelengths())} "
                      f"wavelengths; controller (pid {controller.proc.pid}) serving on {address} "
                      f"after {setup_s:.1f} s")
            pairs = _host_pairs(fabric, 256)
            _progress(f"warm-up: one reservation per host pair ({len(pairs)} pairs)")
            cold = _measure(address, pairs, 1, len(pairs))
            results = []
            for clients in levels:
                _progress(f"{args.api_requests} reservations with {clients} client(s)")
                results.append(_measure(address, pairs, clients, args.api_requests))
        except RuntimeError as exc:
            print(f"dcilab bench --api: {exc}", file=sys.stderr)
            return 1
        finally:
            controller.stop()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for r in results:
        r["meets_targets"] = (r["errors"] == 0 and r["reserve_ms_p99"] < TARGET_P99_MS
                              and r["release_ms_p99"] < TARGET_P99_MS
                              and r["reservations_per_second"] >= TARGET_PER_SECOND)
    report = {
        "fabric": {"name": fabric.name, "sites": len(fabric.sites),
                   "switches": len(fabric.switches), "hosts": len(fabric.hosts),
                   "wavelengths": sum(1 for _ in fabric.wavelengths())},
        "cores": cores, "setup_seconds": round(setup_s, 2),
        "targets": {"p99_ms_below": TARGET_P99_MS, "reservations_per_second_at_least":
                    TARGET_PER_SECOND},
        "first_reservation_per_pair": {k: cold[k] for k in (
            "reservations", "reserve_ms_p50", "reserve_ms_p99")},
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    f = report["fabric"]
    print(f"gRPC API bench: {f['sites']} sites, {f['switches']} switches, {f['hosts']} hosts, "
          f"{f['wavelengths']} wavelengths; {cores} cores; state in SQLite (WAL, synchronous=FULL)")
    print(f"first reservation per host pair (paths computed): "
          f"p50 {cold['reserve_ms_p50']:.2f} ms, p99 {cold['reserve_ms_p99']:.2f} ms")
    print(f"\n{'clients':>7} {'reservations/s':>15} {'reserve p50':>12} {'p99 ms':>8} "
          f"{'release p50':>12} {'p99 ms':>8} {'errors':>7}  targets (p99 < "
          f"{TARGET_P99_MS:g} ms, >= {TARGET_PER_SECOND:g}/s)")
    for r in results:
        print(f"{r['clients']:>7} {r['reservations_per_second']:>15.1f} "
              f"{r['reserve_ms_p50']:>12.2f} {r['reserve_ms_p99']:>8.2f} "
              f"{r['release_ms_p50']:>12.2f} {r['release_ms_p99']:>8.2f} {r['errors']:>7}  "
              f"{'met' if r['meets_targets'] else 'missed'}")
    return 0
