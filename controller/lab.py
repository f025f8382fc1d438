"""A lab: the controller, as its own process, plus the emulation of the same fabric file.

The two meet only over OpenFlow on 127.0.0.1, as on a user's VM. Used by `dcilab demo`,
the benchmarks and the integration tests.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from . import parent
from .sockets import free_port, free_ports, listener_of
from .emulation.cleanup import kill_pid
from .emulation.datapath import AUTO
from .emulation.faults import Faults
from .emulation.network import Emulation
from .fabric import Fabric

READY_MARK = "ready: all"          # logged by the core once every switch is programmed
CONTROLLER_TAG = "dcilab controller"


def rescaled(topology: Path, scale: float, workdir: Path) -> Path:
    """A copy of a fabric file in `workdir` with another emulation `scale` (the benchmarks
    and tests lower it to keep all their traffic within what userspace OVS forwards)."""
    data = yaml.safe_load(Path(topology).read_text())
    data["scale"] = scale
    out = Path(workdir) / Path(topology).name
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


class ForeignController(RuntimeError):
    """The controller a lab is told to use serves another fabric."""


def foreign(served, fabric: Fabric) -> str | None:
    """How the fabric a controller serves (the API's `Fabric`) differs from `fabric`, in
    words, or None if they are the same by name and by every switch's datapath id."""
    if served.name != fabric.name:
        return f"serves fabric {served.name!r}, not {fabric.name!r}"
    theirs = {s.name: s.dpid for s in served.switches}
    ours = {s.name: s.dpid for s in fabric.switches.values()}
    if theirs != ours:
        odd = sorted(set(theirs.items()) ^ set(ours.items()))
        return (f"serves a fabric named {fabric.name!r} whose switches differ from this "
                f"file's (first: {odd[0][0]}): another file of that name")
    return None


class PortTaken(RuntimeError):
    """Another process took a port picked for the controller before it could listen."""


# A controller whose port another process took is started again on other ports this often.
START_ATTEMPTS = 3


class ControllerProcess:
    """`dcilab controller` in a child process; its log is kept and can be echoed."""

    def __init__(self, topology: Path, port: int, echo=None, extra_args: list[str] = (),
                 on_exit=None, besides=()):
        """`besides`: ports picked for others not yet listening (the lab's gNMI server's),
        which its own gRPC and metrics ports must not be."""
        self.port = port
        self.grpc_port, self.metrics_port = free_ports(2, besides={port, *besides})
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._echo = echo
        self._on_exit = on_exit           # told if it ends before we stop it
        self._stopping = False
        self._listening = False         # its exit is news only once it has listened
        # A run of its own: reservations live in a temporary database unless told otherwise.
        # `dcilab clean` may have removed it already (a crashed run's is in the manifest).
        self._state_dir = tempfile.TemporaryDirectory(prefix="dcilab-",
                                                      ignore_cleanup_errors=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dcilab", "controller", "--topology", str(topology),
             "--openflow", f"127.0.0.1:{port}", "--grpc", f"127.0.0.1:{self.grpc_port}",
             "--metrics", f"127.0.0.1:{self.metrics_port}",
             "--state", str(Path(self._state_dir.name) / "state.db"), *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            # Out of the terminal's process group: Ctrl-C typed at the lab's prompt (which
            # interrupts a command there) and a hangup stopped it; the run stops it itself.
            start_new_session=True,
            # ... or, killed before the manifest names it (`kill -9` in its first seconds:
            # a re-tester's stayed, its ports open), the kernel stops it.
            env=parent.env_for_child())
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip()
            self.lines.append(line)
            if READY_MARK in line:
                self._ready.set()
            if self._echo:
                self._echo(f"  controller | {line}")
        code = self.proc.wait()          # reaped at once: no zombie a PID check mistakes
        if not self._stopping and self._listening and self._on_exit:
            # A lab whose controller died (killed, crashed) said nothing and kept its
            # prompt, its commands going to a dead address (a restart tester's find).
            self._on_exit(f"the controller (pid {self.proc.pid}) exited, code {code}: the "
                          f"switches keep their rules, but nothing answers reserve, links "
                          f"or a failure now; stop this run and start it again")

    @property
    def state_dir(self) -> str:
        """Where its state file lives, removed when it stops (or by `dcilab clean`)."""
        return self._state_dir.name

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def wait_listening(self, timeout_s: float = 20.0) -> None:
        """Until this controller listens for OpenFlow, gRPC and metrics: the listener on
        each port must be its own (PortTaken if another process's is there)."""
        deadline = time.monotonic() + timeout_s
        ports = (self.grpc_port, self.metrics_port, self.port)
        for port in ports:
            while True:
                mine = listener_of(self.proc.pid, port)
                if mine:
                    break
                if mine is False:
                    raise PortTaken(f"port {port}, picked for the controller, is another "
                                    f"process's")
                if self.proc.poll() is not None:
                    # It may have exited because a stranger holds a port it had yet to take.
                    taken = [p for p in ports if listener_of(self.proc.pid, p) is False]
                    if taken:
                        raise PortTaken(f"port {taken[0]}, picked for the controller, is "
                                        f"another process's")
                    raise RuntimeError("controller exited:\n" + "\n".join(self.lines[-20:]))
                if time.monotonic() > deadline:
                    raise RuntimeError(f"controller did not listen on port {port} "
                                       f"in {timeout_s:g} s")
                time.sleep(0.1)
        self._listening = True

    def wait_ready(self, timeout_s: float) -> bool:
        """True once the controller has programmed every switch of the fabric."""
        return self._ready.wait(timeout_s)

    def stop(self) -> None:
        self._stopping = True
        if self.proc.poll() is None:
            kill_pid(self.proc.pid, CONTROLLER_TAG, grace_s=5.0)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=2)
        self._state_dir.cleanup()

    @classmethod
    def listening(cls, topology: Path, timeout_s: float = 20.0, say=lambda _: None,
                  **options) -> "ControllerProcess":
        """A controller on ports picked free, once it listens on all of them; started
        again on others if a stranger takes one first (ports in the kernel's ephemeral
        range are anyone's: a tester's controller on a port of its choice took one)."""
        for attempt in range(1, START_ATTEMPTS + 1):
            port, = free_ports(1, besides=options.get("besides", ()))
            controller = cls(topology, port, **options)
            try:
                controller.wait_listening(timeout_s)
                return controller
            except PortTaken as exc:
                controller.stop()
                if attempt == START_ATTEMPTS:
                    raise
                say(f"{exc}: starting the controller again on other ports")
            except BaseException:
                controller.stop()
                raise
        raise AssertionError("unreachable")


class Lab:
    """Controller process + emulation; a context manager that always cleans up."""

    def __init__(self, fabric: Fabric, topology: Path, say=print, echo_controller=False,
                 controller_args: list[str] = (), datapath: str = AUTO, gnmi: bool = False,
                 reconfiguration_s: float | None = None, bfd_ms: int | None = None,
                 external: tuple[tuple[str, int], str] | None = None):
        """`external`: (OpenFlow address, gRPC address) of a controller run by someone else
        (`dcilab controller`, to restart it under a running emulation): the lab starts none,
        and never stops that one."""
        self.fabric = fabric
        self.external = external
        self.connected = False     # beside your controller: it connected every switch
        self.datapath = datapath
        self.topology = Path(topology)
        self.say = say
        self.echo_controller = echo_controller
        self.controller_args = list(controller_args)
        # Serve the transceivers over gNMI and have the controller subscribe to them.
        self._gnmi_port = free_port() if gnmi else None
        self.gnmi = f"127.0.0.1:{self._gnmi_port}" if gnmi else None
        self.reconfiguration_s = reconfiguration_s
        self.bfd_ms = bfd_ms          # BFD on the DCI ports, for gray failures (None: off)
        if self.gnmi:
            self.controller_args += ["--gnmi", self.gnmi]
        self.controller: ControllerProcess | None = None
        self.emulation: Emulation | None = None

    def __enter__(self) -> "Lab":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def grpc_address(self) -> str:
        return self.external[1] if self.external else self.controller.grpc_address

    def start(self, ready_timeout_s: float = 60.0) -> None:
        if self.external:
            self._start_beside(ready_timeout_s)
            return
        self.say("starting the controller")
        self.controller = ControllerProcess.listening(
            self.topology, say=self.say, echo=self.say if self.echo_controller else None,
            extra_args=self.controller_args, on_exit=self.say,
            besides={self._gnmi_port} - {None})
        port = self.controller.port
        self.say(f"controller listening for OpenFlow on 127.0.0.1:{port}")
        # The controller goes in the run's manifest as soon as the emulation has one,
        # before the build: killed while it built (seconds for a ring), the run left the
        # controller and its state directory where `dcilab clean` could not find them.
        self._start_emulation(("127.0.0.1", port), adopted=[
            (self.controller.proc.pid, CONTROLLER_TAG, self.controller.state_dir)])
        # so that `dcilab links`, `reserve`... in another shell find this controller
        self.emulation.record_service("grpc", self.controller.grpc_address)
        self.say(f"waiting for the controller to program {len(self.fabric.switches)} switches")
        if not self.controller.wait_ready(ready_timeout_s):
            raise RuntimeError(
                f"the controller did not program every switch within {ready_timeout_s:g} s; "
                "its last lines:\n" + "\n".join(self.controller.lines[-15:]))

    def _start_emulation(self, openflow: tuple[str, int], adopted=()) -> None:
        """The emulation of the lab's fabric, its switches pointed at `openflow`, owning
        the processes of `adopted` (pid, tag, directory) from its first manifest on."""
        self.emulation = Emulation(self.fabric, openflow, say=self.say, adopted=adopted,
                                   datapath=self.datapath, gnmi=self.gnmi,
                                   reconfiguration_s=self.reconfiguration_s,
                                   fabric_path=str(self.topology), bfd_ms=self.bfd_ms)
        self.emulation.start()

    def _start_beside(self, ready_timeout_s: float) -> None:
        """The emulation alone, its switches pointed at the external controller; waits (up
        to the timeout) until that controller says every switch is connected, and goes on
        without, saying so (`connected` stays False): a drill may start it later, or
        restart it."""
        from .api.client import ApiError, Client, Unreachable
        (host, port), grpc_address = self.external
        # Before its switches are handed to it: a tester's lab, its own controller dead on
        # a port another's held, connected 9 switches to that stranger's for a minute and
        # said only "6 of 12 switches not connected" (the stranger's count).
        try:
            with Client(grpc_address, timeout=2.0) as client:
                served = client.fabric()
        except (ApiError, Unreachable):
            served = None                 # not up yet: a drill may start it later
            self.say(f"the controller's gRPC API at {grpc_address} does not answer (yet): "
                     f"which fabric it serves is checked once it does; meanwhile the "
                     f"switches connect to whatever listens on {host}:{port}")
        if served is not None:
            self._refuse_foreign(served, grpc_address)
        self._start_emulation((host, port))
        self.emulation.record_service("grpc", grpc_address)
        self.say(f"waiting for the controller at {host}:{port} (gRPC {grpc_address}) to "
                 f"connect {len(self.fabric.switches)} switches")
        deadline, seen = time.monotonic() + ready_timeout_s, "no answer"
        while time.monotonic() < deadline:
            try:
                with Client(grpc_address, timeout=2.0) as client:
                    served = client.fabric()
                self._refuse_foreign(served, grpc_address)
                switches = served.switches
                missing = [s.name for s in switches if not s.connected]
                if switches and not missing:
                    self.connected = True
                    return
                seen = f"{len(missing)} of {len(switches)} switches not connected"
            except (ApiError, Unreachable) as exc:
                seen = str(exc)
            time.sleep(0.5)
        self.say(f"the controller at {grpc_address} has not connected every switch in "
                 f"{ready_timeout_s:g} s ({seen}); the lab goes on: the switches keep "
                 f"trying")

    def _refuse_foreign(self, served, grpc_address: str) -> None:
        """ForeignController if the controller at `grpc_address` serves another fabric."""
        why = foreign(served, self.fabric)
        if why:
            raise ForeignController(f"the controller at {grpc_address} {why}: start "
                                    f"`dcilab controller --topology {self.topology}` for "
                                    f"this lab, or name yours with --server")

    @property
    def faults(self) -> Faults:
        """Inject and restore faults on this lab's emulation (the same as `dcilab fault`)."""
        if self.emulation is None:
            raise RuntimeError("the lab is not running")
        return Faults(self.fabric, self.emulation.manifest.started,
                      fabric_path=str(self.topology))

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        if self.emulation is not None:
            self.emulation.stop()
            self.emulation = None
