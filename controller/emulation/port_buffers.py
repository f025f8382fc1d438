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

It sends on every port through one more packet socket, bound to none, with the kernel's
default send buffer too, and a frame waiting in any of our queues (an htb class's FIFO)
counts against that buffer until it leaves: with a few queues full at once (four
wavelengths' best-effort FIFOs behind elephants, a spine link's 1000-packet queue), the
buffer filled, every send failed (EAGAIN, "error sending Ethernet packet" in its log) and
ovs-vswitchd dropped packets at every hop, reserved ones among them, where no queue or
counter of ours showed it (an outside re-tester: 6-16 % of reserved streams lost, 0 with a
larger send buffer). So that socket gets a send buffer for every queue of ours at once,
and the kernel's default back when the emulation is cleaned up (its stop, the next start
after a crashed run, `dcilab clean`).
"""

from __future__ import annotations

import ctypes
import os
import socket

from ..names import NAME_PREFIX
from ..sockets import socket_fds
from .ovs import OVS_PIDFILE

# Asked for; the kernel doubles what is asked (its bookkeeping), so 4 MiB: about 20x the
# default, a second or more of a busy port.
PORT_BUFFER_BYTES = 2 * 1024 * 1024
_SYS_PIDFD_GETFD = 438                 # the same number on every architecture
# Root may exceed net.core.rmem_max with it; Python names it on no platform (Linux: 33).
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
# The send socket's, asked for (doubled by the kernel), at least: the emulation asks for
# what every queue of ours holds at once (`send_buffer_for`). Only frames queued use it.
SEND_BUFFER_BYTES = 32 * 1024 * 1024
_FRAME_TRUESIZE = 4096          # what a full frame queued costs the socket, at most
_MOST_BYTES = 512 * 1024 * 1024


def send_buffer_for(frames: int) -> int:
    """The send buffer to ask for so that `frames` full frames may wait in queues at once."""
    return min(_MOST_BYTES, max(SEND_BUFFER_BYTES, frames * _FRAME_TRUESIZE // 2))


def unbound_packet_sockets(proc_net_packet: str) -> set[int]:
    """/proc/net/packet -> the inodes of sockets bound to no interface (ifindex 0)."""
    return {int(fields[8]) for fields in map(str.split, proc_net_packet.splitlines()[1:])
            if len(fields) >= 9 and fields[4] == "0"}


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


def _on_ovs_sockets(pick, apply) -> tuple[int, str]:
    """`apply(sock)` to each of ovs-vswitchd's sockets whose inode `pick(proc_net_packet)`
    returns, through a duplicate of its descriptor. Returns (sockets done, a problem or "")."""
    try:
        with open(OVS_PIDFILE) as f:
            pid = int(f.read())
        with open("/proc/net/packet") as f:
            wanted = pick(f.read())
        fds = [fd for inode, fd in socket_fds(pid).items() if inode in wanted]
        pidfd = os.pidfd_open(pid)
    except (OSError, ValueError) as exc:
        return 0, f"ovs-vswitchd's sockets not reached: {exc}"
    libc = ctypes.CDLL(None, use_errno=True)
    done, problem = 0, ""
    try:
        for fd in fds:
            mine = libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
            if mine < 0:
                problem = f"pidfd_getfd: {os.strerror(ctypes.get_errno())}"
                break
            with socket.socket(fileno=mine) as sock:
                apply(sock)
            done += 1
    except OSError as exc:
        problem = str(exc)
    finally:
        os.close(pidfd)
    return done, problem


def deepen(buffer_bytes: int = PORT_BUFFER_BYTES, prefix: str = NAME_PREFIX) -> tuple[int, str]:
    """Give ovs-vswitchd's packet sockets on our interfaces `buffer_bytes` of receive
    buffer. Returns (sockets changed, why none could be, or "")."""
    interfaces = _our_interfaces(prefix)
    return _on_ovs_sockets(lambda table: set(packet_socket_ports(table, interfaces)),
                           lambda sock: sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE,
                                                        buffer_bytes))


def widen_send(buffer_bytes: int = SEND_BUFFER_BYTES) -> str:
    """Give ovs-vswitchd's send socket (bound to no interface) `buffer_bytes` of send
    buffer. Returns a problem, or ""."""
    done, problem = _on_ovs_sockets(unbound_packet_sockets, lambda sock: sock.setsockopt(
        socket.SOL_SOCKET, _SO_SNDBUFFORCE, buffer_bytes))
    if done == 0 and not problem:
        problem = "ovs-vswitchd has no unbound packet socket"
    return problem


def restore_send() -> bool:
    """ovs-vswitchd's send socket back to the kernel's default send buffer where a run
    widened it (ovs-vswitchd sets none of its own); whether it was. Quietly nothing where
    ovs-vswitchd or its socket cannot be reached (no run could have widened it then)."""
    try:
        with open("/proc/sys/net/core/wmem_default") as f:
            default = int(f.read())
    except (OSError, ValueError):
        return False
    changed = []

    def shrink(sock: socket.socket) -> None:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) > default:
            sock.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE, default // 2)
            changed.append(sock)
    _on_ovs_sockets(unbound_packet_sockets, shrink)
    return bool(changed)


def send_buffer_bytes() -> int:
    """ovs-vswitchd's send socket's send buffer now, as the kernel reports it (twice what
    was asked); 0 if it cannot be read."""
    seen: list[int] = []
    _on_ovs_sockets(unbound_packet_sockets, lambda sock: seen.append(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)))
    return min(seen, default=0)
