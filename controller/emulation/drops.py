"""Where the emulation drops packets: each queue (qdisc) of an emulation interface in this
namespace, and each ovs-vswitchd packet socket (a port whose reader fell behind: the
userspace datapath reads every non-DPDK port through one, with the default receive
buffer). Counted so far; a benchmark compares two readings to say where a loss happened.
"""

from __future__ import annotations

import re
import subprocess

from ..names import NAME_PREFIX

_QDISC = re.compile(r"^qdisc \S+ \S+ dev (\S+) ")
_DROPPED = re.compile(r"dropped (\d+)")
# `ss -0 -a -m -p`: "p_raw ... *:dl1gw1p3 ... users:(("ovs-vswitchd",...)) skmem:(...,d12)"
_SOCKET = re.compile(r"\*:(\S+)\s.*\"ovs-vswitchd\".*skmem:\([^)]*,d(\d+)\)")


def drop_counters(timeout_s: float = 5.0) -> dict[str, int]:
    """{"qdisc IFACE": n, "socket IFACE": n} for this emulation's interfaces (named
    NAME_PREFIX...); a tool that cannot be run counts nothing."""
    return {**qdisc_drops(_output(["tc", "-s", "qdisc", "show"], timeout_s)),
            **socket_drops(_output(["ss", "-0", "-a", "-m", "-p"], timeout_s))}


def queue_drop_counts(timeout_s: float = 5.0) -> dict[str, int]:
    """{"qdisc IFACE": n} alone (one `tc` call)."""
    return qdisc_drops(_output(["tc", "-s", "qdisc", "show"], timeout_s))


def _output(cmd: list[str], timeout_s: float) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def qdisc_drops(text: str) -> dict[str, int]:
    """`tc -s qdisc show` -> {"qdisc IFACE": dropped} for our interfaces; an interface's
    figure is the largest of its qdiscs' (a parent counts its children's drops again)."""
    out: dict[str, int] = {}
    dev = None
    for line in text.splitlines():
        head = _QDISC.match(line)
        if head:
            dev = head.group(1)
            continue
        dropped = _DROPPED.search(line)
        if dropped and dev and dev.startswith(NAME_PREFIX):
            key = f"qdisc {dev}"
            out[key] = max(out.get(key, 0), int(dropped.group(1)))
    return out


def socket_drops(text: str) -> dict[str, int]:
    """`ss -0 -a -m -p` -> {"socket IFACE": dropped} for ovs-vswitchd's sockets on ours."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        sock = _SOCKET.search(line)
        if sock and sock.group(1).startswith(NAME_PREFIX):
            out[f"socket {sock.group(1)}"] = int(sock.group(2))
    return out


def dropped_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The places that dropped packets between two readings, and how many."""
    return {k: v - before.get(k, 0) for k, v in sorted(after.items())
            if v > before.get(k, 0)}
