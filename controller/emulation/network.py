"""Start and stop the emulated fabric on Open vSwitch (kernel or userspace datapath) with Mininet."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from functools import partial

from .shaping import ShapedLink, frames_queued_at_most, shape_classes
from mininet.log import setLogLevel, warn
from mininet.net import Mininet
from mininet.node import OVSSwitch, RemoteController
from mininet.util import errRun

from ..fabric import Fabric
from . import bfd, ovs, port_buffers
from .cleanup import (Manifest, clean, forget_faults, host_namespace, live_owner, name_hosts,
                      namespace_processes, ours, start_lock, stop_namespace_processes,
                      stop_pids)
from .datapath import AUTO, DatapathError, choose_datapath, kernel_module_loaded, needs_tx_offload_off
from .fibre import create_namespace, delete_namespace, fibre_plan, namespaces
from .netem import netem_available
from .ovs import ensure_ovs
from .topo import FabricTopo, rate_problems


class EmulationError(RuntimeError):
    pass


class OurController(RemoteController):
    """Mininet's RemoteController, checked with a socket. Mininet checks by running telnet
    in a shell whose output it decodes as UTF-8: when the controller's OpenFlow HELLO came
    back before telnet quit, that raised UnicodeDecodeError and the emulation did not start
    (seen twice in one run on a busy machine)."""

    def checkListening(self) -> None:
        try:
            socket.create_connection((self.ip, self.port), timeout=5).close()
        except OSError as e:       # as Mininet: a warning, the switches keep trying
            warn(f"the controller does not listen on {self.ip}:{self.port} yet: "
                 f"{e.strerror or e}\n")


class FabricSwitch(OVSSwitch):
    """Mininet's OVSSwitch, with extra `ovs-vsctl set interface` options per interface
    (BFD on the DCI ports) in the one transaction that creates the bridge."""

    def __init__(self, name, interface_options: dict[str, str] | None = None, **params):
        super().__init__(name, **params)
        self.interface_options = interface_options or {}

    def vsctl(self, *args, **kwargs):
        """ovs-vsctl as a process of its own. Mininet runs it as a line typed into the
        node's shell, and a terminal line ends at 4 KiB: the one transaction creating a
        gateway of 33 wavelength ports (their BFD options) was cut, and the bridge never
        made, with nothing said (an outside tester's 33 x 400ZR+ line system)."""
        if self.batch:
            return super().vsctl(*args, **kwargs)
        out, err, code = errRun(" ".join(["ovs-vsctl", *(str(a).strip() for a in args)]),
                                shell=True)
        if code != 0:
            raise EmulationError(f"ovs-vsctl for switch {self.name} failed (exit {code}): "
                                 f"{err.strip()[:500]}")
        return out + err

    def intfOpts(self, intf) -> str:
        extra = self.interface_options.get(str(intf))
        opts = super().intfOpts(intf)
        if not extra:
            return opts
        return opts + " " + extra if opts else f" -- set Interface {intf} {extra}"


class Emulation:
    """The Mininet network of one fabric file, pointed at a remote OpenFlow controller.

    Use as a context manager: whatever happens inside, everything it created is removed.
    """

    def __init__(self, fabric: Fabric, controller: tuple[str, int] = ("127.0.0.1", 6653),
                 say=print, datapath: str = AUTO, gnmi: str | None = None,
                 reconfiguration_s: float | None = None, fabric_path: str | None = None,
                 fibre: bool = True, bfd_ms: int | None = None,
                 adopted: Iterable[tuple[int, str, str | None]] = ()):
        """`adopted`: processes started for this run before it (pid, the tag its command
        line contains, a directory of its): in the manifest from the first one written."""
        self.fabric = fabric
        self._adopted = list(adopted)
        self._host_namespaces: list[str] = []     # named by name_hosts, removed at stop
        self.requested_datapath = datapath
        self.datapath: str | None = None       # kernel or user, once started
        self.fibre = fibre      # wavelengths through fibre namespaces (False: plain veth pairs)
        self.bfd_ms = bfd_ms    # BFD on the DCI ports (gray failures), ms; None: off
        self.controller = controller
        self.say = say
        self.net: Mininet | None = None
        # HOST:PORT to serve the transceivers over gNMI (optical state, transceivers.py)
        self.gnmi = gnmi
        self.reconfiguration_s = reconfiguration_s
        self.transceivers = None
        self.manifest = Manifest(os.getpid(), fabric.name,
                                 fabric_path=os.path.abspath(fabric_path) if fabric_path else None)
        self.delay_emulated = False

    def __enter__(self) -> "Emulation":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def adopt(self, pid: int, tag: str, directory: str | None = None) -> None:
        """Record a process started for this emulation (and a temporary directory of its),
        so a crash cannot leak them."""
        self.manifest.processes[pid] = tag
        if directory:
            self.manifest.dirs.append(directory)
        self.manifest.save()

    def record_service(self, name: str, address: str) -> None:
        """Record where a service of this run listens (e.g. the controller's gRPC)."""
        self.manifest.services[name] = address
        self.manifest.save()

    def start(self) -> None:
        problems = rate_problems(self.fabric)
        if problems:
            raise EmulationError("cannot emulate fabric %r:\n  %s" % (
                self.fabric.name, "\n  ".join(sorted(set(problems))[:5])))
        try:
            self.datapath = choose_datapath(self.requested_datapath, kernel_module_loaded())
        except DatapathError as exc:
            raise EmulationError(str(exc)) from None
        ensure_ovs(self.say)
        with start_lock():
            earlier = Manifest.load()
            if live_owner(earlier):
                raise EmulationError(
                    f"another dcilab emulation (pid {earlier.owner_pid}, fabric "
                    f"{earlier.fabric!r}) is running; stop it first, or run `dcilab clean` "
                    "if it is stuck")
            clean(say=lambda m: self.say(f"leftovers of an earlier run: {m}"))
            self.manifest.started = time.time()
            for pid, tag, directory in self._adopted:
                self.adopt(pid, tag, directory)
            self.manifest.save()
        # One fibre namespace per line system; recorded before anything goes in it.
        self.manifest.fibres = namespaces(fibre_plan(self.fabric)) if self.fibre else []
        self.manifest.save()
        for namespace in self.manifest.fibres:
            create_namespace(namespace)

        self.delay_emulated = netem_available()
        if not self.delay_emulated:
            self.say("note: this kernel has no tc netem, so modeled DCI latency is used for "
                     "path costs but not added as delay on the links")
        setLogLevel("warning")
        bfd_on = bool(self.bfd_ms) and any(True for _ in self.fabric.wavelengths())
        switch = partial(FabricSwitch, datapath=self.datapath, failMode="secure",
                         protocols="OpenFlow13", interface_options=(
                             bfd.interface_options(self.fabric, self.bfd_ms) if bfd_on else None))
        n_sw, n_links = len(self.fabric.switches), len(self.fabric.links)
        self.say(f"building emulation of {self.fabric.name}: {n_sw} switches, "
                 f"{len(self.fabric.hosts)} hosts, {n_links} links "
                 f"({sum(1 for _ in self.fabric.wavelengths())} wavelengths), "
                 f"{self.datapath} datapath")
        topo = FabricTopo(self.fabric, delay=self.delay_emulated, fibre=self.fibre)
        self.net = Mininet(topo=topo,
                           switch=switch, link=ShapedLink, controller=None, autoSetMacs=False,
                           build=False, waitConnected=False)
        self.net.addController(OurController("c0", ip=self.controller[0],
                                             port=self.controller[1]))
        began = time.monotonic()
        self.net.build()
        # Progress between the long steps (four-dc-ring: 23 s said nothing before).
        self.say(f"made {len(self.net.hosts)} hosts and {n_links} links in "
                 f"{time.monotonic() - began:.0f} s; starting the switches")
        for host in self.net.hosts:
            self.manifest.processes[host.pid] = f"mininet:{host.name}"
        self.manifest.save()
        problem = name_hosts({host.name: host.pid for host in self.net.hosts})
        self._host_namespaces = [host_namespace(host.name) for host in self.net.hosts]
        if problem:
            self.say(f"note: hosts' namespaces not named ({problem}): after a kill -9, "
                     "`dcilab clean` cannot find what was started in them")
        self.net.start()
        problem = ovs.shorten_backoff([sw.bridge for sw in self.fabric.switches.values()])
        if problem:
            self.say(f"note: the switches retry a restarted controller up to 8 s apart "
                     f"(OVS's default), not {ovs.CONTROLLER_MAX_BACKOFF_MS} ms: {problem}")
        if needs_tx_offload_off(self.datapath):
            for host in self.net.hosts:
                host.cmd(f"ethtool -K {host.defaultIntf()} tx off")
        problem = shape_classes(self.fabric, self.delay_emulated)
        if problem:
            self.say(f"note: link queues: {problem}")
        if self.datapath == "user":
            deepened, problem = port_buffers.deepen()
            if problem:
                self.say(f"note: ovs-vswitchd's port buffers left at the kernel's default "
                         f"({deepened} deepened): {problem}")
            problem = port_buffers.widen_send(port_buffers.send_buffer_for(
                frames_queued_at_most(self.fabric)))
            if problem:
                self.say(f"note: ovs-vswitchd's send buffer left at the kernel's default, so "
                         f"packets queued on many links at once may be dropped: {problem}")
        if bfd_on:
            self.say(f"switches started ({time.monotonic() - began:.0f} s); waiting for BFD "
                     f"on the wavelengths")
            down = bfd.wait_up(self.fabric)
            if down:
                self.say(f"note: BFD is not up on {', '.join(down)}")
        if self.gnmi:
            self._start_transceivers()

    def _start_transceivers(self) -> None:
        from .transceivers import TransceiverAgent
        options = {} if self.reconfiguration_s is None else {
            "reconfiguration_s": self.reconfiguration_s}
        self.transceivers = TransceiverAgent(self.fabric, self.gnmi,
                                             faults_run=self.manifest.started, **options).start()
        self.manifest.services["gnmi"] = self.transceivers.gnmi_address
        self.manifest.save()
        self.say(f"transceivers: gNMI on {self.transceivers.gnmi_address}")

    def host(self, name: str):
        """The Mininet host of a fabric host name (e.g. dc1-h1)."""
        return self.net.get(self.fabric.hosts[name].node)

    def stop(self) -> None:
        if self.transceivers is not None:
            self.transceivers.stop()
            self.transceivers = None
        if not self.manifest.started:
            return      # refused before it began (another run goes): nothing here is ours
        # Removed under us (`clean --force`) and another run started since: not ours.
        mine = ours(self.manifest)
        if mine:
            forget_faults()     # a flapping link must not toggle what is being removed
        try:
            if self.net is not None:
                self.say("stopping emulation")
                gone = [h.name for h in self.net.hosts if h.shell is None or
                        h.shell.poll() is not None]
                try:
                    if gone:
                        # Mininet would delete their interfaces through their shells, and
                        # wait for ever on a shell that is gone: removed by prefix below.
                        self.say(f"hosts {', '.join(gone[:4])}{' …' if len(gone) > 4 else ''}"
                                 " were stopped from outside this run")
                    else:
                        self._interrupt_commands()
                        # What was started in a host and left running (a daemon from the
                        # lab's prompt): by PID, found by the host's network namespace.
                        stop_pids(namespace_processes([h.pid for h in self.net.hosts]))
                        try:
                            self.net.stop()
                        except Exception as exc:    # a node left mid-command: by prefix
                            self.say(f"Mininet could not stop every node ({exc!r}); "
                                     f"removing what is left by name")
                finally:
                    self.net = None
        finally:
            if mine:
                # left in a host whose shell was stopped from outside: by its namespace
                stop_namespace_processes(self._host_namespaces)
                for namespace in self.manifest.fibres + self._host_namespaces:
                    delete_namespace(namespace)
                clean(say=lambda m: self.say(f"cleanup: {m}"))
            else:
                self.say("cleanup: left to the run started since (this one was removed "
                         "under it by `dcilab clean --force`)")

    def _interrupt_commands(self, grace_s: float = 5.0) -> None:
        """Stop a command cut short (Ctrl-C or SIGTERM in the lab's CLI on a host, or while
        the emulation was being built on any node): Mininet cannot run another command on
        that node, so it could not stop, until it ends."""
        for host in self.net.hosts + self.net.switches:
            if host.waiting:
                host.sendInt()
                deadline = time.monotonic() + grace_s
                while host.waiting and time.monotonic() < deadline:
                    host.monitor(timeoutms=200)
                host.waiting = False
