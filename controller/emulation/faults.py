"""Faults injected into a running emulation, by the names of the fabric file.

| fault | what the kernel does | what the gateways see |
|---|---|---|
| cut LINK / WAVELENGTH | both middle ends of each wavelength go down in its fibre namespace | carrier loss at both gateways, ports administratively up |
| dark WAVELENGTH --end SITE | both middle ends go down together | carrier loss at SITE's gateway (its module is dead) and at the far gateway (loss of signal at its receiver; Ethernet link-fault signalling would take the near receive side down too): as with a real dark ZR module, both ends go down. On the data plane it is a one-wavelength cut; `list` (and the optical layer) say which transceiver it was |
| gray WAVELENGTH | an nft `drop` before the `fwd` of both directions | carrier up at both ends, nothing passes |
| loss (optics API `set_loss`) | `numgen random mod 1000 < N drop` before the `fwd` | carrier up, N per mille of the packets lost each way |
| flap LINK / WAVELENGTH | a process cuts it at since + n x period and lights it half a period later | carrier loss and return at both gateways |
| switch-down NAME | the bridge drops its controller connection, its flows, groups and meters, then every port of it goes down (and every wavelength it terminates goes dark) | neighbours lose carrier on their ports to it; the controller loses the connection (a clean close, as when ovs-vswitchd dies; a powered-off box would go silent instead) |

A line system's wavelengths change together (one `ip -batch` and one nft transaction per
fibre namespace). Every kernel state is derived from the list of active faults (`wavelength_states`,
`switch_ports_down`), so restoring one fault re-applies what the others still require.
The list is kept in a state file next to the emulation's manifest, with the PIDs of flapping
processes, so `list` and `restore` work across invocations, and `dcilab clean` or the
emulation's stop kills those processes and forgets everything (removing the fibre
namespaces undoes every fault on a wavelength; removing the bridges every switch fault).

For the optical layer (transceivers, span loss): `Faults.set_loss(wavelength, ratio)` sets
a wavelength's drop probability (0 clears it), `Faults.dark(wavelength, end)` takes its
transceiver at `end` dark, `Faults.restore(wavelength, kind="dark")` lights it again.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from ..fabric import Fabric
from ..fabric.model import DCI
from .cleanup import FAULTS_STATE, Manifest, kill_pid, pid_alive
from .fibre import WavelengthEnds, apply, fibre_plan, run
from .ovs import shorten_backoff

CUT, DARK, GRAY, LOSS, FLAP, SWITCH_DOWN = "cut", "dark", "gray", "loss", "flap", "switch-down"
# degrade: the line system's optics (span loss, amplifier noise, launch power), set in the
# transceiver agent over gNMI; the light still passes, so the fibre namespaces are untouched.
DEGRADE = "degrade"
KINDS = (CUT, DARK, GRAY, LOSS, FLAP, SWITCH_DOWN, DEGRADE)
FLAP_TAG = "dcilab.emulation.faults"
FLAP_START_TIMEOUT_S = 30.0     # a background flap's process, started and scheduled


class FaultError(ValueError):
    """A fault that cannot be injected or restored; the message says why, by name."""


class FaultInputError(FaultError):
    """A target or figure the fault names that the fabric does not have, or out of its
    range: bad input (the CLI exits 2), not a state of the emulation."""


@dataclass
class Fault:
    kind: str
    target: str                      # the fabric name it was given: link, wavelength, switch
    wavelengths: list[str]           # the wavelengths it acts on
    since: float                     # time.time() when injected
    end: str | None = None           # dark: the site whose transceiver is dark
    loss_per_mille: int = 0          # loss
    period_s: float | None = None    # flap: one cycle, down for the first half
    count: int | None = None         # flap: cycles, None = until restored
    pid: int | None = None           # flap: the process doing it
    controllers: list[str] = field(default_factory=list)   # switch-down: targets to give back
    # degrade: {"spans": {"N": extra dB}, "amplifiers": {"N": NF dB}, "launch_power_dbm",
    # "ramp_s"}: what the line's degradation is now, given once or in several commands
    knobs: dict = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == FLAP:
            what = (f"flapping every {self.period_s:g} s"
                    + (f", {self.count} times" if self.count else " until restored")
                    + (f" (pid {self.pid})" if self.pid else ""))
        elif self.kind == DARK:
            what = f"transceiver at {self.end} dark"
        elif self.kind == LOSS:
            what = f"{self.loss_per_mille / 10:g} % loss"
        elif self.kind == DEGRADE:
            what = "degraded: " + describe_knobs(self.knobs)
        else:
            what = {CUT: "cut", GRAY: "gray (carrier up, everything dropped)",
                    SWITCH_DOWN: "switch down"}[self.kind]
        return f"{self.target}: {what}"


def describe_knobs(knobs: dict) -> str:
    parts = [f"span {n} +{db:g} dB loss" for n, db in sorted(knobs.get("spans", {}).items(),
                                                             key=lambda kv: int(kv[0]))]
    parts += [f"amplifier {n} noise figure {db:g} dB"
              for n, db in sorted(knobs.get("amplifiers", {}).items(), key=lambda kv: int(kv[0]))]
    if knobs.get("launch_power_dbm") is not None:
        parts.append(f"launch power {knobs['launch_power_dbm']:g} dBm")
    ramp = knobs.get("ramp_s") or 0
    return ", ".join(parts) + (f", reached over {ramp:g} s" if ramp else "")


# -- pure: names and derived kernel state ---------------------------------------------

def _choices(names) -> str:
    return ", ".join(sorted(names))


def line_systems(fabric: Fabric) -> dict[str, list[str]]:
    """Line system (DCI link) name -> its wavelength names, in order."""
    out: dict[str, list[str]] = {d.name: [] for d in fabric.spec.dci_links}
    for link in fabric.wavelengths():
        out[link.line_system].append(link.name)
    return out


def resolve_wavelengths(fabric: Fabric, target: str, links_allowed: bool = True) -> list[str]:
    """The wavelengths a link or wavelength name stands for; FaultError naming the valid
    ones otherwise."""
    systems = line_systems(fabric)
    if links_allowed and target in systems:
        return list(systems[target])
    wavelengths = [w for ws in systems.values() for w in ws]
    if target in wavelengths:
        return [target]
    if links_allowed:
        raise FaultInputError(f"unknown link or wavelength {target!r}; links: "
                              f"{_choices(systems)}; wavelengths: {_choices(wavelengths)}")
    hint = (f" ({target!r} is a link: name one of its wavelengths, "
            f"{', '.join(systems[target])})" if target in systems else "")
    raise FaultInputError(f"unknown wavelength {target!r}{hint}; wavelengths: "
                          f"{_choices(wavelengths)}")


def resolve_switch(fabric: Fabric, name: str) -> str:
    if name not in fabric.switches:
        raise FaultInputError(f"unknown switch {name!r}; switches: "
                              f"{_choices(fabric.switches)}")
    return name


@dataclass(frozen=True)
class WavelengthState:
    """What one wavelength's fibre element should do."""

    light_a: bool = True      # middle end facing the gateway at site a is up
    light_b: bool = True
    gray: bool = False
    loss_per_mille: int = 0


def dark_ends(fabric: Fabric, fault: Fault) -> dict[str, set[str]]:
    """Wavelength -> sites whose transceiver a fault darkens (dark, switch-down of a gateway)."""
    if fault.kind == DARK:
        return {w: {fault.end} for w in fault.wavelengths}
    if fault.kind == SWITCH_DOWN:
        site = fabric.switches[fault.target].site
        return {w: {site} for w in fault.wavelengths}
    return {}


def wavelength_states(fabric: Fabric, faults: list[Fault]) -> dict[str, WavelengthState]:
    """Every wavelength's fibre state as the active faults require (flaps excluded: their
    process drives the light). A dark transceiver darkens both ends: the far receiver
    loses the signal."""
    states = {}
    for w in (link.name for link in fabric.wavelengths()):
        on = [f for f in faults if w in f.wavelengths and f.kind != FLAP]
        lit = not any(f.kind == CUT or dark_ends(fabric, f).get(w) for f in on)
        states[w] = WavelengthState(
            light_a=lit, light_b=lit, gray=any(f.kind == GRAY for f in on),
            loss_per_mille=max((f.loss_per_mille for f in on if f.kind == LOSS), default=0))
    return states


def optical_view(fabric: Fabric, faults: list[Fault]) -> tuple[set[str], set[tuple[str, str]]]:
    """What the active faults do to the transceivers, as their gNMI shows it: wavelengths
    whose receivers get no light (a cut; a transceiver dark, or its gateway down, at
    either end), and the (wavelength, gateway) transceivers whose laser is off. A gray
    failure leaves the optics as they are (the light passes, packets do not), and a
    flap's phase is its own process's (not shown)."""
    no_light: set[str] = set()
    lasers_off: set[tuple[str, str]] = set()
    for fault in faults:
        if fault.kind == CUT:
            no_light.update(fault.wavelengths)
        for wavelength, sites in dark_ends(fabric, fault).items():
            no_light.add(wavelength)
            link = fabric.link(wavelength)
            lasers_off.update((wavelength, end.node) for end in (link.a, link.b)
                              if fabric.switches[end.node].site in sites)
    return no_light, lasers_off


def switch_ports_down(faults: list[Fault]) -> set[str]:
    return {f.target for f in faults if f.kind == SWITCH_DOWN}


def conflicts(new: Fault, active: list[Fault]) -> str | None:
    """Why `new` cannot join the active faults, or None. The same fault twice is refused;
    a flap owns its wavelengths' light, so it shares them with nothing."""
    for f in active:
        # loss and degrade change a figure; given again, the new one adds or replaces
        if f.kind == new.kind and f.target == new.target and new.kind not in (LOSS, DEGRADE):
            return f"{new.target} already has this fault ({f.describe()})"
        shared = set(f.wavelengths) & set(new.wavelengths)
        if shared and FLAP in (f.kind, new.kind) and DEGRADE not in (f.kind, new.kind):
            return (f"{_choices(shared)} already has a fault ({f.describe()}); a flapping "
                    f"wavelength shares with nothing: restore {f.target} first")
    return None


def restorable(fabric: Fabric, target: str, active: list[Fault],
               kind: str | None = None) -> list[Fault]:
    """The active faults `restore target` undoes: those given exactly that name, and, for a
    link, those of its wavelengths."""
    members = set(line_systems(fabric).get(target, []))
    return [f for f in active if (f.target == target or f.target in members)
            and (kind is None or f.kind == kind)]


# -- the state file ------------------------------------------------------------------

class FaultBook:
    """The active faults of one emulation run, in a JSON file, read-modify-written under a
    file lock so concurrent `dcilab fault` commands and a flapping process agree."""

    def __init__(self, path=FAULTS_STATE, run_stamp: float = 0.0):
        self.path = path
        self.run_stamp = run_stamp

    @contextlib.contextmanager
    def locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            self._write(data)

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("run") != self.run_stamp:   # another emulation run's faults are gone
            data = {"run": self.run_stamp, "faults": [], "processes": {}}
        data["faults"] = [Fault(**f) for f in data["faults"]]
        return data

    def _write(self, data: dict) -> None:
        out = dict(data, faults=[asdict(f) for f in data["faults"]])
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(self.path)

    def faults(self) -> list[Fault]:
        with self.locked() as data:
            return list(data["faults"])

    def peek(self) -> list[Fault]:
        """The active faults, read without the lock (the file is replaced whole, so a
        reader sees one version or the next): for a reader that polls, never writes."""
        return list(self._read()["faults"])


# -- the kernel ----------------------------------------------------------------------

def _ovs(*cmd: str, check: bool = True) -> str:
    return run(*cmd, check=check).stdout


class Faults:
    """Inject, list and restore faults on a running emulation of `fabric`."""

    def __init__(self, fabric: Fabric, run_stamp: float = 0.0, state_path=FAULTS_STATE,
                 fabric_path: str | None = None, gnmi_address: str | None = None,
                 owner_pid: int | None = None):
        self.fabric = fabric
        self.fabric_path = fabric_path
        self.owner_pid = owner_pid            # the process that runs the emulation
        self.gnmi_address = gnmi_address      # the transceiver agent's, when it serves one
        self.plan: dict[str, WavelengthEnds] = fibre_plan(fabric)
        self.book = FaultBook(state_path, run_stamp)

    @classmethod
    def attach(cls) -> "Faults":
        """The faults of the emulation running on this machine (from its manifest)."""
        from ..fabric import FabricError, load_fabric
        manifest = Manifest.load()
        if manifest is None or not pid_alive(manifest.owner_pid):
            raise FaultError("no dcilab emulation is running; start one with "
                             "`dcilab demo --hold 600` (as root)")
        if not manifest.fabric_path or not manifest.fibres:
            raise FaultError(f"the running emulation (pid {manifest.owner_pid}) was started "
                             "without a fabric file path or fibre namespaces, so its links "
                             "cannot be addressed; restart it with this version of dcilab")
        try:
            fabric = load_fabric(manifest.fabric_path)
        except (FabricError, OSError) as exc:
            raise FaultError(f"cannot read the running emulation's fabric file "
                             f"{manifest.fabric_path}: {exc}") from None
        return cls(fabric, manifest.started, fabric_path=manifest.fabric_path,
                   gnmi_address=manifest.services.get("gnmi"), owner_pid=manifest.owner_pid)

    # -- reading ---------------------------------------------------------------------

    def list(self) -> list[Fault]:
        with self.book.locked() as data:
            self._reap(data)
            return list(data["faults"])

    def _reap(self, data: dict) -> None:
        """Forget flaps whose process has ended (they restore their links when they end)."""
        dead = [f for f in data["faults"] if f.kind == FLAP and f.pid
                and not pid_alive(f.pid)]
        for f in dead:
            data["faults"].remove(f)
            data["processes"].pop(str(f.pid), None)

    # -- injecting -------------------------------------------------------------------

    def _add(self, fault: Fault) -> Fault:
        with self.book.locked() as data:
            self._reap(data)
            why = conflicts(fault, data["faults"])
            if why:
                raise FaultError(why)
            data["faults"].append(fault)
            self._apply(data["faults"], fault.wavelengths)
        return fault

    def cut(self, target: str) -> Fault:
        return self._add(Fault(CUT, target, resolve_wavelengths(self.fabric, target), time.time()))

    def dark(self, wavelength: str, end: str) -> Fault:
        [w] = resolve_wavelengths(self.fabric, wavelength, links_allowed=False)
        ends = self.plan[w]
        if end not in (ends.site_a, ends.site_b):
            raise FaultInputError(f"wavelength {w} ends at sites {ends.site_a} and "
                                  f"{ends.site_b}, not {end!r}: give --end {ends.site_a} or "
                                  f"--end {ends.site_b}")
        return self._add(Fault(DARK, w, [w], time.time(), end=end))

    def gray(self, wavelength: str) -> Fault:
        [w] = resolve_wavelengths(self.fabric, wavelength, links_allowed=False)
        return self._add(Fault(GRAY, w, [w], time.time()))

    def set_loss(self, wavelength: str, ratio: float) -> Fault | None:
        """Drop each packet on `wavelength` with probability `ratio` (both directions;
        0 clears it). A new ratio replaces the old one. Resolution: 1 per mille."""
        [w] = resolve_wavelengths(self.fabric, wavelength, links_allowed=False)
        if not 0.0 <= ratio <= 1.0:
            raise FaultInputError(f"loss ratio for {w} must be within 0..1, got {ratio!r}")
        per_mille = round(ratio * 1000)
        with self.book.locked() as data:
            data["faults"] = [f for f in data["faults"] if not (f.kind == LOSS and f.target == w)]
            fault = Fault(LOSS, w, [w], time.time(), loss_per_mille=per_mille) if per_mille else None
            if fault:
                data["faults"].append(fault)
            self._apply(data["faults"], [w])
        return fault

    def degrade(self, line_system: str, span: int | None = None,
                extra_loss_db: float | None = None, amplifier: int | None = None,
                nf_db: float | None = None, launch_power_dbm: float | None = None,
                ramp_s: float = 0.0) -> Fault:
        """Degrade `line_system`'s optics in the transceiver agent; the transceivers'
        readings follow. Given again, the new figures replace the old ones of the same
        knob (another span adds to it): one fault per line says what it is now."""
        from .optical_faults import OpticalFaultError, degrade
        systems = line_systems(self.fabric)
        if line_system not in systems:
            line = next((s for s, ws in systems.items() if line_system in ws), None)
            hint = f" ({line_system!r} is a wavelength of {line})" if line else ""
            raise FaultInputError(f"unknown line system {line_system!r}{hint}; a degradation "
                                  f"acts on a whole line: {_choices(systems)}")
        if not self.gnmi_address:
            raise FaultError("the running emulation has no transceiver agent to degrade: "
                             "start it with gNMI (`dcilab demo --gnmi`)")
        with self.book.locked() as data:
            self._reap(data)
            earlier = next((f for f in data["faults"]
                            if f.kind == DEGRADE and f.target == line_system), None)
            knobs = copy.deepcopy(earlier.knobs) if earlier else {"spans": {}, "amplifiers": {}}
            if span is not None and extra_loss_db is not None:
                knobs["spans"][str(span)] = extra_loss_db
            if amplifier is not None and nf_db is not None:
                knobs["amplifiers"][str(amplifier)] = nf_db
            if launch_power_dbm is not None:
                knobs["launch_power_dbm"] = launch_power_dbm
            knobs["ramp_s"] = ramp_s
            fault = Fault(DEGRADE, line_system, list(systems[line_system]),
                          earlier.since if earlier else time.time(), knobs=knobs)
            why = conflicts(fault, [f for f in data["faults"] if f is not earlier])
            if why:
                raise FaultError(why)
            try:
                degrade(line_system, span=span, extra_loss_db=extra_loss_db,
                        amplifier=amplifier, nf_db=nf_db, launch_power_dbm=launch_power_dbm,
                        ramp_s=ramp_s, address=self.gnmi_address)
            except OpticalFaultError as exc:
                raise (FaultInputError if exc.bad_input else FaultError)(str(exc)) from None
            data["faults"] = [f for f in data["faults"] if f is not earlier] + [fault]
        return fault

    def switch_down(self, name: str) -> Fault:
        """The switch dies: it drops its controller connection, loses its tables, and every
        port of it goes dark (its neighbours lose carrier; a gateway's wavelengths go dark
        at its end). Its controller goes first, so the dead switch reports nothing itself;
        then its light and ports, at once, as a box dies; then its tables (until the ports
        are down it forwards by them, as it did alive, instead of blackholing traffic its
        neighbours still send it)."""
        sw = self.fabric.switches[resolve_switch(self.fabric, name)]
        wavelengths = [link.name for link in self.fabric.ports(name).values() if link.kind == DCI]
        fault = Fault(SWITCH_DOWN, name, wavelengths, time.time())
        with self.book.locked() as data:
            why = conflicts(fault, data["faults"])
            if why:
                raise FaultError(why)
            fault.controllers = _ovs("ovs-vsctl", "--timeout=5", "get-controller",
                                     sw.bridge).split()
            _ovs("ovs-vsctl", "--timeout=5", "del-controller", sw.bridge)
            data["faults"].append(fault)
            self._apply(data["faults"], wavelengths, switches=[name])
            for what in ("flows", "groups", "meters"):
                _ovs("ovs-ofctl", "-O", "OpenFlow13", f"del-{what}", sw.bridge, check=False)
        return fault

    def switch_up(self, name: str) -> list[Fault]:
        resolve_switch(self.fabric, name)
        return self.restore(name, kind=SWITCH_DOWN)

    def flap(self, target: str, period_s: float, count: int | None = None,
             background: bool = True) -> Fault:
        """Cut `target` at since + n x period and light it half a period later, `count`
        times (None: until restored). In the background a process of its own does it
        (recorded, so `restore` and `dcilab clean` stop it); otherwise this call does,
        until done or interrupted, and restores the link on the way out."""
        wavelengths = resolve_wavelengths(self.fabric, target)
        if period_s < 0.02:
            raise FaultInputError(f"flap period must be at least 0.02 s, got {period_s:g}")
        if count is not None and count < 1:
            raise FaultInputError(f"flap count must be at least 1, got {count}")
        fault = Fault(FLAP, target, wavelengths, time.time() + 0.05, period_s=period_s,
                      count=count)
        if not background:
            fault.pid = os.getpid()
            self._add_flap(fault)
            try:
                self.run_flap(fault)
            finally:
                self._end_flap(fault)
            return fault
        with self.book.locked() as data:
            why = conflicts(fault, data["faults"])
            if why:
                raise FaultError(why)
            proc = subprocess.Popen(
                [sys.executable, "-m", FLAP_TAG, "--run-flap", json.dumps(asdict(fault)),
                 "--stamp", repr(self.book.run_stamp), "--fabric", self.fabric_path or ""],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                start_new_session=True)
            fault.pid = proc.pid
            data["faults"].append(fault)
            data["processes"][str(proc.pid)] = FLAP_TAG
        # Its schedule starts once it runs (a second or more for a busy machine's
        # interpreter): the time said is that one, not the time asked (a tester's
        # find). Read outside the lock, which the process takes to record it.
        with proc.stdout:
            ready, _, _ = select.select([proc.stdout], [], [], FLAP_START_TIMEOUT_S)
            started = proc.stdout.readline() if ready else b""
        try:
            fault.since = float(started)
        except ValueError:
            pass                   # not started yet, or failed: `list` says what it is
        return fault

    def _add_flap(self, fault: Fault) -> None:
        with self.book.locked() as data:
            why = conflicts(fault, data["faults"])
            if why:
                raise FaultError(why)
            data["faults"].append(fault)
            # `restore` from another shell, or `dcilab clean`, stops this process by its
            # own command line (never a reused PID).
            data["processes"][str(fault.pid)] = _own_cmdline()

    def _rebase(self, fault: Fault) -> None:
        """A process that started after its first cut was due starts its schedule now
        (else its first cycles would go by in no time); the recorded start follows."""
        now = time.time()
        if now <= fault.since:
            return
        fault.since = now + 0.01
        with self.book.locked() as data:
            for f in data["faults"]:
                if f.kind == FLAP and f.pid == fault.pid:
                    f.since = fault.since

    def _end_flap(self, fault: Fault) -> None:
        with self.book.locked() as data:
            data["faults"] = [f for f in data["faults"]
                              if not (f.kind == FLAP and f.pid == fault.pid)]
            data["processes"].pop(str(fault.pid), None)
            self._apply(data["faults"], fault.wavelengths)

    def run_flap(self, fault: Fault) -> None:
        """The flapping loop: down at since + n x period, up half a period later."""
        ends = [self.plan[w] for w in fault.wavelengths]
        n = 0
        while fault.count is None or n < fault.count:
            for offset, lit in ((0.0, False), (fault.period_s / 2, True)):
                delay = fault.since + n * fault.period_s + offset - time.time()
                if delay > 0:
                    time.sleep(delay)
                apply([(e, lit, lit, None, 0) for e in ends])
            n += 1

    # -- restoring -------------------------------------------------------------------

    def restore(self, target: str | None = None, kind: str | None = None) -> list[Fault]:
        """Undo the faults on `target` (a link, wavelength or switch; for a link also those
        of its wavelengths), or every fault; returns what was undone."""
        if target is not None and target not in self.fabric.switches:
            try:
                resolve_wavelengths(self.fabric, target)
            except FaultError as exc:
                raise FaultInputError(f"{exc}; switches: "
                                      f"{_choices(self.fabric.switches)}") from None
        with self.book.locked() as data:
            self._reap(data)
            active = data["faults"]
            undo = list(active) if target is None else restorable(self.fabric, target, active,
                                                                   kind)
            if target is not None and not undo:
                what = f"no {kind} fault" if kind else "no fault"
                now = "; active: " + "; ".join(f.describe() for f in active) if active else ""
                raise FaultError(f"{target} has {what} to restore{now}")
            data["faults"] = [f for f in active if f not in undo]
            flappers = {f.pid: data["processes"].pop(str(f.pid), FLAP_TAG) for f in undo
                        if f.kind == FLAP and f.pid and f.pid != os.getpid()}
        # A flapping process takes the lock on its way out, so stop it outside the lock.
        for pid, tag in flappers.items():
            kill_pid(pid, tag)
        self._restore_optics({f.target for f in undo if f.kind == DEGRADE})
        with self.book.locked() as data:
            self._apply(data["faults"], sorted({w for f in undo if f.kind != DEGRADE
                                                for w in f.wavelengths}),
                        switches=[f.target for f in undo if f.kind == SWITCH_DOWN],
                        reconnect={f.target: f.controllers for f in undo
                                   if f.kind == SWITCH_DOWN})
        return undo

    def _restore_optics(self, lines: set[str]) -> None:
        """Put degraded line systems back as designed (the agent stops their ramps)."""
        if not lines:
            return
        from .optical_faults import OpticalFaultError, restore
        for line in sorted(lines):
            try:
                restore(line, address=self.gnmi_address)
            except OpticalFaultError as exc:
                raise FaultError(f"{line}: the transceivers did not take the repair: "
                                 f"{exc}") from None

    def _apply(self, faults: list[Fault], wavelengths, switches=(), reconnect=None) -> None:
        """Make the kernel match `faults` for these wavelengths and switches."""
        down = switch_ports_down(faults)
        batch = "".join(
            f"link set dev {self.fabric.switches[name].interface(port)} "
            f"{'down' if name in down else 'up'}\n"
            for name in switches for port in self.fabric.ports(name))
        states = wavelength_states(self.fabric, faults)
        flapping = {w for f in faults if f.kind == FLAP for w in f.wavelengths}
        # The far gateways lose the light in the fibre namespaces: started beside the ports
        # of the switch, not after them, so a dying gateway goes dark everywhere at once.
        changes = [(self.plan[w], None if w in flapping else states[w].light_a,
                    None if w in flapping else states[w].light_b, states[w].gray,
                    states[w].loss_per_mille) for w in wavelengths]
        with ThreadPoolExecutor(max_workers=1) as pool:
            light = pool.submit(apply, changes)
            if batch:   # all ports of a switch at once: it dies (or returns) as one box
                run("ip", "-batch", "-", stdin=batch)
            light.result()
        for name, targets in (reconnect or {}).items():
            if name not in down and targets:
                bridge = self.fabric.switches[name].bridge
                _ovs("ovs-vsctl", "--timeout=5", "set-controller", bridge, *targets)
                problem = shorten_backoff([bridge])   # set-controller made new records
                if problem:
                    print(f"note: {name} retries its controller up to 8 s apart (OVS's "
                          f"default): {problem}", file=sys.stderr)


def _own_cmdline() -> str:
    with open("/proc/self/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def _flap_main(argv: list[str]) -> int:
    """A background flap: `python -m dcilab.emulation.faults --run-flap JSON ...`."""
    from ..fabric import load_fabric
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-flap", required=True)
    parser.add_argument("--stamp", type=float, required=True)
    parser.add_argument("--fabric", required=True)
    args = parser.parse_args(argv)
    fault = Fault(**json.loads(args.run_flap))
    fault.pid = os.getpid()
    faults = Faults(load_fabric(args.fabric), args.stamp, fabric_path=args.fabric)
    faults._rebase(fault)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # run the finally below
    os.write(1, f"{fault.since!r}\n".encode())      # the start, to the command that ran us
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    try:
        faults.run_flap(fault)
    finally:
        faults._end_flap(fault)
    return 0


if __name__ == "__main__":
    sys.exit(_flap_main(sys.argv[1:]))
