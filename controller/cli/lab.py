"""`dcilab lab [FILE]`: the controller and the emulation of FILE, and Mininet's CLI on them.

Mininet's commands take the fabric's names (`pingall`, `dc1-h1 ping dc2-h3`, `iperf
dc1-h1 dc2-h1`, `link dc1-gw1 dc2-gw1 down`); the dcilab commands in LAB_COMMANDS run as
`dcilab NAME ...` would, against this lab. Everything is removed on `exit`, end of input,
the end of a --script, Ctrl-C while starting or in a script, and SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from ..argtypes import WHOLE_SECONDS, file_name
from ..emulation.datapath import AUTO, DATAPATHS
from ..emulation.datapath import HELP as DATAPATH_HELP
from ..emulation.network import EmulationError
from ..emulation.ovs import OvsError
from ..emulation.traffic import iperf_concurrent
from ..fabric import FabricError, load_fabric
from ..lab import ForeignController, Lab
from ..resources import DEFAULT_TOPOLOGY, shipped_hint, topology_arg
from ..addresses import address_text, host_port
from ..core.adaptation import DEFAULT_MISMATCH_S
from ..te.elephants import PIN_HOLD_S
from ..te.placement import DEFAULT_MAX_STRETCH, Policy
from .controller import (DEFAULT_ELEPHANT_FRACTION, DEFAULT_ELEPHANT_POLLS, adaptation_options,
                         add_steering_arguments, steering_options)
from .client import server_address
from .demo import add_bfd_argument, add_transceiver_arguments, gnmi_problem, say
from .progress import optical_model
from .stopping import on_stop_signals

# dcilab subcommands offered at the lab's prompt, each run as `dcilab NAME ...`. True: it
# talks to the controller, so it is given this lab's `--server`. A new one is one line here.
LAB_COMMANDS = {
    "links": True,
    "reserve": True,
    "release": True,
    "reservations": True,
    "elephants": True,
    "switches": True,
    "fault": False,       # acts on the running emulation (this lab), found by its manifest
}


class _Terminated(SystemExit):
    """SIGTERM: unlike Ctrl-C (which Mininet's prompt catches), it ends the lab. A SystemExit,
    because Mininet's log handler swallows any Exception raised while it writes a line."""


def _terminate(*_):
    raise _Terminated


def register(sub) -> None:
    p = sub.add_parser(
        "lab", help="controller + emulation, and Mininet's CLI to ping, iperf and reserve",
        description="Start the controller and the emulation of FILE (as `dcilab demo` does), "
                    "then open Mininet's CLI on it. Mininet's commands take the fabric's "
                    "names: pingall, dc1-h1 ping dc2-h3, iperf dc1-h1 dc2-h1, link dc1-gw1 "
                    "dc2-gw1 down (every wavelength between the two gateways; `dcilab fault "
                    "cut dc1-dc2-a.w1` in another shell cuts one). Added: "
                    + ", ".join(LAB_COMMANDS) + " (as the dcilab commands of those names, "
                    "against this lab; `links` replaces Mininet's, whose list `net` also "
                    "shows). `exit` or Ctrl-D stops everything and removes it. Needs root.")
    p.add_argument("file", nargs="?", default=DEFAULT_TOPOLOGY, type=topology_arg,
                   help=f"fabric file, or the name of one shipped with dcilab "
                        f"(default {DEFAULT_TOPOLOGY})")
    p.add_argument("--script", metavar="FILE", type=file_name,
                   help="run the commands in FILE (one per line, as typed at the prompt), "
                        "then stop, instead of reading the terminal; exit status 1 if a line "
                        "failed (a dcilab command refused, an unknown command or node); a "
                        "watch (`reservations --watch`) never returns, so it ends a script "
                        "only by a timeout or Ctrl-C")
    p.add_argument("--datapath", choices=DATAPATHS, default=AUTO, help=DATAPATH_HELP)
    p.add_argument("--verbose", action="store_true", help="echo the controller's log")
    p.add_argument("--controller", type=host_port, metavar="HOST:PORT",
                   help="no controller of the lab's own: the switches connect to the one at "
                        "this OpenFlow address (a `dcilab controller --topology FILE` of the "
                        "same file, that you start, stop and restart; the lab never stops "
                        "it). The controller options below are then that one's to take")
    p.add_argument("--server", default=None, metavar="HOST:PORT", type=server_address,
                   help="with --controller: its gRPC API, for the prompt's commands "
                        "(default 127.0.0.1:50051)")
    add_transceiver_arguments(p)
    add_bfd_argument(p)
    add_steering_arguments(p)
    p.set_defaults(run=run)


def _beside_problem(args) -> str | None:
    """Options that configure the lab's own controller, given with --controller."""
    if args.controller is None:
        return "--server goes with --controller" if args.server else None
    given = [flag for flag, value, default in (
        ("--verbose", args.verbose, False), ("--adapt", args.adapt, False),
        ("--policy", args.policy, Policy.LOADAWARE.value),
        ("--elephant-fraction", args.elephant_fraction, DEFAULT_ELEPHANT_FRACTION),
        ("--elephant-polls", args.elephant_polls, DEFAULT_ELEPHANT_POLLS),
        ("--max-stretch", args.max_stretch, DEFAULT_MAX_STRETCH),
        ("--pin-hold", args.pin_hold, PIN_HOLD_S),
        ("--mismatch-s", args.mismatch_s, DEFAULT_MISMATCH_S)) if value != default]
    if given:
        return (f"{', '.join(given)} {'configures' if len(given) == 1 else 'configure'} the "
                f"lab's own controller; with --controller, give "
                f"{'it' if len(given) == 1 else 'them'} to that one")
    return None


def lab_command(name: str, server: str):
    """The prompt's `name` command: `dcilab name [--server server] <rest of the line>`."""
    def command(line: str) -> int:
        from . import build_parser          # here: cli/__init__ imports this module
        argv = [name, *(["--server", server] if LAB_COMMANDS[name] else [])]
        try:
            argv += shlex.split(line)
            args = build_parser().parse_args(argv)
        except ValueError as exc:               # unbalanced quotes
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        except SystemExit as exc:               # argparse said what was wrong, or --help
            return exc.code if isinstance(exc.code, int) else 2
        return args.run(args)
    command.__doc__ = f"dcilab {name} against this lab (`{name} --help` for its options)"
    return command


def dcilab_command(server: str):
    """The prompt's `dcilab`: `dcilab links ...` as typed in a shell runs the lab command of
    that name, so lines copied from the README or a shell work here too."""
    commands = {name: lab_command(name, server) for name in LAB_COMMANDS}

    def command(line: str) -> int:
        name, _, rest = line.strip().partition(" ")
        if name not in commands:
            print(f"dcilab {name}: not a command of this prompt; here: "
                  f"{', '.join(LAB_COMMANDS)} (with or without `dcilab`); anything else from "
                  f"a shell, or `sh dcilab ...`", file=sys.stderr)
            return 2
        return commands[name](rest)
    command.__doc__ = f"dcilab {'|'.join(LAB_COMMANDS)} ...: the same as without `dcilab`"
    return command


def iperf_command(lab: Lab):
    """The prompt's `iperf`: Mininet's waits for a server report that iperf 2.1 (Debian 12)
    never prints, and hangs; this one runs iperf3, as the demo does."""
    parser = argparse.ArgumentParser(prog="iperf", description="TCP iperf3 from SRC to DST "
                                     "(default: the first and the last host)")
    parser.add_argument("hosts", nargs="*", metavar="HOST", help="SRC DST (fabric names)")
    parser.add_argument("-t", type=WHOLE_SECONDS, default=5, metavar="S",
                        help="whole seconds (default 5)")

    def command(line: str) -> int:
        try:
            args = parser.parse_args(shlex.split(line))
        except ValueError as exc:
            print(f"iperf: {exc}", file=sys.stderr)
            return 2
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 2
        names = list(lab.fabric.hosts)
        pair = args.hosts or [names[0], names[-1]]
        unknown = [h for h in pair if h not in lab.fabric.hosts]
        if len(pair) != 2 or unknown:
            print(f"iperf: expected two of the hosts {', '.join(names)}", file=sys.stderr)
            return 2
        if pair[0] == pair[1]:              # a re-tester's loopback read as 25 Gb/s of DCI
            print(f"iperf: {pair[0]} to itself crosses no link; give two hosts",
                  file=sys.stderr)
            return 2
        print(f"*** iperf3: {pair[0]} -> {pair[1]} for {args.t:g} s", flush=True)
        try:
            [result] = iperf_concurrent(lab.emulation, [tuple(pair)], duration_s=args.t)
        except RuntimeError as exc:         # its server did not start: this command fails,
            print(f"iperf: {exc}", file=sys.stderr)        # not the whole lab
            return 1
        if result.error:
            print(f"iperf: {result.error}", file=sys.stderr)
            return 1
        real = result.bits_per_second / lab.fabric.scale
        print(f"*** {pair[0]} -> {pair[1]}: {result.bits_per_second / 1e6:.2f} Mb/s emulated "
              f"({real / 1e9:.1f} Gb/s real at scale {lab.fabric.scale:g})")
        return 0
    command.__doc__ = "iperf [SRC DST] [-t S]: TCP throughput with iperf3 (fabric host names)"
    return command


def _two_sites_hosts(fabric) -> tuple[str, str]:
    """Two hosts of the fabric for the prompt's examples, in two sites where it has two."""
    hosts = list(fabric.hosts.values())
    other = next((h for h in hosts if h.site != hosts[0].site), hosts[-1])
    return hosts[0].name, other.name


def run(args) -> int:
    from ..emulation.console import FabricCLI
    problem = gnmi_problem(args) or _beside_problem(args)   # wrong wherever it runs
    if problem:
        print(f"dcilab lab: {problem}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("dcilab lab needs root (Mininet creates namespaces and OVS bridges)",
              file=sys.stderr)
        return 1
    if args.script and (os.path.isdir(args.script) or not os.access(args.script, os.R_OK)):
        # a directory passes os.access, and Mininet's `source` swallows its read error
        what = "it is a directory" if os.path.isdir(args.script) else "no such file, or " \
            "not readable"
        print(f"dcilab lab: cannot read the script {args.script}: {what}", file=sys.stderr)
        return 2
    try:
        fabric = load_fabric(args.file, optical_model("lab"))
    except FabricError as exc:
        print(f"{exc}{shipped_hint(args.file)}", file=sys.stderr)
        return 2
    on_stop_signals(_terminate)
    interrupted = False
    try:
        from ..api.client import DEFAULT_SERVER
        beside = (args.controller, args.server or DEFAULT_SERVER) if args.controller else None
        with Lab(fabric, Path(args.file), say=say, echo_controller=args.verbose,
                 controller_args=steering_options(args) + adaptation_options(args),
                 datapath=args.datapath, gnmi=args.gnmi,
                 reconfiguration_s=args.reconfiguration_s, bfd_ms=args.bfd,
                 external=beside) as lab:
            server = lab.grpc_address
            if beside:
                say(f"controller: yours, OpenFlow {address_text(*args.controller)}, gRPC API "
                    f"{server}" + (f"; transceivers' gNMI on {lab.gnmi} (give your "
                                   f"controller --gnmi {lab.gnmi})" if lab.gnmi else ""))
            else:
                say(f"controller: policy {args.policy}; gRPC API on {server}; metrics on "
                    f"{lab.controller.metrics_url}"
                    + (f"; transceivers' gNMI on {lab.gnmi}" if lab.gnmi else "")
                    + ("; rate adaptation on" if args.adapt else ""))
            if beside and args.script and not lab.connected:
                # a script's results without a controller would read as a pass
                raise RuntimeError(f"not running {args.script}: your controller has not "
                                   "connected every switch")
            hosts = ", ".join(f"{h.name} {h.ip}" for h in fabric.hosts.values())
            say(f"hosts: {hosts}")
            if not args.script:
                a, b = _two_sites_hosts(fabric)
                say(f"try: pingall | {a} ping -c3 {b} | iperf {a} {b} | links --kind dci | "
                    f"reserve {a} {b} --gbps 100 | reservations | help | exit")
            commands = {name: lab_command(name, server) for name in LAB_COMMANDS}
            cli = FabricCLI(lab.emulation, commands | {"iperf": iperf_command(lab),
                                                       "dcilab": dcilab_command(server)},
                            script=args.script)
            if args.script and cli.interrupted:
                say(f"{args.script} interrupted at: {cli.failed[-1]}")
                interrupted = True
            elif args.script and cli.failed:
                say(f"{len(cli.failed)} line(s) of {args.script} failed: "
                    + "; ".join(cli.failed[:5]) + ("; …" if len(cli.failed) > 5 else ""))
    except _Terminated:
        say("terminated; everything stopped and removed")
        return 143
    except ForeignController as exc:
        print(f"dcilab lab: {exc}", file=sys.stderr)
        return 2
    except (EmulationError, OvsError, RuntimeError) as exc:
        print(f"dcilab lab: {exc}", file=sys.stderr)
        return 1
    say("lab stopped; everything removed")
    return 130 if interrupted else 1 if args.script and cli.failed else 0
