"""`dcilab fault ...`: inject, list and restore faults on the running emulation.

Parsing and wiring only; what each fault does is in dcilab.emulation.faults.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict

from ..emulation.faults import FaultError, FaultInputError, Faults
from ..emulation.optical_state import MAX_RAMP_S
from ..emulation.fibre import FibreError
from .failure import FAILED, USAGE, json_failure
from ..argtypes import AT_LEAST_ONE, POSITIVE_SECONDS, checked
from .stopping import Terminated


def register(sub) -> None:
    p = sub.add_parser(
        "fault", help="inject faults into the running emulation: cut, dark, gray, flap, "
                      "switch-down/up, degrade, restore, list",
        description="Inject faults into the emulation running on this machine (start one with "
                    "`dcilab demo --hold 600`), by the names of its fabric file: links "
                    "(dc1-dc2-a), wavelengths (dc1-dc2-a.w1), switches (dc1-gw1). A cut is "
                    "lost light: both gateways lose carrier, their ports stay administratively "
                    "up. Faults stay until restored (or until the emulation stops, or "
                    "`dcilab clean`). Needs root.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  dcilab fault cut dc1-dc2-a            # the whole line system\n"
               "  dcilab fault dark dc1-dc2-a.w1 --end dc1\n"
               "  dcilab fault gray dc1-dc2-a.w2\n"
               "  dcilab fault flap dc1-dc2-a.w3 --period 1 --count 5\n"
               "  dcilab fault switch-down dc2-gw1\n"
               "  dcilab fault degrade dc1-dc2-a --span 1 --extra-loss-db 8 --ramp-s 120\n"
               "  dcilab fault list\n"
               "  dcilab fault restore                  # everything")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    only = ("act only if the running emulation is of this fabric file (or of a fabric of "
            "this name: the file tells apart two users' runs of one shipped fabric): on a "
            "shared machine, another's run is refused, nothing done (without it, whatever "
            "run is up is acted on, and named on stderr)")
    p.add_argument("--fabric", metavar="NAME|FILE", help=only)
    # --json and --fabric are also accepted after the operation (`dcilab fault list --json`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the result as JSON")
    common.add_argument("--fabric", metavar="NAME|FILE", default=argparse.SUPPRESS, help=only)
    ops = p.add_subparsers(dest="op", metavar="OP", required=True)
    add = ops.add_parser

    def op_parser(name, **kw):
        kw.setdefault("description", kw.get("help"))    # `dcilab fault cut --help` says it
        return add(name, parents=[common], **kw)

    ops.add_parser = op_parser
    link_or_wave = ("a DCI link (line system), e.g. dc1-dc2-a, or one of its wavelengths, "
                    "e.g. dc1-dc2-a.w1 (`dcilab check FABRIC` lists them)")
    wave = "a wavelength, e.g. dc1-dc2-a.w1"
    o = ops.add_parser("cut", help="cut a line system (all its wavelengths) or one wavelength")
    o.add_argument("target", metavar="LINK|WAVELENGTH", help=link_or_wave)
    o = ops.add_parser("dark", help="a transceiver goes dark: both ends lose carrier")
    o.add_argument("target", metavar="WAVELENGTH", help=wave)
    o.add_argument("--end", required=True, metavar="SITE",
                   help="the site whose transceiver is dark (its gateway loses the link, the "
                        "far gateway loses the signal: both lose carrier)")
    o = ops.add_parser("gray", help="carrier stays up, everything is dropped (both directions)")
    o.add_argument("target", metavar="WAVELENGTH", help=wave)
    o = ops.add_parser("flap", help="cut and restore again and again",
                       description="Cut LINK|WAVELENGTH at the start of every period and light "
                                   "it again half a period later. Runs in the background "
                                   "(a process of its own, stopped by `restore`) unless "
                                   "--foreground, which runs here until done or Ctrl-C.")
    o.add_argument("target", metavar="LINK|WAVELENGTH", help=link_or_wave)
    o.add_argument("--period", type=POSITIVE_SECONDS, required=True, metavar="S",
                   help="one cycle in seconds: down for the first half, up for the second")
    o.add_argument("--count", type=AT_LEAST_ONE, metavar="N",
                   help="cycles (default: until restored)")
    o.add_argument("--foreground", action="store_true",
                   help="flap from this command and wait for it (Ctrl-C stops and restores)")
    o = ops.add_parser("switch-down", help="a gateway, spine or leaf dies",
                       description="The switch drops its controller connection and loses its "
                                   "flows, groups and meters; then all its ports go down, so "
                                   "its neighbours lose carrier (a gateway's wavelengths go dark "
                                   "at its end). `switch-up` brings the ports back and "
                                   "reconnects it to its controller with empty tables.")
    o.add_argument("target", metavar="SWITCH", help="a switch by its fabric name, e.g. dc2-gw1")
    o = ops.add_parser("switch-up", help="bring a switch back (empty tables, reconnected)")
    o.add_argument("target", metavar="SWITCH", help="a switch by its fabric name, e.g. dc2-gw1")
    o = ops.add_parser(
        "degrade", help="degrade a line system's optics (the emulation started with --gnmi)",
        description="Degrade the optics of a line system in the emulation's transceiver "
                    "agent (`dcilab demo --gnmi`): extra loss in one span, an amplifier's "
                    "noise figure, or the launch power, reached linearly over --ramp-s. The "
                    "light still passes: the transceivers' reported OSNR, pre-FEC BER, Q and "
                    "margin fall (gNMI, and the controller's metrics with --gnmi), packets are "
                    "lost once the BER passes the mode's FEC threshold, and a controller "
                    "started with --adapt steps the mode down first (for a fall slower than about "
                    "0.3 dB/s of margin; a faster one goes dark, then down). Given again, the new "
                    "figures replace the old. `restore LINK` puts the line back as designed.")
    o.add_argument("target", metavar="LINK", help="a DCI link (line system), e.g. dc1-dc2-a")
    whole = checked(int, lambda v: v >= 1, "a whole number", "must be 1 or more")
    o.add_argument("--span", type=whole, metavar="N", help="the span (1 = the first from end a)")
    o.add_argument("--extra-loss-db", type=float, metavar="DB",
                   help="loss added to that span, dB (with --span)")
    o.add_argument("--amp", type=whole, metavar="N", help="the in-line amplifier (1 = the first)")
    o.add_argument("--nf-db", type=float, metavar="DB",
                   help="that amplifier's noise figure, dB (with --amp)")
    o.add_argument("--launch-power-dbm", type=float, metavar="DBM",
                   help="the launch power per channel, dBm")
    o.add_argument("--ramp-s", type=checked(float, lambda v: 0 <= v <= MAX_RAMP_S,
                                            "a number of seconds",
                                            f"must be from 0 to {MAX_RAMP_S:g} (a day)"),
                   default=0.0, metavar="S",
                   help="reach the figures linearly over S seconds (default 0: at once)")
    o = ops.add_parser("restore", help="undo the faults on TARGET, or all of them")
    o.add_argument("target", nargs="?", metavar="TARGET",
                   help="a link (also undoes its wavelengths' faults), wavelength or switch")
    ops.add_parser("list", help="the faults in force")
    p.set_defaults(run=run)


def run(args) -> int:
    if os.geteuid() != 0:
        print("dcilab fault needs root (it changes links and namespaces)", file=sys.stderr)
        return 1
    try:
        if args.fabric is not None and not args.fabric.strip():    # "$FABRIC" unset
            raise FaultInputError("--fabric is empty: give a fabric file or name")
        faults = Faults.attach()
        if args.fabric and not _is_of(faults, args.fabric):
            # a path that is no file here was taken for a fabric's name: say which it was
            missing = ("; there is no file of that name in " + os.getcwd()
                       if not os.path.exists(args.fabric) and (
                           os.sep in args.fabric or args.fabric.endswith((".yaml", ".yml")))
                       else "")
            raise FaultError(f"the running emulation is of fabric {faults.fabric.name!r} "
                             f"({faults.fabric_path}, pid {faults.owner_pid}), not "
                             f"{args.fabric!r}{missing}: nothing done")
        if not args.json:
            # Said on stderr, apart from the report: which running emulation is acted on.
            print(f"emulation {faults.fabric.name} ({faults.fabric_path}, pid "
                  f"{faults.owner_pid})", file=sys.stderr)
        return _dispatch(faults, args)
    except (FaultError, FibreError) as exc:
        if args.json:
            # the shape the client commands' errors have
            json_failure(USAGE if isinstance(exc, FaultInputError) else FAILED, str(exc))
        else:
            print(f"dcilab fault {args.op}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, FaultInputError) else 1


def _is_of(faults: Faults, fabric: str) -> bool:
    """Whether the running emulation is of `fabric`: its name, or its file."""
    return fabric == faults.fabric.name or (
        os.path.exists(fabric) and os.path.realpath(fabric) == os.path.realpath(
            faults.fabric_path))


def _dispatch(faults: Faults, args) -> int:
    op = args.op
    if op == "list":
        active = faults.list()
        _print(args, active, "no faults in force" if not active else None)
        return 0
    if op == "restore":
        undone = faults.restore(args.target)
        _print(args, undone, "nothing to restore" if not undone else None, prefix="restored ")
        return 0
    if op == "switch-up":
        _print(args, faults.switch_up(args.target), prefix="restored ")
        return 0
    if op == "flap" and args.foreground:
        print(f"flapping {args.target} every {args.period:g} s (Ctrl-C stops and restores)",
              flush=True)
        try:
            fault = faults.flap(args.target, args.period, args.count, background=False)
        except KeyboardInterrupt as stopped:
            print(f"stopped; {args.target} restored")
            if isinstance(stopped, Terminated):
                raise                   # exit 143, as for every command SIGTERM ends
            return 0
        _print(args, [fault], prefix="done and restored: ")
        return 0
    inject = {
        "cut": lambda: faults.cut(args.target),
        "dark": lambda: faults.dark(args.target, args.end),
        "gray": lambda: faults.gray(args.target),
        "flap": lambda: faults.flap(args.target, args.period, args.count),
        "switch-down": lambda: faults.switch_down(args.target),
        "degrade": lambda: faults.degrade(
            args.target, span=args.span, extra_loss_db=args.extra_loss_db,
            amplifier=args.amp, nf_db=args.nf_db, launch_power_dbm=args.launch_power_dbm,
            ramp_s=args.ramp_s),
    }[op]
    _print(args, [inject()])
    return 0


def _print(args, faults, empty: str | None = None, prefix: str = "") -> None:
    if args.json:
        print(json.dumps({"faults": [asdict(f) for f in faults]}))
        return
    if empty:
        print(empty)
    for f in faults:
        print(f"{prefix}{f.describe()} (since {time.strftime('%H:%M:%S', time.localtime(f.since))}, "
              f"{len(f.wavelengths)} wavelength(s): {', '.join(f.wavelengths) or '-'})")
