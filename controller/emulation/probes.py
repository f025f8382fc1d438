"""Probe streams between emulated hosts: sequence-numbered UDP at a fixed rate, sent from
and received in the hosts' namespaces by `probe_agent`, analysed by `probe_analysis`.

One receiver per destination host (one UDP port for all its streams), one sender per
source host (all its streams on one schedule), so a few streams at 1000 pps each cost a
few per cent of a core.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .probe_analysis import StreamRecord

# runner(host, argv) -> a Popen of argv inside that host's namespace
Runner = Callable[[str, list[str]], subprocess.Popen]

AGENT = [sys.executable, "-m", "dcilab.emulation.probe_agent"]


@dataclass(frozen=True)
class Stream:
    src: str            # host name (as the runner knows it)
    dst: str
    dst_ip: str

    @property
    def name(self) -> str:
        return f"{self.src}>{self.dst}"


class ProbeError(RuntimeError):
    pass


class Probes:
    """Start with `start()`, stop with `stop()` (returns one StreamRecord per stream).
    A context manager; whatever happens, every process it started is stopped."""

    def __init__(self, runner: Runner, streams: list[Stream], rate_pps: float = 1000.0,
                 port: int = 7000, duration_s: float = 0.0, workdir: Path | None = None):
        if len({s.name for s in streams}) != len(streams):
            raise ProbeError("two probe streams between the same hosts")
        self.runner, self.streams, self.rate, self.port = runner, streams, rate_pps, port
        self.duration_s = duration_s
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="dcilab-probes-")
        self.workdir = Path(workdir or self._tmp.name)
        self.receivers: dict[str, subprocess.Popen] = {}
        self.senders: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> "Probes":
        try:
            self.start()
        except BaseException:
            self.__exit__()      # not called when __enter__ raises: receivers and the dir
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._kill_all()
        if self._tmp:
            self._tmp.cleanup()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in [*self.receivers.values(), *self.senders.values()]]

    def start(self, timeout_s: float = 10.0) -> None:
        for dst in sorted({s.dst for s in self.streams}):
            proc = self.runner(dst, [*AGENT, "recv", "--port", str(self.port),
                                     "--out", str(self.workdir / f"recv-{dst}.json")])
            self.receivers[dst] = proc
        deadline = time.monotonic() + timeout_s
        for dst, proc in self.receivers.items():
            line = _first_line(proc, deadline) if proc.stdout else "listening"
            if "listening" not in line:
                raise ProbeError(f"probe receiver on {dst} did not start: {line!r}")
        for src in sorted({s.src for s in self.streams}):
            args = [*AGENT, "send", "--rate", f"{self.rate:g}", "--duration",
                    f"{self.duration_s:g}", "--out", str(self.workdir / f"send-{src}.json")]
            for i, s in enumerate(self.streams):
                if s.src == src:
                    args += ["--stream",
                             f"{i},{s.name},{s.dst_ip},{self.port},{self.port + 1 + i}"]
            self.senders[src] = self.runner(src, args)

    def stop(self, timeout_s: float = 10.0) -> dict[str, StreamRecord]:
        """Stop the senders (unless they already ended), let the last packets land, stop
        the receivers, and read what each stream delivered."""
        for proc in self.senders.values():
            if proc.poll() is None:
                proc.terminate()
        for src, proc in self.senders.items():
            if proc.wait(timeout=timeout_s) != 0:
                raise ProbeError(f"probe sender on {src} failed (exit {proc.returncode})")
        time.sleep(0.05)
        for proc in self.receivers.values():
            proc.terminate()
        for dst, proc in self.receivers.items():
            if proc.wait(timeout=timeout_s) != 0:
                raise ProbeError(f"probe receiver on {dst} failed (exit {proc.returncode})")
        return self._read()

    def wait_senders(self, timeout_s: float) -> None:
        for proc in self.senders.values():
            proc.wait(timeout=timeout_s)

    def _read(self) -> dict[str, StreamRecord]:
        sent = {src: json.loads((self.workdir / f"send-{src}.json").read_text())
                for src in self.senders}
        got = {dst: _received(self.workdir / f"recv-{dst}.json") for dst in self.receivers}
        records = {}
        for src, info in sent.items():
            for st in info["streams"]:
                stream = self.streams[st["id"]]
                data = got[stream.dst].get(str(st["id"]))
                records[stream.name] = StreamRecord(
                    stream.name, info["rate"], info["t0"], info["sent"],
                    data["seq"] if data else [], data["arrival"] if data else [],
                    data["sent_at"] if data else [])
        return records

    def _kill_all(self) -> None:
        for proc in [*self.senders.values(), *self.receivers.values()]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _first_line(proc: subprocess.Popen, deadline: float) -> str:
    """The first line `proc` writes, or "" if it writes none by `deadline` (a receiver
    that hangs must not hang its caller)."""
    left = max(0.0, deadline - time.monotonic())
    ready, _, _ = select.select([proc.stdout], [], [], left)
    return proc.stdout.readline() if ready else ""


def _received(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """A receiver's streams: its JSON index and the raw arrays beside it (`.bin`)."""
    index = json.loads(path.read_text())
    raw = Path(f"{path}.bin").read_bytes()
    dtypes = [np.dtype(f"={t}") for t in index["types"]]
    return {i: {name: np.frombuffer(raw, dtype, count=info["count"], offset=offset)
                for name, dtype, offset in zip(("seq", "arrival", "sent_at"), dtypes,
                                               info["offsets"])}
            for i, info in index["streams"].items()}


def mininet_runner(emulation) -> Runner:
    """Run the agents in the namespaces of an Emulation's hosts (by fabric host name)."""
    def run(host: str, argv: list[str]) -> subprocess.Popen:
        return emulation.host(host).popen(argv, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
    return run


def netns_runner(namespaces: dict[str, str]) -> Runner:
    """Run the agents in named network namespaces (`ip netns exec`), by host name."""
    def run(host: str, argv: list[str]) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", namespaces[host], *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return run


def fabric_streams(fabric, pairs: list[tuple[str, str]]) -> list[Stream]:
    return [Stream(src, dst, fabric.hosts[dst].ip) for src, dst in pairs]
