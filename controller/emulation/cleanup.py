"""Remove what an emulation created, and only that: by our name prefix and by PID.

A manifest written at start lists the PIDs started (host shells, the demo's controller),
the fabric file and the fibre namespaces; after a crash or kill -9 the next start, or
`dcilab clean`, reads it back. Bridges, interfaces and fibre namespaces are found by the
`dl` prefix that only dcilab uses (see fabric.model). Injected faults keep their own state
file beside the manifest (faults.py); cleaning stops their processes (a flapping link) and
forgets them: removing the fibre namespaces undoes every fault on a wavelength.
Never `mn -c`: it kills processes by broad name patterns.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..names import NAME_PREFIX
from . import port_buffers

BRIDGE_RE = re.compile(rf"^{NAME_PREFIX}\d+(sp|lf|gw)\d+$")
INTERFACE_RE = re.compile(rf"^{NAME_PREFIX}(\d+(sp|lf|gw)\d+p\d+|\d+h\d+-eth\d+|netem0b?)$")
# Fibre namespaces, and the names given to the emulated hosts' namespaces (`name_hosts`).
NAMESPACE_RE = re.compile(rf"^{NAME_PREFIX}(fibre\d+|host-[A-Za-z0-9]+)$")
RUN_DIR = Path(os.environ.get("DCILAB_RUN_DIR", "/run/dcilab"))
MANIFEST = RUN_DIR / "emulation.json"
START_LOCK = RUN_DIR / "start.lock"
FAULTS_STATE = RUN_DIR / "faults.json"     # written by faults.py
# The nftables table (family netdev) of the transceivers' packet loss (wavelength_effects).
NFT_TABLE = "dcilab_optics"


@dataclass
class Manifest:
    owner_pid: int
    fabric: str
    # pid -> a string its /proc cmdline must contain (so a reused PID is never killed)
    processes: dict[int, str] = field(default_factory=dict)
    # service -> address it listens on, e.g. {"gnmi": "127.0.0.1:40123"}
    services: dict[str, str] = field(default_factory=dict)
    fabric_path: str | None = None      # the fabric file, for `dcilab fault`
    fibres: list[str] = field(default_factory=list)     # fibre namespaces
    started: float = 0.0                # time.time() at start: tells one run from the next
    # temporary directories of the run (the controller's state file), removed by `clean`
    dirs: list[str] = field(default_factory=list)

    def save(self) -> None:
        MANIFEST.parent.mkdir(parents=True, exist_ok=True)
        tmp = MANIFEST.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(MANIFEST)

    @staticmethod
    def load() -> "Manifest | None":
        try:
            data = json.loads(MANIFEST.read_text())
            return Manifest(int(data["owner_pid"]), data["fabric"],
                            {int(k): v for k, v in data.get("processes", {}).items()},
                            dict(data.get("services", {})),
                            data.get("fabric_path"), list(data.get("fibres", [])),
                            float(data.get("started", 0.0)), list(data.get("dirs", [])))
        except (OSError, ValueError, KeyError):
            return None


@contextlib.contextmanager
def start_lock():
    """Held while a run looks for another, cleans leftovers and records itself: two runs
    started at the same instant would otherwise each see none and clean what the other
    is building. The second waits, then finds the first's manifest."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(START_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs: exists, and has not exited awaiting its parent (a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat(pid)
    return not fields or fields[0] != "Z"          # field 3: state


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (state first), or [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _started_at(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), from /proc; None if it is gone."""
    fields = _stat(pid)
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")    # field 22: starttime
    except (OSError, IndexError, ValueError):
        return None
    return time.time() - uptime + since_boot


def live_owner(manifest: "Manifest | None") -> int | None:
    """The PID of the process running the manifest's emulation, if it still runs: not
    this process, and not a later process that reused the PID (it started after the run)."""
    if manifest is None or manifest.owner_pid == os.getpid() or not pid_alive(
            manifest.owner_pid):
        return None
    started = _started_at(manifest.owner_pid)
    if started is not None and manifest.started and started > manifest.started + 2.0:
        return None
    return manifest.owner_pid


def _signal_and_wait(pid: int, sig: int, grace_s: float, gone) -> bool:
    """Send `sig` to `pid`; True once `gone()` holds (or it no longer exists), False if
    `grace_s` passes first."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if gone():
            return True
        time.sleep(0.05)
    return gone()


def stop_owner(pid: int, grace_s: float) -> bool:
    """SIGTERM the process running an emulation, which then stops it and removes what it
    made; wait up to `grace_s`, then SIGKILL. True if it ended on the SIGTERM."""
    def gone() -> bool:
        return not pid_alive(pid)
    if _signal_and_wait(pid, signal.SIGTERM, grace_s, gone):
        return True
    _signal_and_wait(pid, signal.SIGKILL, 2.0, gone)
    return False


def ours(manifest: "Manifest") -> bool:
    """Whether what dcilab runs on this machine may be cleaned up by `manifest`'s run: no
    other run that is alive has recorded itself since (after a `clean --force` removed
    ours and another started)."""
    on_disk = Manifest.load()
    same = on_disk is not None and (on_disk.owner_pid, on_disk.started) == (
        manifest.owner_pid, manifest.started)
    return on_disk is None or same or live_owner(on_disk) is None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def namespace_processes(pids: list[int]) -> list[int]:
    """The other processes in the network namespaces of processes `pids`: what was
    started in an emulated host (a daemon a user ran at the lab's prompt, `iperf3 -s -D`,
    outlived its host). One scan of /proc for all. A `pid` sharing this process's
    namespace adds nothing: never the whole machine."""
    inodes = set()
    try:
        own = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return []
    for pid in pids:
        try:
            inodes.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
        except OSError:
            pass
    inodes.discard(own)
    if not inodes:
        return []
    found, shells = [], set(pids)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) not in shells:
            try:
                if os.stat(f"/proc/{entry.name}/ns/net").st_ino in inodes:
                    found.append(int(entry.name))
            except OSError:                       # gone meanwhile, or not ours to read
                pass
    return found


def stop_pids(pids: list[int], grace_s: float = 2.0) -> int:
    """SIGTERM, then SIGKILL what is left after `grace_s`; how many of `pids` ended."""
    left = list(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace_s
        while left and time.monotonic() < deadline:
            left = [pid for pid in left if pid_alive(pid)]
            time.sleep(0.05)
        if not left:
            break
    return len(pids) - len(left)


def kill_pid(pid: int, must_contain: str, grace_s: float = 2.0) -> bool:
    """SIGTERM then SIGKILL `pid`, only if its command line still names what we started."""
    if must_contain not in _cmdline(pid):
        return False

    def gone() -> bool:
        return not pid_alive(pid) or must_contain not in _cmdline(pid)
    return any(_signal_and_wait(pid, sig, grace_s, gone)
               for sig in (signal.SIGTERM, signal.SIGKILL)) or not pid_alive(pid)


def our_bridges() -> list[str]:
    out = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True)
    return [b for b in out.stdout.split() if BRIDGE_RE.match(b)]


def our_interfaces() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
    names = (line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines())
    return [n for n in names if INTERFACE_RE.match(n)]


def our_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    names = (line.split()[0] for line in out.stdout.splitlines() if line.strip())
    return [n for n in names if NAMESPACE_RE.match(n)]


def host_namespace(node: str) -> str:
    """The name an emulated host's network namespace is given (`name_hosts`)."""
    return f"{NAME_PREFIX}host-{node}"


def name_hosts(hosts: dict[str, int]) -> str:
    """Give each host's network namespace (node name -> its shell's PID) a name of ours.
    The name holds the namespace: when a run is killed with -9 its hosts' shells die with
    it, and what was started in a host and outlived them (a daemon typed at the lab's
    prompt) is then found there by `clean`, and the namespace removed. ip's complaint, or ""."""
    if not hosts:
        return ""
    lines = "".join(f"netns attach {host_namespace(node)} {pid}\n"
                    for node, pid in hosts.items())
    done = subprocess.run(["ip", "-force", "-batch", "-"], input=lines, text=True,
                          capture_output=True, timeout=60)
    return "" if done.returncode == 0 else (done.stderr or done.stdout).strip()


def stop_namespace_processes(namespaces: list[str]) -> int:
    """Stop every process in our named namespaces `namespaces`; how many ended."""
    pids = []
    for namespace in namespaces:
        try:
            found = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                                   text=True, timeout=30).stdout.split()
        except subprocess.TimeoutExpired:
            continue
        pids += [int(p) for p in found if p.isdigit() and int(p) != os.getpid()]
    return stop_pids(pids) if pids else 0


def fault_processes() -> dict[int, str]:
    """PID -> tag of the processes injected faults run (a flapping link), from their state."""
    try:
        data = json.loads(FAULTS_STATE.read_text())
        return {int(k): v for k, v in data.get("processes", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def forget_faults() -> int:
    """Stop the processes of injected faults and forget them; how many were stopped."""
    stopped = 0
    for pid, tag in fault_processes().items():
        if pid != os.getpid():      # a flap run in the foreground by this very process
            stopped += kill_pid(pid, tag)
    FAULTS_STATE.unlink(missing_ok=True)
    FAULTS_STATE.with_suffix(".lock").unlink(missing_ok=True)
    return stopped


def leftovers() -> dict[str, list]:
    """What of ours still exists: bridges, root-namespace interfaces, fibre namespaces,
    live listed PIDs, listed temporary directories."""
    manifest = Manifest.load()
    listed = dict(manifest.processes if manifest else {}) | fault_processes()
    pids = [p for p, tag in listed.items() if pid_alive(p) and tag in _cmdline(p)]
    return {"bridges": our_bridges(), "interfaces": our_interfaces(),
            "namespaces": our_namespaces(), "processes": pids,
            "directories": _our_dirs(manifest)}


def _our_dirs(manifest: Manifest | None) -> list[str]:
    """The manifest's directories that still exist and are ours: temporary, `dcilab-`."""
    tmp = Path(tempfile.gettempdir())
    return [d for d in (manifest.dirs if manifest else [])
            if Path(d).parent == tmp and Path(d).name.startswith("dcilab-") and Path(d).is_dir()]


def _done(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:       # the rest is still removed; this one is not
        return False


def stop_listed_processes(processes: dict[int, str]) -> int:
    """Stop a run's listed processes {pid: what its command line names} that are still
    ours, and first what was started in their network namespaces and outlived the run (a
    daemon typed at the lab's prompt, `iperf3 -s -D`: a run killed with -9 stopped none,
    and once its host's shell is gone nothing names that namespace). How many stopped."""
    ours = {pid: tag for pid, tag in processes.items()
            if pid_alive(pid) and tag in _cmdline(pid)}    # never a PID reused since
    inside = namespace_processes(list(ours))
    return stop_pids(inside) + sum(kill_pid(pid, tag) for pid, tag in ours.items())


def clean(say=print) -> dict[str, int]:
    """Remove every process, bridge, interface and fibre namespace of ours, and forget
    injected faults; return how many of each."""
    removed = {"processes": 0, "bridges": 0, "interfaces": 0, "namespaces": 0,
               "directories": 0}
    # Faults first: a flapping link must not toggle what is being removed.
    removed["processes"] += forget_faults()
    manifest = Manifest.load()
    if manifest:
        removed["processes"] += stop_listed_processes(manifest.processes)
    # what was started in a host and outlived its shell (a run killed with -9)
    removed["processes"] += stop_namespace_processes(our_namespaces())
    # counted only where the command said it was done: never "removed" what is still there
    for bridge in our_bridges():
        removed["bridges"] += _done(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br",
                                     bridge])
    for intf in our_interfaces():
        # gone already with its peer (a veth's other end removed just before) counts too
        removed["interfaces"] += (_done(["ip", "link", "del", intf])
                                  or not os.path.exists(f"/sys/class/net/{intf}"))
    subprocess.run(["nft", "delete", "table", "netdev", NFT_TABLE], capture_output=True)
    for namespace in our_namespaces():
        removed["namespaces"] += _done(["ip", "netns", "delete", namespace])
    for directory in _our_dirs(manifest):
        shutil.rmtree(directory, ignore_errors=True)
        removed["directories"] += 1
    MANIFEST.unlink(missing_ok=True)
    port_buffers.restore_send()      # the send buffer a run gave ovs-vswitchd (port_buffers)
    if any(removed.values()):
        say("removed " + ", ".join(f"{n} {k}" for k, n in removed.items() if n))
    return removed
