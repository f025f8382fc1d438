"""Training steps on the emulation: a compute phase, then the sync as real TCP flows.

A step starts its compute (a wait: the hosts have no GPUs); `overlap_s` before the
compute ends, every sync flow starts at once (iperf3 from the host namespaces, each
sending its bytes); the next step begins only when the last flow is done. That is the
periodic, bursty, low-entropy traffic of data-parallel training. Measured per step: the
step time, the sync time (first flow started to last flow done), the exposed part (step
time beyond compute) and compute utilization.

The iperf3 servers of a step are started and checked before its clock starts, so their
start-up is not counted.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .network import Emulation
from .traffic import _parse_iperf, _wait_listening

BASE_PORT = 5601
FLOW_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Transfer:
    src: str          # host name
    dst: str
    bytes: int


@dataclass
class StepResult:
    step: int
    compute_s: float
    step_s: float
    sync_s: float
    exposed_s: float
    flow_mbps: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def compute_utilization(self) -> float:
        return self.compute_s / self.step_s if self.step_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {"step": self.step, "step_s": round(self.step_s, 4),
                "sync_s": round(self.sync_s, 4), "exposed_s": round(self.exposed_s, 4),
                "compute_utilization": round(self.compute_utilization, 4),
                "flow_mbps": [round(m, 3) for m in self.flow_mbps], "errors": self.errors}


def _start_servers(emu: Emulation, transfers: Sequence[Transfer], base_port: int) -> list:
    servers = []
    for i, t in enumerate(transfers):
        servers.append(emu.host(t.dst).popen(
            ["iperf3", "-s", "-1", "-p", str(base_port + i)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
    for i, t in enumerate(transfers):
        _wait_listening(emu, t.dst, base_port + i)
    return servers


def run_step(emu: Emulation, transfers: Sequence[Transfer], compute_s: float, overlap_s: float,
             step: int = 1, base_port: int = BASE_PORT,
             clock: Callable[[], float] = time.monotonic) -> StepResult:
    """One step: compute, with the sync starting `overlap_s` before compute ends; wait for
    every flow."""
    servers = _start_servers(emu, transfers, base_port)
    clients = []
    try:
        start = clock()
        _sleep_until(clock, start + compute_s - overlap_s)
        sync_start = clock()
        for i, t in enumerate(transfers):
            clients.append(emu.host(t.src).popen(
                ["iperf3", "-c", emu.fabric.hosts[t.dst].ip, "-p", str(base_port + i),
                 "-n", str(t.bytes), "-J"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outputs = [c.communicate(timeout=FLOW_TIMEOUT_S) for c in clients]
        sync_end = clock()
        _sleep_until(clock, start + compute_s)     # a sync shorter than the overlap hides
        end = clock()
    finally:
        for proc in servers + clients:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    result = StepResult(step, compute_s, end - start, sync_end - sync_start,
                        max(0.0, end - start - compute_s))
    for i, (t, (out, err)) in enumerate(zip(transfers, outputs)):
        parsed = _parse_iperf(t.src, t.dst, out, err, base_port + i)
        result.flow_mbps.append(parsed.bits_per_second / 1e6)
        if parsed.error:
            result.errors.append(f"{t.src} -> {t.dst}: {parsed.error}")
    return result


def run_training(emu: Emulation, transfers: Sequence[Transfer], compute_s: float,
                 overlap_s: float, steps: int, say: Callable[[str], None] = lambda _: None,
                 clock: Callable[[], float] = time.monotonic) -> list[StepResult]:
    """`steps` sync steps, one after the other (ports alternate so that a late FIN of one
    step never meets the next step's server)."""
    results = []
    for n in range(1, steps + 1):
        base = BASE_PORT + (n % 2) * 200
        r = run_step(emu, transfers, compute_s, overlap_s, n, base, clock)
        say(f"step {n}: {r.step_s:.2f} s (sync {r.sync_s:.2f} s, exposed {r.exposed_s:.2f} s, "
            f"compute utilization {r.compute_utilization:.1%})"
            + (f", {len(r.errors)} flow errors" if r.errors else ""))
        results.append(r)
    return results


def limit_dci_queues(emu: Emulation, packets: int) -> int:
    """Give every DCI wavelength's shaped queue (both ends) room for `packets` packets.

    Mininet's htb class leaves the interface's 1000-packet default queue under it: at the
    few Mb/s of a scaled wavelength that is seconds of buffer, where a DCI line card holds
    milliseconds. When both directions carry a sync, each direction's ACKs wait behind the
    other's data, round trips grow to seconds and TCP crawls. A pfifo of `packets` under
    the htb class (handle 5:1, Mininet's) restores a realistic buffer. Returns how many
    interfaces were changed; they go away with the emulation.
    """
    changed = 0
    for link in emu.fabric.wavelengths():
        for end in (link.a, link.b):
            intf = emu.fabric.switches[end.node].interface(end.port)
            subprocess.run(["tc", "qdisc", "replace", "dev", intf, "parent", "5:1", "handle",
                            "10:", "pfifo", "limit", str(packets)], check=True,
                           capture_output=True, text=True)
            changed += 1
    return changed


def _sleep_until(clock: Callable[[], float], when: float) -> None:
    left = when - clock()
    if left > 0:
        time.sleep(left)
