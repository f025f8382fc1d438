"""Rate shaping of emulated links with htb, without htb's "quantum is big" warnings.

htb derives each class's quantum as rate / r2q (r2q defaults to 10), which at tens of
Mb/s exceeds the 200000-byte ceiling and makes tc warn once per interface. Choosing r2q
from the link's rate keeps the quantum between one MTU and that ceiling.
"""

from __future__ import annotations

import math
import subprocess

from mininet.link import Link, TCIntf

from ..fabric import Fabric
from ..fabric.model import FABRIC, RESERVED_CLASS_MAC

# Full frames an htb-shaped wavelength may queue. Mininet leaves the kernel's 1000 packets,
# which at an emulated 10 Mb/s is over a second of buffer: a cut then loses a second of
# traffic sitting in the queue, and bidirectional TCP waits behind it. 20 full frames are
# 24 ms at 10 Mb/s, a few round trips, so TCP still fills the wavelength. The limit is in
# bytes, as a line card's buffer is: counted in packets, the fault bench's 1000 packet/s
# probes (97 bytes each) took whole slots beside TCP's frames, and an elephant on a
# wavelength with three probe streams got a fifth less than one with one and a half.
WAVELENGTH_QUEUE_PACKETS = 20
FRAME_BYTES = 1514

_QUANTUM_BYTES = 60_000


class ShapedIntf(TCIntf):
    _r2q = 10

    def config(self, bw=None, **params):
        if bw is not None:
            self._r2q = max(1, math.ceil(bw * 1e6 / 8 / _QUANTUM_BYTES))
        return super().config(bw=bw, **params)

    def tc(self, cmd, tc="tc"):
        return super().tc(cmd.replace("htb default 1", f"htb default 1 r2q {self._r2q}"), tc)


class ShapedLink(Link):
    """Mininet's TCLink with ShapedIntf on both ends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, cls1=ShapedIntf, cls2=ShapedIntf, **kwargs)


# BFD control packets (UDP 3784) leave a gateway port in their own htb class, beside the
# wavelength's: a real transceiver carries them out of band of the client traffic, but here
# they would queue behind a full FIFO, and a wavelength that TCP fills lost three in a row
# now and then, so BFD declared a healthy wavelength down (seen in the fault bench). The
# class's rate is tiny beside a wavelength's (10 packets/s of 66 bytes need 5 kb/s).
BFD_UDP_PORT = 3784
BFD_CLASS_KBIT = 100


# Each link between switches queues reserved traffic apart from best effort, and serves it
# first: the link's class (5:1, Mininet's) has two children, each with its own FIFO, and
# htb lends the link's rate to the reserved one first (prio 0 before 1). Each child's own
# rate is a token, so best effort borrows all that reservations leave; the meters at the
# ingress leaves keep reserved traffic within its bookings, which admission makes on every
# link of the path. Before, an elephant that filled a reserved wavelength's one FIFO took
# reserved packets with it (an outside tester's reserved stream lost 554 of 8 000 where
# every wavelength held reservations), and a spine link's, after a cut, 7-12 %. Reserved
# packets are told by their source MAC between the leaves (RESERVED_CLASS_MAC, set by the
# ingress leaf's pin: fabric/model.py says why not DSCP or VLAN priority).
RESERVED_CLASS, BEST_EFFORT_CLASS = "5:10", "5:11"
# class -> (its delay line's handle, where the kernel has netem; its FIFO's handle)
_CLASS_LEAVES = {RESERVED_CLASS: ("20:", "21:"), BEST_EFFORT_CLASS: ("30:", "31:")}
_CLASS_FILTER_PRIOS = (2, 3, 4)   # reserved untagged, reserved tagged, the rest (BFD's is 1)
_CLASS_RATE = "8kbit"
_CLASS_CEIL = "1gbit"       # above any emulated link (Mininet shapes at most 1000 Mb/s): the
                            # link's class alone limits what the two send
# Each class's FIFO on a link inside a site, in full frames (in bytes), as a wavelength's.
# Mininet left the kernel's 1000 packets there: 0.6 s at 20 Mb/s. Before ovs-vswitchd's
# send buffer was widened (port_buffers.widen_send), its drops kept those queues short; once
# widened, a spine link's queue filled behind elephants and held TCP's round trips at
# 0.6 s, and after a failure elephants took seconds to find their rate again.
SITE_QUEUE_PACKETS = 20
# Frames the leaves' queues towards their hosts hold (the kernel's, left as Mininet made
# them: a host link is the host's to fill).
HOST_QUEUE_PACKETS = 1000


def wavelength_ends(fabric: Fabric, packets: int = WAVELENGTH_QUEUE_PACKETS
                    ) -> list[tuple[str, float, str]]:
    """(device, the wavelength's latency in ms, each class's FIFO: `packets` full frames)
    for both gateway ports of every wavelength."""
    return [(fabric.switches[end.node].interface(end.port), link.latency_ms,
             f"bfifo limit {packets * FRAME_BYTES}")
            for link in fabric.wavelengths() for end in (link.a, link.b)]


def site_link_ends(fabric: Fabric) -> list[tuple[str, float, str]]:
    """The same for both ends of every link between two switches of a site."""
    return [(fabric.switches[end.node].interface(end.port), link.latency_ms,
             f"bfifo limit {SITE_QUEUE_PACKETS * FRAME_BYTES}")
            for link in fabric.links if link.kind == FABRIC for end in (link.a, link.b)]


def frames_queued_at_most(fabric: Fabric, packets: int = WAVELENGTH_QUEUE_PACKETS) -> int:
    """Full frames every queue ovs-vswitchd sends into can hold at once: both classes of
    every link end between switches, and each leaf's queue towards its hosts."""
    return (2 * (len(wavelength_ends(fabric)) * packets
                 + len(site_link_ends(fabric)) * SITE_QUEUE_PACKETS)
            + len(fabric.hosts) * HOST_QUEUE_PACKETS)


def wavelength_devices(fabric: Fabric) -> list[str]:
    """Both gateway ports of every wavelength."""
    return [dev for dev, _, _ in wavelength_ends(fabric)]


def queue_lines(ends: list[tuple[str, float, str]], delayed: bool) -> list[str]:
    """`tc -batch` lines giving each link end (device, latency ms, FIFO) its two classes
    under htb's 5:1, reserved and best effort, each with that FIFO. `delayed`: the
    emulation adds the latency with netem (where the kernel has it); Mininet put that delay
    line at 10:, as 5:1's own queue, which goes once 5:1 has children, so each class gets
    one, its FIFO under it. Run again, the lines change only the FIFOs' sizes."""
    lines = []
    for dev, latency_ms, fifo_spec in ends:
        for prio, (classid, (delay, fifo)) in enumerate(_CLASS_LEAVES.items()):
            lines.append(f"class replace dev {dev} parent 5:1 classid {classid} htb rate "
                         f"{_CLASS_RATE} ceil {_CLASS_CEIL} cburst 15k prio {prio} "
                         f"quantum {FRAME_BYTES}")
            if delayed:
                lines += [f"qdisc replace dev {dev} parent {classid} handle {delay} netem "
                          f"delay {latency_ms * 1000:.3f}us",
                          f"qdisc replace dev {dev} parent {delay}1 handle {fifo} {fifo_spec}"]
            else:
                lines.append(f"qdisc replace dev {dev} parent {classid} handle {fifo} "
                             f"{fifo_spec}")
    return lines


def class_filter_lines(devices: list[str]) -> list[str]:
    """`tc -batch` lines, once per device, sending its packets from RESERVED_CLASS_MAC to
    the reserved class and every other packet to best effort, after BFD's filter (prio 1).
    Two for the reserved class: a VLAN-tagged frame (a standby's) sent through a packet
    socket, as OVS's userspace datapath sends, has its network header after the tag here,
    so its source MAC sits 4 bytes further back; an untagged frame, or a tag the kernel
    carries beside the frame (its datapath), matches the first. Put in before the classes:
    a filter naming a class not made yet leaves the packet to htb's default, 5:1, still a
    leaf then; once 5:1 has children, only these filters keep packets from being sent
    unshaped (htb sends to a default that is not a leaf directly)."""
    mac = bytes.fromhex(RESERVED_CLASS_MAC.replace(":", ""))
    high, low = int.from_bytes(mac[:4], "big"), int.from_bytes(mac[4:], "big")
    untagged, tagged, rest = _CLASS_FILTER_PRIOS
    return [line for dev in devices for line in (
        f"filter add dev {dev} parent 5: protocol all prio {untagged} u32 match ether src "
        f"{RESERVED_CLASS_MAC} flowid {RESERVED_CLASS}",
        f"filter add dev {dev} parent 5: protocol 802.1Q prio {tagged} u32 match u32 "
        f"0x{high:08x} 0xffffffff at -12 match u16 0x{low:04x} 0xffff at -8 "
        f"flowid {RESERVED_CLASS}",
        f"filter add dev {dev} parent 5: protocol all prio {rest} u32 match u32 0 0 "
        f"flowid {BEST_EFFORT_CLASS}")]


def class_filter_delete_lines(devices: list[str]) -> list[str]:
    """`tc -batch` lines removing what `class_filter_lines` put on each device."""
    return [f"filter delete dev {dev} parent 5: prio {prio}" for dev in devices
            for prio in _CLASS_FILTER_PRIOS]


def put_class_filters(devices: list[str]) -> str:
    """`class_filter_lines` on each device, replacing the filters a run before put there
    rather than stacking a second set; tc's complaints, or ""."""
    run_batch(class_filter_delete_lines(devices))    # none there yet: tc's "no such" is fine
    return run_batch(class_filter_lines(devices))


def one_queue_lines(ends: list[tuple[str, float, str]]) -> list[str]:
    """`tc -batch` lines putting each link end back to one FIFO in 5:1 (the two classes
    gone, so 5:1 is a leaf again): what is left when the classes could not all be made."""
    return [*class_filter_delete_lines([dev for dev, _, _ in ends]), *(
        line for dev, _, fifo_spec in ends for line in (
            *(f"class delete dev {dev} classid {classid}" for classid in _CLASS_LEAVES),
            f"qdisc replace dev {dev} parent 5:1 handle 10: {fifo_spec}"))]


def run_batch(lines: list[str]) -> str:
    """Every line of `tc -batch`, on past one that fails (-force); tc's complaints, or ""."""
    if not lines:
        return ""
    done = subprocess.run(["tc", "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                          text=True, capture_output=True, timeout=60)
    return "" if done.returncode == 0 else (done.stderr or done.stdout).strip()


def shape_classes(fabric: Fabric, delayed: bool,
                  packets: int = WAVELENGTH_QUEUE_PACKETS) -> str:
    """Both ends of every link between switches: reserved traffic and best effort in two
    classes under the link's, each with its FIFO (a wavelength's of `packets` full frames,
    in bytes; `delayed` as for `queue_lines`); on wavelengths, BFD in a class of its own.
    Returns "" when all went in; else what tc refused and what the links were left with:
    one FIFO each, shaped, where the classes could not all be made (never a link sent
    unshaped, as htb sends packets it cannot class)."""
    ends = wavelength_ends(fabric, packets) + site_link_ends(fabric)
    devices = [dev for dev, _, _ in ends]
    bfd = [line for dev in wavelength_devices(fabric) for line in (
        f"class replace dev {dev} parent 5: classid 5:2 htb rate {BFD_CLASS_KBIT}kbit",
        f"filter replace dev {dev} parent 5: protocol ip prio 1 handle 800::800 u32 match ip "
        f"protocol 17 0xff match ip dport {BFD_UDP_PORT} 0xffff flowid 5:2")]
    problem = run_batch(bfd) or put_class_filters(devices)
    if not problem:
        problem = run_batch(queue_lines(ends, delayed))
        if not problem:
            return ""
    run_batch(one_queue_lines(ends))
    return (f"{problem}; reserved traffic is not served first: one queue per link end"
            + (" (the delay line netem held may be gone)" if delayed else ""))
