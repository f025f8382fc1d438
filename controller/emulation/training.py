"""Training steps on the emulation: a compute phase, then the sync as real TCP flows.

A step starts its compute (a wait: the hosts have no GPUs); `overlap_s` before the
compute ends, every sync flow sends its burst at once; the next step begins only when the
last byte has arrived. That is the periodic, bursty, low-entropy traffic of data-parallel
training. The flows are persistent TCP connections (`sync_agent`), opened before the
first step and kept, as NCCL keeps its channels: every step's sync reuses the same
5-tuples. Measured per step: the step time, the sync time (first burst started to last
byte arrived), the exposed part (step time beyond compute), compute utilization, and,
to see where the time goes, each flow's start, first and last byte, and the bytes each
wavelength delivered in each direction.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .drops import queue_drop_counts
from .network import Emulation, EmulationError
from .ovs import OVS_PIDFILE
from .shaping import queue_lines, run_batch, wavelength_ends
from .traffic import delivered_bytes, interface_rx_bytes

BASE_PORT = 5601
FLOW_TIMEOUT_S = 900.0
ASK_S = 0.25               # a burst's moving deadline (and its re-pacing) asked this often
AGENT = [sys.executable, "-m", "dcilab.emulation.sync_agent"]


@dataclass(frozen=True)
class Transfer:
    src: str          # host name
    dst: str
    bytes: int
    pace_mbps: float = 0.0     # the sender's rate cap (kernel TCP pacing); 0: none


@dataclass
class StepResult:
    step: int
    compute_s: float
    step_s: float
    sync_s: float
    exposed_s: float
    flow_mbps: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # per flow, seconds from the sync's start: burst started, first and last byte arrived
    flow_times: list[tuple[float, float, float]] = field(default_factory=list)
    wavelength_bytes: dict[str, int] = field(default_factory=dict)   # "link from switch"
    wavelength_drops: dict[str, int] = field(default_factory=dict)   # its queue's drops
    # ovs-vswitchd during the sync, seconds per second: on a CPU, and waiting for one
    ovs_cpu: float = 0.0
    ovs_wait: float = 0.0
    started_at: float = 0.0    # wall clock (time.time()) at the step's start

    @property
    def compute_utilization(self) -> float:
        return self.compute_s / self.step_s if self.step_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {"step": self.step, "step_s": round(self.step_s, 4),
                "sync_s": round(self.sync_s, 4), "exposed_s": round(self.exposed_s, 4),
                "compute_utilization": round(self.compute_utilization, 4),
                "flow_mbps": [round(m, 3) for m in self.flow_mbps], "errors": self.errors,
                "flow_times_s": [[round(t, 3) for t in ft] for ft in self.flow_times],
                "wavelength_bytes": self.wavelength_bytes,
                "wavelength_drops": self.wavelength_drops,
                "ovs_cpu": round(self.ovs_cpu, 3), "ovs_wait": round(self.ovs_wait, 3)}


class SyncFlows:
    """The sync's persistent connections, one per transfer: opened once, then one burst of
    each transfer's bytes per `burst()`. A context manager: it stops every process."""

    def __init__(self, emu: Emulation, transfers: Sequence[Transfer],
                 base_port: int = BASE_PORT, timeout_s: float = 30.0, congestion: str = ""):
        self.emu, self.transfers = emu, list(transfers)
        self.receivers: list[subprocess.Popen] = []
        self.senders: list[subprocess.Popen] = []
        try:
            for i, t in enumerate(self.transfers):
                self.receivers.append(self._start(t.dst, ["recv", "--port", str(base_port + i),
                                                          "--bytes", str(t.bytes)]))
            self._expect(self.receivers, "listening", timeout_s)
            for i, t in enumerate(self.transfers):
                self.senders.append(self._start(t.src, [
                    "send", "--dst", emu.fabric.hosts[t.dst].ip, "--port", str(base_port + i),
                    "--bytes", str(t.bytes), "--cc", congestion,
                    "--pace-mbps", f"{t.pace_mbps:.6f}"], stdin=True))
            self._expect(self.senders, "connected", timeout_s)
        except BaseException:
            self.close()
            raise

    def _start(self, host: str, args: list[str], stdin: bool = False) -> subprocess.Popen:
        proc = self.emu.host(host).popen(
            [*AGENT, *args], stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.emu.adopt(proc.pid, AGENT[-1])       # a killed run's cleanup stops it too
        return proc

    def _expect(self, procs, word: str, timeout_s: float) -> None:
        for proc, line in zip(procs, _one_line_each(procs, time.monotonic() + timeout_s)):
            if line != word:
                err = proc.stderr.read().decode(errors="replace") if proc.poll() is not None else ""
                raise RuntimeError(f"sync flow agent did not report {word!r}: {line!r} "
                                   f"{err.strip()[-300:]}")

    def burst(self, timeout_s: float = FLOW_TIMEOUT_S,
              paces: Sequence[float] | None = None,
              later: Callable[[], float | None] | None = None) -> list[dict | None]:
        """Every flow sends its bytes at once, each paced at `paces` (Mb/s, 0 none) from
        now on if given; returns, per flow, {"start", "first", "last"} (monotonic
        seconds), or None for a flow that did not finish in time: within `timeout_s`, or
        by the later deadline `later()` gives, if any (an outage during the sync)."""
        for i, proc in enumerate(self.senders):
            self._tell(proc, "go\n" if paces is None else f"go {paces[i]:.6f}\n")
        base = time.monotonic() + timeout_s

        def deadline() -> float:
            extra = later() if later else None
            return base if extra is None else max(base, extra)
        got = _one_line_each(self.receivers, deadline)
        # A sender's line is written before its receiver's: a second more is plenty (read
        # at the spent deadline, one stuck flow lost every finished flow's timings; and the
        # sync is over: `later` is asked no more, or a change then counted as its).
        sent = _one_line_each(self.senders, time.monotonic() + 1.0)
        out = []
        for r, s in zip(got, sent):
            try:
                out.append({**json.loads(r), **json.loads(s)})
            except (TypeError, ValueError):
                out.append(None)
        return out

    def pace(self, paces: Sequence[float]) -> None:
        """Every flow paced at `paces` (Mb/s, 0 none) at once, in the middle of a burst
        too. A sender that has gone is left out: its burst reports it."""
        for proc, mbps in zip(self.senders, paces):
            self._tell(proc, f"pace {mbps:.6f}\n")

    @staticmethod
    def _tell(sender: subprocess.Popen, line: str) -> None:
        """One line to a sender; one that has gone has its input closed and is told
        nothing more (its burst reports it: the pipe's unwritten bytes raised again at the
        close, and the run's results were lost, a reviewer's)."""
        if sender.stdin.closed:
            return
        try:
            sender.stdin.write(line.encode())
            sender.stdin.flush()
        except BrokenPipeError:
            _close_quietly(sender.stdin)

    def close(self) -> None:
        for proc in self.senders + self.receivers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe:
                    _close_quietly(pipe)

    def __enter__(self) -> "SyncFlows":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _close_quietly(pipe) -> None:
    try:
        pipe.close()
    except BrokenPipeError:             # bytes the gone process never read: dropped
        pass


def _one_line_each(procs, deadline: float | Callable[[], float]) -> list[str | None]:
    """One line from each process's stdout (None where none came before `deadline`, a
    time or a function giving it, asked again at least every `ASK_S`)."""
    until = deadline if callable(deadline) else (lambda: deadline)
    lines: list[str | None] = [None] * len(procs)
    partial = {i: b"" for i in range(len(procs))}
    waiting = {p.stdout.fileno(): i for i, p in enumerate(procs)}
    while waiting:
        left = until() - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select(list(waiting), [], [], min(left, ASK_S))
        for fd in ready:
            i = waiting[fd]
            chunk = os.read(fd, 1)           # byte by byte: never read past the line
            if not chunk or chunk == b"\n":
                lines[i] = partial[i].decode(errors="replace") if chunk else None
                del waiting[fd]
            else:
                partial[i] += chunk
    return lines


def run_step(emu: Emulation, flows: SyncFlows, compute_s: float, overlap_s: float,
             step: int = 1, clock: Callable[[], float] = time.monotonic,
             count_wavelengths: bool = True, timeout_s: float = FLOW_TIMEOUT_S,
             pacer: Callable[[], Sequence[float] | None] | None = None,
             later: Callable[[], float | None] | None = None) -> StepResult:
    """One step: compute, with the sync's bursts starting `overlap_s` before compute ends;
    wait for every flow's last byte (`SyncFlows.burst`: `timeout_s`, or `later()`'s
    deadline). `pacer`, asked just before the bursts, may give every flow a new pace
    (Mb/s) for this step and the next."""
    start, started_at = clock(), time.time()
    before = interface_rx_bytes(emu.fabric) if count_wavelengths else {}
    drops = queue_drops(emu) if count_wavelengths else {}
    _sleep_until(clock, start + compute_s - overlap_s)
    paces = pacer() if pacer else None
    ovs = ovs_schedstat()
    sync_start = clock()
    timings = flows.burst(timeout_s, paces, later)
    done = [t["last"] for t in timings if t]
    sync_end = max(done) if len(done) == len(timings) else clock()
    ovs_after, ovs_end = ovs_schedstat(), clock()
    _sleep_until(clock, start + compute_s)     # a sync shorter than the overlap hides
    end = clock()
    result = StepResult(step, compute_s, end - start, sync_end - sync_start,
                        max(0.0, end - start - compute_s), started_at=started_at)
    if count_wavelengths:
        result.wavelength_bytes = _by_wavelength(emu, delivered_bytes(
            emu.fabric, before, interface_rx_bytes(emu.fabric)))
        result.wavelength_drops = {k: v - drops.get(k, 0) for k, v in queue_drops(emu).items()}
    if ovs and ovs_after and ovs_end > sync_start:
        result.ovs_cpu = (ovs_after[0] - ovs[0]) / (ovs_end - sync_start)
        result.ovs_wait = (ovs_after[1] - ovs[1]) / (ovs_end - sync_start)
    for t, timing in zip(flows.transfers, timings):
        if timing is None:
            result.flow_mbps.append(0.0)
            result.flow_times.append((0.0, 0.0, 0.0))
            result.errors.append(f"{t.src} -> {t.dst}: no complete burst in "
                                 f"{timeout_s:g} s")
            continue
        took = timing["last"] - timing["start"]
        result.flow_mbps.append(t.bytes * 8 / took / 1e6 if took > 0 else 0.0)
        result.flow_times.append(tuple(timing[k] - sync_start
                                       for k in ("start", "first", "last")))
    return result


def queue_drops(emu: Emulation) -> dict[str, int]:
    """Packets each wavelength direction's shaped queue has dropped so far, keyed like
    StepResult.wavelength_bytes (the queue is at the sending end)."""
    counts = queue_drop_counts()
    return {f"{link.name} from {end.node}":
            counts.get(f"qdisc {emu.fabric.switches[end.node].interface(end.port)}", 0)
            for link in emu.fabric.wavelengths() for end in (link.a, link.b)}


def ovs_schedstat() -> tuple[float, float] | None:
    """ovs-vswitchd's seconds on a CPU and waiting in a run queue so far (all threads;
    /proc/PID/task/*/schedstat), or None where it cannot be read."""
    try:
        pid = open(OVS_PIDFILE).read().strip()
        cpu = wait = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                on, queued, _ = f.read().split()
            cpu, wait = cpu + int(on), wait + int(queued)
        return cpu / 1e9, wait / 1e9
    except (OSError, ValueError):
        return None


def _by_wavelength(emu: Emulation, delivered: dict[tuple[str, int], int]) -> dict[str, int]:
    names = {}
    for link in emu.fabric.wavelengths():
        for end in (link.a, link.b):
            names[(end.node, end.port)] = f"{link.name} from {end.node}"
    return {names[k]: v for k, v in sorted(delivered.items()) if k in names}


def describe(result: StepResult, flow_bytes: int) -> str:
    """Where a step's sync time went, in one line: the spread of the flows' starts and
    ends, and how many flows' worth of bytes each loaded wavelength direction carried."""
    if not result.flow_times:
        return ""
    starts = [t[0] for t in result.flow_times]
    ends = sorted(t[2] for t in result.flow_times)
    text = (f"starts within {1000 * (max(starts) - min(starts)):.0f} ms, flows done "
            f"{ends[0]:.2f}-{ends[-1]:.2f} s")
    if result.wavelength_bytes and flow_bytes:
        # A frame carries 1448 payload bytes (TCP timestamps on) in 1514 on the wire.
        per = [b / (flow_bytes * 1514 / 1448) for b in result.wavelength_bytes.values()]
        # Half a flow or more: the reverse direction's ACKs of 8 flows come to about 0.3.
        loaded = sorted((round(x, 1) for x in per if x >= 0.5), reverse=True)
        text += f"; flows per loaded wavelength direction {' '.join(f'{x:g}' for x in loaded)}"
    if result.wavelength_drops:
        text += f"; queue drops {sum(result.wavelength_drops.values())}"
    if result.ovs_cpu:
        text += f"; OVS {result.ovs_cpu:.2f} CPU, waiting {result.ovs_wait:.2f}"
    return text


def run_training(emu: Emulation, transfers: Sequence[Transfer], compute_s: float,
                 overlap_s: float, steps: int, say: Callable[[str], None] = lambda _: None,
                 clock: Callable[[], float] = time.monotonic,
                 timeout_s: float = FLOW_TIMEOUT_S, congestion: str = "",
                 before_sync: Callable[[int], Sequence[float] | None] | None = None,
                 during_sync: Callable[[int, Callable[[Sequence[float]], None]],
                                       Callable[[], float | None]] | None = None
                 ) -> list[StepResult]:
    """`steps` sync steps, one after the other, on the same persistent connections, sent
    with the `congestion` control (the kernel's default if empty). `before_sync(step)`,
    called as each step's sync starts, may re-pace the flows (`run_step`'s `pacer`);
    `during_sync(step, pace)`, called as each starts, gives that sync's `run_step` `later`,
    which may re-pace the flows meanwhile by calling `pace` (`SyncFlows.pace`)."""
    results = []
    flow_bytes = transfers[0].bytes if transfers else 0
    with SyncFlows(emu, transfers, congestion=congestion) as flows:
        for n in range(1, steps + 1):
            pacer = (lambda n=n: before_sync(n)) if before_sync else None
            r = run_step(emu, flows, compute_s, overlap_s, n, clock, timeout_s=timeout_s,
                         pacer=pacer,
                         later=during_sync(n, flows.pace) if during_sync else None)
            say(f"step {n}: {r.step_s:.2f} s (sync {r.sync_s:.2f} s, exposed {r.exposed_s:.2f} "
                f"s, compute utilization {r.compute_utilization:.1%}; {describe(r, flow_bytes)})"
                + (f", {len(r.errors)} flow errors" if r.errors else ""))
            results.append(r)
            if r.errors:
                break                      # a connection is broken: the next step cannot run
    return results


def limit_dci_queues(emu: Emulation, packets: int) -> int:
    """Give every DCI wavelength's shaped queues (both ends; reserved and best effort) room
    for `packets` full frames each, in bytes, instead of the emulation's
    WAVELENGTH_QUEUE_PACKETS (`shaping`).

    A DCI line card holds milliseconds of traffic; at the few Mb/s of a scaled wavelength a
    few dozen frames are that. (Mininet's own 1000-packet queue was seconds: when both
    directions carried a sync, each direction's ACKs waited behind the other's data, round
    trips grew to seconds and TCP crawled.) Returns how many interfaces were changed; they
    go away with the emulation.
    """
    ends = wavelength_ends(emu.fabric, packets)
    problem = run_batch(queue_lines(ends, emu.delay_emulated))
    if problem:
        raise EmulationError(f"could not set the wavelengths' queues to {packets} frames: "
                             f"{problem[:500]}")
    return len(ends)


def _sleep_until(clock: Callable[[], float], when: float) -> None:
    left = when - clock()
    if left > 0:
        time.sleep(left)
