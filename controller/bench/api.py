"""`dcilab bench --api`: ReservePath + ReleasePath through a real gRPC server.

A running controller (`dcilab controller`, its own process, no switch connected,
reservations committed to a temporary SQLite file as in production) on a generated large
fabric; clients are threads in this process, each with its own channel. One reservation
is a ReservePath then a ReleasePath. Two ways to load it:

- back to back (closed loop): each client asks again as soon as it is answered. This
  finds the most reservations per second; the latency it shows is mostly queueing, since
  a call waits behind the other clients' (about clients / throughput).
- at a rate (open loop): the clients together start `--api-rate` reservations per second
  on a fixed schedule, whatever the answers do. Latency is counted from when a call was
  due, not when it was sent, so a server that falls behind is charged for it.

With two or more CPUs the controller is pinned to the last one and the clients to the
rest (`dcilab controller --cpu`), unless --api-shared-cpus.

With --api-readers the rate is offered twice: alone, then while other clients loop on
ListReservations (live ones, then the whole history, page by page) and scrapers loop on
/metrics, from a process of their own (bench/readers.py). The reads are bounded by the
controller (a read budget per client and in total; /metrics rendered once per interval,
connections bounded): the p99 of ReservePath must stay under the target.

`dcilab bench` (cli/bench.py) calls `add_arguments(parser)`, and `run(args)` when `--api` is given.
"""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..argtypes import AT_LEAST_ONE, NON_NEGATIVE, NON_NEGATIVE_NUMBER, checked
from ..api.client import ApiError, Client, Unreachable
from ..api.servicers import DEFAULT_READS_PER_S
from ..fabric import parse_fabric
from ..fabric.schema import MAX_SITES
from ..lab import ControllerProcess, free_port
from . import BenchError, verdict

TARGET_P99_MS = 10.0
LISTERS, SCRAPERS = 4, 50          # the readers: listing clients, /metrics scrapers
TARGET_PER_SECOND = 500.0
TARGET_RATIO_TO_CANNED = 0.8
READERS_READY_S = 60.0              # a spawned process's imports, on a busy machine


def add_arguments(parser) -> None:
    g = parser.add_argument_group("gRPC API bench")
    g.add_argument("--api", action="store_true",
                   help="benchmark ReservePath + ReleasePath through a real gRPC server "
                        "instead of the placement policies")
    g.add_argument("--api-requests", type=AT_LEAST_ONE, default=2000, metavar="N",
                   help="reservations per measurement (default 2000)")
    g.add_argument("--api-clients", default="1,16", metavar="LIST",
                   help="concurrent clients to measure back to back, comma-separated "
                        "(default 1,16)")
    g.add_argument("--api-rate", type=NON_NEGATIVE_NUMBER, default=TARGET_PER_SECOND, metavar="R",
                   help=f"then offer R reservations/s from the largest number of clients, on "
                        f"a fixed schedule (default {TARGET_PER_SECOND:g}, the target; 0 skips)")
    g.add_argument("--api-sites", type=checked(int, lambda v: 2 <= v <= MAX_SITES,
                                                "a whole number",
                                                f"must be 2 to {MAX_SITES} (a fabric's most)"),
                   default=16, metavar="N",
                   help="sites in the generated fabric (default 16)")
    g.add_argument("--api-shared-cpus", action="store_true",
                   help="do not pin the controller to one CPU and the clients to the others")
    g.add_argument("--api-readers", action="store_true",
                   help="offer the rate again while --api-listers clients loop on "
                        "ListReservations and --api-scrapers loop on /metrics")
    g.add_argument("--api-listers", type=NON_NEGATIVE, default=None, metavar="N",
                   help=f"with --api-readers: clients looping on listings (default {LISTERS})")
    g.add_argument("--api-scrapers", type=NON_NEGATIVE, default=None, metavar="N",
                   help=f"with --api-readers: clients looping on /metrics (default {SCRAPERS})")


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


class _Samples:
    """What the client threads of one measurement record (list.append is atomic)."""

    def __init__(self):
        self.reserve_s: list[float] = []
        self.release_s: list[float] = []
        self.errors: list[str] = []


CONNECT_TIMEOUT_S = 60.0


def _cycles(address: str, pairs, count: int, offset: int, samples: _Samples,
            start: threading.Barrier, began: list[float], schedule=None) -> None:
    """`count` reservations. Back to back when `schedule` is None; otherwise reservation
    k is due at began + schedule(k) and its latency is counted from then."""
    with Client(address) as client:
        try:
            client.wait_connected(CONNECT_TIMEOUT_S)     # connected before the clock starts
        except Unreachable as exc:
            samples.errors.append(str(exc))
            start.abort()                                # no one waits for this client
            return
        try:
            start.wait(CONNECT_TIMEOUT_S)
        except threading.BrokenBarrierError:
            return
        for k in range(count):
            src, dst = pairs[(offset + k) % len(pairs)]
            due = None
            if schedule is not None:
                due = began[0] + schedule(k)
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            try:
                t0 = time.perf_counter()
                res = client.reserve(src, dst, 1.0)
                t1 = time.perf_counter()
                client.release(res.reservation_id)
                t2 = time.perf_counter()
            except (ApiError, Unreachable) as exc:
                samples.errors.append(str(exc))
                continue
            samples.reserve_s.append(t1 - (due if due is not None else t0))
            samples.release_s.append(t2 - t1)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(address: str, pairs, clients: int, requests: int, rate: float = 0.0,
             server_pid: int | None = None) -> dict:
    """Back to back with `clients` clients, or (rate > 0) `rate` reservations/s offered
    by them together, client i taking every clients-th slot of the schedule. With
    `server_pid`, also the server's CPU per reservation and how busy it kept one CPU:
    at a rate, what is left of that CPU is the headroom."""
    cpu_before = _cpu_seconds(server_pid) if server_pid else None
    samples = _Samples()
    began: list[float] = []
    start = threading.Barrier(clients + 1, action=lambda: began.append(time.perf_counter()))
    per = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]

    def schedule_of(i: int):
        return None if rate <= 0 else (lambda k: (k * clients + i) / rate)
    threads = [threading.Thread(target=_cycles, args=(address, pairs, per[i], i * 97, samples,
                                                      start, began, schedule_of(i)))
               for i in range(clients)]
    for t in threads:
        t.start()
    try:
        start.wait(CONNECT_TIMEOUT_S)
    except threading.BrokenBarrierError:
        for t in threads:
            t.join(CONNECT_TIMEOUT_S)
        raise RuntimeError(f"not every client connected within {CONNECT_TIMEOUT_S:g} s"
                           + (f": {samples.errors[0]}" if samples.errors else "")) from None
    for t in threads:
        t.join()
    wall = time.perf_counter() - began[0]
    done = len(samples.reserve_s)
    cpu = _cpu_seconds(server_pid) - cpu_before if server_pid else None
    return {
        "clients": clients, "offered_per_second": rate if rate > 0 else None,
        "reservations": done, "errors": len(samples.errors),
        "first_error": samples.errors[0] if samples.errors else None,
        "seconds": round(wall, 3),
        "reservations_per_second": round(done / wall, 1) if wall else 0.0,
        "reserve_ms_p50": round(_percentile_ms(samples.reserve_s, 0.50), 3),
        "reserve_ms_p99": round(_percentile_ms(samples.reserve_s, 0.99), 3),
        "release_ms_p50": round(_percentile_ms(samples.release_s, 0.50), 3),
        "release_ms_p99": round(_percentile_ms(samples.release_s, 0.99), 3),
        "server_cpu_ms_per_reservation": round(1e3 * cpu / done, 3) if cpu and done else None,
        "server_cpu_busy": round(cpu / wall, 3) if cpu is not None and wall else None,
    }


class _Readers:
    """The reader process (spawned: no fork of a process with gRPC threads), on the
    clients' CPUs; `result` once it has stopped."""

    def __init__(self, address: str, metrics_url: str, listers: int, scrapers: int,
                 cpus: set[int]):
        import multiprocessing
        from .readers import run_readers
        ctx = multiprocessing.get_context("spawn")
        self._stop, self._results, self._ready = ctx.Event(), ctx.Queue(), ctx.Event()
        self._proc = ctx.Process(target=run_readers, daemon=True,
                                 args=(address, metrics_url, listers, scrapers, self._stop,
                                       self._results, self._ready))
        self._cpus = cpus
        self.result: dict | None = None

    def __enter__(self) -> "_Readers":
        self._proc.start()
        try:
            os.sched_setaffinity(self._proc.pid, self._cpus)
        except OSError:
            pass
        # Looping before the clock runs: every reader has made a call.
        if not self._ready.wait(READERS_READY_S):
            self.__exit__()
            raise RuntimeError(f"the readers made no call in {READERS_READY_S:g} s")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        try:
            self.result = self._results.get(timeout=30)
        finally:
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)


def _canned(pairs, clients: int, requests: int, cpu: int | None, rate: float
            ) -> tuple[dict, dict | None]:
    """The same back-to-back load, then (rate > 0) the same rate, against a server
    answering from a canned reservation (api/canned.py), on the controller's CPU: what
    gRPC alone allows here, and what it alone costs."""
    port = free_port()
    argv = [sys.executable, "-m", "dcilab.api.canned", str(port)]
    argv += [str(cpu)] if cpu is not None else []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        if proc.stdout.readline().strip() != "serving":
            raise RuntimeError("the canned-answer server did not start")
        _progress(f"{requests} reservations, {clients} client(s) back to back"
                  f"{f', then at {rate:g}/s' if rate > 0 else ''}, canned-answer server "
                  f"(pid {proc.pid})")
        address = f"127.0.0.1:{port}"
        return (_measure(address, pairs, clients, requests, server_pid=proc.pid),
                _measure(address, pairs, clients, requests, rate, server_pid=proc.pid)
                if rate > 0 else None)
    finally:
        proc.kill()
        proc.wait()


def _progress(message: str) -> None:
    print(f"[bench --api] {message}", file=sys.stderr, flush=True)


def _split_cpus(shared: bool) -> tuple[int | None, set[int]]:
    """(the controller's CPU, the clients' CPUs): the last CPU for the controller, the
    rest for the clients; (None, all) with one CPU or when told to share."""
    cpus = os.sched_getaffinity(0)
    if shared or len(cpus) < 2:
        return None, cpus
    return max(cpus), cpus - {max(cpus)}


def _p99(r: dict) -> float:
    return max(r["reserve_ms_p99"], r["release_ms_p99"])


def _targets(back_to_back: list[dict], at_rate: dict | None,
             with_readers: dict | None = None) -> dict:
    """Each target with the measured figure it is judged on."""
    busiest = max(back_to_back, key=lambda r: r["clients"])
    single = [r for r in back_to_back if r["clients"] == 1]
    targets = {"reservations_per_second": {
        "target": TARGET_PER_SECOND, "clients": busiest["clients"],
        "measured": busiest["reservations_per_second"],
        "met": busiest["errors"] == 0
        and busiest["reservations_per_second"] >= TARGET_PER_SECOND}}
    if at_rate is not None:
        targets["p99_ms_at_rate"] = {
            "target": TARGET_P99_MS, "clients": at_rate["clients"],
            "offered_per_second": at_rate["offered_per_second"], "measured": _p99(at_rate),
            "met": at_rate["errors"] == 0 and _p99(at_rate) < TARGET_P99_MS
            and at_rate["reservations_per_second"] >= 0.97 * at_rate["offered_per_second"]}
    if with_readers is not None:
        targets["p99_ms_at_rate_with_readers"] = {
            "target": TARGET_P99_MS, "clients": with_readers["clients"],
            "offered_per_second": with_readers["offered_per_second"],
            "measured": _p99(with_readers),
            "met": with_readers["errors"] == 0 and _p99(with_readers) < TARGET_P99_MS
            and with_readers["reservations_per_second"]
            >= 0.97 * with_readers["offered_per_second"]}
    if single:
        targets["p99_ms_one_client"] = {"target": TARGET_P99_MS, "clients": 1,
                                        "measured": _p99(single[0]),
                                        "met": single[0]["errors"] == 0
                                        and _p99(single[0]) < TARGET_P99_MS}
    return targets


def run(args) -> int:
    items = [c.strip() for c in str(args.api_clients).split(",")]
    bad = [c for c in items if not (c.isascii() and c.isdigit() and 1 <= int(c) <= 256)]
    if bad:                                  # the other numbers are checked as parsed
        raise BenchError(f"dcilab bench --api: --api-clients takes client counts from 1 to 256, "
                         f"comma-separated; not {bad[0]!r}")
    levels = [int(c) for c in items]
    if not args.api_readers and (args.api_listers, args.api_scrapers) != (None, None):
        # ran without them, the counts unsaid (a hostile tester's; given at their default
        # too: a re-tester's)
        raise BenchError("dcilab bench --api: --api-listers and --api-scrapers count the "
                         "readers of --api-readers; give it too")
    if args.api_listers is None:
        args.api_listers = LISTERS
    if args.api_scrapers is None:
        args.api_scrapers = SCRAPERS
    started = time.perf_counter()
    fabric = parse_fabric(api_fabric_yaml(args.api_sites), "<generated api-bench fabric>")
    controller_cpu, client_cpus = _split_cpus(args.api_shared_cpus)
    pinning = ["--cpu", str(controller_cpu)] if controller_cpu is not None else []
    home = os.sched_getaffinity(0)
    with tempfile.TemporaryDirectory(prefix="dcilab-bench-api-") as tmp:
        topology = Path(tmp) / "api-bench.yaml"
        topology.write_text(api_fabric_yaml(args.api_sites))
        # Every client of the bench comes from 127.0.0.1, which the controller's read
        # budget takes for one client: give that address the per-client budget of as many
        # clients as there are listers (the total stays the default).
        reads = ["--reads-per-second-per-client",
                 f"{DEFAULT_READS_PER_S * max(1, args.api_listers):g}"]
        controller = ControllerProcess.listening(
            topology, timeout_s=60,
            extra_args=["--log-level", "warning", *pinning, *reads])
        try:
            os.sched_setaffinity(0, client_cpus)   # this thread; the client threads inherit
            address = controller.grpc_address
            setup_s = time.perf_counter() - started
            _progress(f"fabric {fabric.name}: {len(fabric.switches)} switches, "
                      f"{len(fabric.hosts)} hosts, {sum(1 for _ in fabric.wavelengths())} "
                      f"wavelengths; controller (pid {controller.proc.pid}) serving on {address} "
                      f"after {setup_s:.1f} s")
            pairs = _host_pairs(fabric, 256)
            # A full collection in this process would stall every client thread at once
            # (tens of ms with the fabric model alive): keep what exists out of its way.
            gc.collect()
            gc.freeze()
            _progress(f"warm-up: one reservation per host pair ({len(pairs)} pairs)")
            cold = _measure(address, pairs, 1, len(pairs))
            results = []
            server = controller.proc.pid
            for clients in levels:
                _progress(f"{args.api_requests} reservations, {clients} client(s) back to back")
                results.append(_measure(address, pairs, clients, args.api_requests,
                                        server_pid=server))
            canned, canned_at_rate = _canned(pairs, max(levels), args.api_requests,
                                             controller_cpu, args.api_rate)
            at_rate = with_readers = readers = None
            if args.api_rate > 0:
                _progress(f"{args.api_requests} reservations offered at {args.api_rate:g}/s "
                          f"by {max(levels)} clients")
                at_rate = _measure(address, pairs, max(levels), args.api_requests, args.api_rate,
                                   server_pid=server)
            if args.api_rate > 0 and args.api_readers:
                _progress(f"again, while {args.api_listers} clients loop on listings and "
                          f"{args.api_scrapers} on /metrics")
                with _Readers(address, controller.metrics_url, args.api_listers,
                              args.api_scrapers, client_cpus) as readers:
                    with_readers = _measure(address, pairs, max(levels), args.api_requests,
                                            args.api_rate, server_pid=server)
                with_readers["readers"] = readers.result
        except RuntimeError as exc:
            raise BenchError(f"dcilab bench --api: {exc}", 1)
        finally:
            os.sched_setaffinity(0, home)
            gc.unfreeze()
            controller.stop()
    report = {
        "fabric": {"name": fabric.name, "sites": len(fabric.sites),
                   "switches": len(fabric.switches), "hosts": len(fabric.hosts),
                   "wavelengths": sum(1 for _ in fabric.wavelengths())},
        "cores": len(home),
        "controller_cpu": controller_cpu, "client_cpus": sorted(client_cpus),
        "setup_seconds": round(setup_s, 2),
        "first_reservation_per_pair": {k: cold[k] for k in (
            "reservations", "reserve_ms_p50", "reserve_ms_p99")},
        "back_to_back": results, "at_rate": at_rate, "at_rate_with_readers": with_readers,
        "targets": _targets(results, at_rate, with_readers),
    }
    busiest = max(results, key=lambda r: r["clients"])
    report["canned_server"] = canned
    report["canned_server_at_rate"] = canned_at_rate
    report["targets"]["ratio_to_canned"] = {
        "target": TARGET_RATIO_TO_CANNED, "clients": canned["clients"],
        "measured": round(busiest["reservations_per_second"]
                          / max(canned["reservations_per_second"], 1e-9), 3)}
    report["targets"]["ratio_to_canned"]["met"] = (
        report["targets"]["ratio_to_canned"]["measured"] >= TARGET_RATIO_TO_CANNED)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return verdict(args, all(t["met"] for t in report["targets"].values()))


def _print_report(report: dict) -> None:
    f = report["fabric"]
    where = (f"controller on CPU {report['controller_cpu']}, clients on CPU "
             f"{','.join(map(str, report['client_cpus']))}"
             if report["controller_cpu"] is not None else "controller and clients share them")
    print(f"gRPC API bench: {f['sites']} sites, {f['switches']} switches, {f['hosts']} hosts, "
          f"{f['wavelengths']} wavelengths; {report['cores']} CPUs ({where}); state in SQLite "
          f"(WAL, synchronous=FULL)")
    cold = report["first_reservation_per_pair"]
    print(f"first reservation per host pair (paths computed): "
          f"p50 {cold['reserve_ms_p50']:.2f} ms, p99 {cold['reserve_ms_p99']:.2f} ms\n")
    print(f"{'load':<34} {'reservations/s':>14} {'reserve p50':>12} {'p99 ms':>7} "
          f"{'release p50':>12} {'p99 ms':>7} {'errors':>7}")
    rows = [(f"{r['clients']} client{'s' if r['clients'] > 1 else ''} back to back", r)
            for r in report["back_to_back"]]
    if report["at_rate"]:
        r = report["at_rate"]
        rows.append((f"{r['clients']} clients, {r['offered_per_second']:g}/s offered", r))
    if report.get("at_rate_with_readers"):
        r = report["at_rate_with_readers"]
        rows.append(("... with readers", r))
    for label, r in rows:
        print(f"{label:<34} {r['reservations_per_second']:>14.1f} {r['reserve_ms_p50']:>12.2f} "
              f"{r['reserve_ms_p99']:>7.2f} {r['release_ms_p50']:>12.2f} "
              f"{r['release_ms_p99']:>7.2f} {r['errors']:>7}")
    c = report["canned_server"]
    print(f"{'canned-answer server, ' + str(c['clients']) + ' clients':<34} "
          f"{c['reservations_per_second']:>14.1f} {c['reserve_ms_p50']:>12.2f} "
          f"{c['reserve_ms_p99']:>7.2f} {c['release_ms_p50']:>12.2f} "
          f"{c['release_ms_p99']:>7.2f} {c['errors']:>7}")
    if report.get("canned_server_at_rate"):
        r = report["canned_server_at_rate"]
        print(f"{'canned-answer server, ' + format(r['offered_per_second'], 'g') + '/s':<34} "
              f"{r['reservations_per_second']:>14.1f} {r['reserve_ms_p50']:>12.2f} "
              f"{r['reserve_ms_p99']:>7.2f} {r['release_ms_p50']:>12.2f} "
              f"{r['release_ms_p99']:>7.2f} {r['errors']:>7}")
    _print_cpu(report)
    readers = (report.get("at_rate_with_readers") or {}).get("readers")
    if readers:
        print(f"\nreaders meanwhile ({readers['seconds']:.1f} s): {readers['pages']} list pages "
              f"({readers['records']} reservations), {readers['list_waits']} told to wait by "
              f"the read budget, {readers['list_errors']} errors; {readers['scrapes']} scrapes "
              f"(p50 {readers['scrape_ms_p50']} ms, p99 {readers['scrape_ms_p99']} ms), "
              f"{readers['scrapes_503']} answered 503, {readers['scrape_errors']} errors")
    print()
    for name, t in report["targets"].items():
        what = {"reservations_per_second": f">= {t['target']:g} reservations/s with "
                                           f"{t['clients']} clients back to back",
                "ratio_to_canned": f">= {t['target']:g} of a canned-answer server's "
                                   f"reservations/s ({t['clients']} clients)",
                "p99_ms_at_rate": f"p99 < {t['target']:g} ms with {t['clients']} clients at "
                                  f"{t.get('offered_per_second') or 0:g}/s offered",
                "p99_ms_at_rate_with_readers":
                    f"p99 < {t['target']:g} ms with {t['clients']} clients at "
                    f"{t.get('offered_per_second') or 0:g}/s offered, readers looping",
                "p99_ms_one_client": f"p99 < {t['target']:g} ms with 1 client"}[name]
        print(f"target {what}: {t['measured']:g} -> {'met' if t['met'] else 'MISSED'}")


def _print_cpu(report: dict) -> None:
    """The server's CPU per reservation (ReservePath + ReleasePath) and how busy it kept
    its CPU: at the offered rate, the rest of that CPU is the controller's headroom."""
    rows = [(f"controller, {r['clients']} client{'s' if r['clients'] > 1 else ''} back to back",
             r) for r in report["back_to_back"]]
    rows += [("controller at the rate", report["at_rate"]),
             ("controller at the rate, readers looping", report.get("at_rate_with_readers")),
             ("canned-answer server back to back", report["canned_server"]),
             ("canned-answer server at the rate", report.get("canned_server_at_rate"))]
    rows = [(label, r) for label, r in rows if r and r.get("server_cpu_ms_per_reservation")]
    if not rows:
        return
    print(f"\n{'server CPU':<42} {'ms per reservation':>18} {'busy':>6}")
    for label, r in rows:
        print(f"{label:<42} {r['server_cpu_ms_per_reservation']:>18.3f} "
              f"{100 * r['server_cpu_busy']:>5.0f}%")
