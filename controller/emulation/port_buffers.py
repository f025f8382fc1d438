"""Deeper port buffers for the userspace datapath, so that a stall of ovs-vswitchd delays
packets instead of dropping them.

The userspace datapath reads every non-DPDK port through a packet socket of its own, in
its main thread, with the kernel's default receive buffer (212,992 bytes here: 200 to 270
small packets). That thread also handles OpenFlow, revalidation and the status of every
port; now and then it stalls for 0.1-2 s (measured: README, "Failures on the emulation"),
and a port that takes a few thousand packets a second then overflows its socket and drops
them: the fault bench counted 19-192 such drops at a spine port in one event of three, on
streams whose path nothing had touched. A real switch forwards in hardware and has no
such stall. ovs-vswitchd sets no receive buffer of its own, so each of its sockets on one
of our interfaces gets a larger one here, reached through pidfd_getfd(2) (Linux 5.6, root):
nothing else on the machine changes, and no other program's sockets are touched.
"""

from __future__ import annotations

import ctypes
import os
import socket

from ..fabric.model import NAME_PREFIX
from .ovs import OVS_PIDFILE

# Asked for; the kernel doubles what is asked (its bookkeeping), so 4 MiB: about 20x the
# default, a second or more of a busy port.
PORT_BUFFER_BYTES = 2 * 1024 * 1024
_SYS_PIDFD_GETFD = 438                 # the same number on every architecture
# Root may exceed net.core.rmem_max with it; Python names it on no platform (Linux: 33).
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def packet_socket_ports(proc_net_packet: str, ifindex_names: dict[int, str]) -> dict[int, str]:
    """/proc/net/packet -> {socket inode: interface name} for sockets bound to one of
    `ifindex_names`."""
    out = {}
    for line in proc_net_packet.splitlines()[1:]:
        fields = line.split()
        # sk RefCnt Type Proto Iface R Rmem User Inode
        if len(fields) >= 9 and fields[4].isdigit() and int(fields[4]) in ifindex_names:
            out[int(fields[8])] = ifindex_names[int(fields[4])]
    return out


def _our_interfaces(prefix: str) -> dict[int, str]:
    out = {}
    for name in os.listdir("/sys/class/net"):
        if name.startswith(prefix):
            try:
                with open(f"/sys/class/net/{name}/ifindex") as f:
                    out[int(f.read())] = name
            except (OSError, ValueError):
                continue                       # gone meanwhile
    return out


def deepen(buffer_bytes: int = PORT_BUFFER_BYTES, prefix: str = NAME_PREFIX) -> tuple[int, str]:
    """Give ovs-vswitchd's packet sockets on our interfaces `buffer_bytes` of receive
    buffer. Returns (sockets changed, why none could be, or "")."""
    try:
        with open(OVS_PIDFILE) as f:
            pid = int(f.read())
        with open("/proc/net/packet") as f:
            ours = packet_socket_ports(f.read(), _our_interfaces(prefix))
        fds = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in ours:
                fds[int(fd)] = ours[int(target[8:-1])]
        pidfd = os.pidfd_open(pid)
    except (OSError, ValueError) as exc:
        return 0, f"ovs-vswitchd's ports not reached: {exc}"
    libc = ctypes.CDLL(None, use_errno=True)
    changed, problem = 0, ""
    try:
        for fd in fds:
            mine = libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
            if mine < 0:
                problem = f"pidfd_getfd: {os.strerror(ctypes.get_errno())}"
                break
            with socket.socket(fileno=mine) as sock:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, buffer_bytes)
            changed += 1
    except OSError as exc:
        problem = str(exc)
    finally:
        os.close(pidfd)
    return changed, problem
