"""`dcilab controller --topology FILE`: the os-ken controller, standalone."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading

from ..app.runner import start_openflow
from ..core import FabricController
from ..fabric import FabricError, load_fabric

log = logging.getLogger("dcilab.controller")


def host_port(text: str) -> tuple[str, int]:
    """'127.0.0.1:6653' -> ('127.0.0.1', 6653); a clear error otherwise."""
    import argparse
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def register(sub) -> None:
    p = sub.add_parser("controller", help="run the SDN controller for a fabric file",
                       description="Run the os-ken controller for a fabric file. It knows every "
                                   "switch, port and host from the file, checks what connects, "
                                   "and programs latency-shortest forwarding.")
    p.add_argument("--topology", required=True, metavar="FILE", help="fabric file (YAML)")
    p.add_argument("--openflow", type=host_port, default=("127.0.0.1", 6653),
                   metavar="HOST:PORT", help="OpenFlow listen address (default 127.0.0.1:6653)")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"], help="default info")
    p.set_defaults(run=run)


def _check_free(host: str, port: int) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return f"cannot listen for OpenFlow on {host}:{port}: {exc.strerror}"
    return None


def run(args) -> int:
    try:
        fabric = load_fabric(args.topology)
    except FabricError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    problem = _check_free(*args.openflow)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller = FabricController(fabric)
    log.info("fabric %s: %d switches, %d hosts, %d wavelengths", fabric.name,
             len(fabric.switches), len(fabric.hosts), sum(1 for _ in fabric.wavelengths()))
    start_openflow(controller, *args.openflow)
    stop.wait()
    log.info("stopping")
    logging.shutdown()
    # os-ken's native hub threads cannot be stopped from outside; nothing is left to flush.
    os._exit(0)
