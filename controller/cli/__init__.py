"""The `dcilab` command: parses arguments and wires the pieces together (no logic here)."""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import signal
import sys

from .. import __version__, parent
from .parsing import Parser
from .stopping import EXIT_TERMINATED, Terminated, ignore_stop_signals, stop_on_sigterm

# In the order `--help` lists them. Each is imported only when needed: `dcilab check` then
# loads neither gRPC nor Mininet (gRPC's poller thread can abort a process that is refusing
# a hostile file under a memory limit).
COMMANDS = ("check", "demo", "lab", "controller", "client", "bench", "clean", "fault", "plan",
            "train")
CLIENT_MODULE_OF = {name: "client" for name in ("reserve", "release", "reservations", "links",
                                                  "switches", "elephants")}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = Parser(
        prog="dcilab",
        description="SDN controller and Mininet emulation for multi-datacenter AI training "
                    "fabrics joined by optical DCI links.",
        epilog="Start with `dcilab check two-dc`, then `dcilab demo` or `dcilab lab` (as root).")
    parser.add_argument("--version", action="version", version=f"dcilab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in (only,) if only in COMMANDS else COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


# Commands that serve sockets (OpenFlow, gRPC, gNMI, metrics) in their own process: a
# write to a peer that has just closed must be an error they handle, never the end of the
# process (a refused switch connection killed the controller with SIGPIPE).
SERVING = frozenset({"controller", "demo", "lab", "train", "bench"})


def main(argv: list[str] | None = None) -> int:
    status = _command(argv)
    if argv is None and sys.argv[1:2] and CLIENT_MODULE_OF.get(sys.argv[1]) == "client":
        # A client command's work is done and said: end here. At the interpreter's
        # teardown a gRPC channel thread could still wake and print a traceback under
        # the command's last line (seen once in CI after a watch's "terminated").
        logging.shutdown()
        try:
            sys.stdout.flush()
        finally:
            sys.stderr.flush()
            os._exit(status)
    return status


def _command(argv: list[str] | None) -> int:
    as_command = argv is None
    if as_command:
        # Before the command's imports: a client command takes seconds to load them on a
        # busy machine, and a SIGTERM then ended it without a word.
        stop_on_sigterm()
        parent.arm_from_env()            # a controller a run started stops with the run
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:            # answered without loading every command
        print(f"dcilab {__version__}")
        return 0
    # A command loads only its own module (`client` registers reserve, links, ... under
    # their own names).
    only = CLIENT_MODULE_OF.get(argv[0], argv[0]) if argv and argv[0] != "client" else None
    if only == "client":
        # Before gRPC loads: its core logged a failed TLS handshake as a raw INFO line
        # above the command's own message (an SRE tester's); the message says it all.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:
        # Inside: loading a command's modules takes a moment, and a SIGTERM then gave a
        # traceback (a lifecycle tester's).
        args = build_parser(only=only).parse_args(argv)
        # `dcilab check f.yaml | head`: a closed pipe ends a report quietly, like any tool's.
        signal.signal(signal.SIGPIPE,
                      signal.SIG_IGN if args.command in SERVING else signal.SIG_DFL)
        logging.basicConfig(level=getattr(args, "log_level", "INFO").upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%H:%M:%S")
        return args.run(args) or 0
    except Terminated:
        if as_command:
            ignore_stop_signals()
        print("terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        if as_command:
            ignore_stop_signals()
        print("interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:
        # SIGTERM inside a C extension's import (scipy's HiGHS, under GNPy) comes out as
        # the ImportError it caused (a lifecycle tester's, 2 runs in 100). Only an import:
        # another error after Ctrl-C (a cleanup that failed) must still be seen.
        if not _caused_by(exc, KeyboardInterrupt):
            raise
        if as_command:
            ignore_stop_signals()
        print("terminated" if _caused_by(exc, Terminated) else "interrupted", file=sys.stderr)
        return EXIT_TERMINATED if _caused_by(exc, Terminated) else 130
    finally:
        if as_command:
            # The process ends next: nothing needs collecting, and the interpreter's exit
            # then does not walk every object (0.3 s of `plan --plot` with matplotlib and
            # GNPy loaded).
            gc.freeze()


def _caused_by(exc: BaseException, kind: type) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
