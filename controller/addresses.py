"""Listen and connect addresses as text: an IPv6 host goes in brackets ([::1]:6653), as
gRPC targets, URLs and every HOST:PORT option expect it."""

from __future__ import annotations

import argparse


def address_text(host: str, port: int) -> str:
    """('::1', 6653) -> '[::1]:6653'; ('127.0.0.1', 6653) -> '127.0.0.1:6653'."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def host_port(text: str) -> tuple[str, int]:
    """'127.0.0.1:6653' -> ('127.0.0.1', 6653), '[::1]:6653' -> ('::1', 6653); a clear
    error otherwise."""
    if "://" in text:                 # http://127.0.0.1:50051 read as an IPv6 host
        raise argparse.ArgumentTypeError(f"expected HOST:PORT without a scheme, got {text!r}")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    if any(c.isspace() or c == "/" for c in host):
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:       # ::1:6653 could be ::1 port 6653 or ::1:6653 with none
        raise argparse.ArgumentTypeError(f"an IPv6 address goes in brackets, as "
                                         f"[::1]:6653; got {text!r}")
    if not host or "[" in host or "]" in host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)
