"""Whose is a listening port: read from /proc, because a port that accepts a connection
may be another program's. A child told to listen on a port picked free a moment before
can lose it to a stranger; found only by connecting, the stranger's listener passed for
the child's, and an emulation's switches were handed to another user's controller (an
outside tester's, on a shared machine)."""

from __future__ import annotations

import os
import socket
from contextlib import ExitStack

_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
_LISTEN = "0A"                      # TCP_LISTEN, as /proc/net/tcp writes the state


def free_ports(count: int, besides=()) -> list[int]:
    """`count` distinct ports on 127.0.0.1 nobody listens on now, none of `besides`. Each
    socket is held until all are picked: ports picked one at a time, each socket closed
    before the next, can come back twice (CI gave a controller one port for OpenFlow and
    metrics)."""
    with ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port not in besides:
                ports.append(port)
        return ports


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on now (a child may still lose it to a stranger:
    see `listener_of`)."""
    return free_ports(1)[0]


def socket_fds(pid: int) -> dict[int, int]:
    """{socket inode: descriptor} of process `pid`; empty if it is gone or not ours to read."""
    out = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue                    # closed meanwhile
        if target.startswith("socket:[") and target.endswith("]"):
            out[int(target[8:-1])] = int(fd)
    return out


def listening_inodes(port: int, tables: tuple[str, ...] = _TABLES) -> set[int]:
    """The inodes of the TCP sockets listening on `port` (any address) in this network
    namespace."""
    out = set()
    for table in tables:
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue                    # no IPv6 here
        for line in lines:
            # sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode
            fields = line.split()
            if (len(fields) >= 10 and fields[3] == _LISTEN
                    and int(fields[1].rsplit(":", 1)[1], 16) == port):
                out.add(int(fields[9]))
    return out


def listener_of(pid: int, port: int) -> bool | None:
    """Whether `pid` alone listens on `port`: True; another process does (beside it too,
    with SO_REUSEPORT): False; nobody: None."""
    inodes = listening_inodes(port)
    if not inodes:
        return None
    return not inodes - socket_fds(pid).keys()
