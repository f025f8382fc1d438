"""The `dcilab` command: parses arguments and wires the pieces together (no logic here)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from .. import __version__
from . import bench, check, clean, client, controller, demo, fault, lab


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcilab",
        description="SDN controller and Mininet emulation for multi-datacenter AI training "
                    "fabrics joined by optical DCI links.",
        epilog="Start with `dcilab check two-dc`, then `dcilab demo` or `dcilab lab` (as root).")
    parser.add_argument("--version", action="version", version=f"dcilab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (check, demo, lab, controller, client, bench, clean, fault):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # `dcilab check f.yaml | head`: a closed pipe ends the output quietly, like any tool's.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(args, "log_level", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
