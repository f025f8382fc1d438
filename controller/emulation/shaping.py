"""Rate shaping of emulated links with htb, without htb's "quantum is big" warnings.

htb derives each class's quantum as rate / r2q (r2q defaults to 10), which at tens of
Mb/s exceeds the 200000-byte ceiling and makes tc warn once per interface. Choosing r2q
from the link's rate keeps the quantum between one MTU and that ceiling.
"""

from __future__ import annotations

import json
import math
import subprocess

from mininet.link import Link, TCIntf

from ..fabric import Fabric
from ..fabric.model import RESERVED_CLASS_MAC

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


# Each wavelength queues reserved traffic apart from best effort, and serves it first: the
# wavelength's class (5:1, Mininet's) has two children, each with its own short FIFO, and
# htb lends the wavelength's rate to the reserved one first (prio 0 before 1). Each child's
# own rate is a token, so best effort borrows all that reservations leave; the meters at
# the ingress leaves keep reserved traffic within its bookings. Before, an elephant that
# filled a reserved wavelength's one FIFO took reserved packets with it (an outside
# tester's reserved stream lost 554 of 8 000 where every wavelength held reservations).
# Reserved packets are told by their source MAC on the wavelength (RESERVED_CLASS_MAC, set
# by the sending gateway's pins: fabric/model.py says why not DSCP or VLAN priority).
RESERVED_CLASS, BEST_EFFORT_CLASS = "5:10", "5:11"
# class -> (its delay line's handle, where the kernel has netem; its FIFO's handle)
_CLASS_LEAVES = {RESERVED_CLASS: ("20:", "21:"), BEST_EFFORT_CLASS: ("30:", "31:")}
_CLASS_RATE = "8kbit"
_CLASS_CEIL = "1gbit"       # above any emulated wavelength (Mininet shapes at most 1000 Mb/s):
                            # the wavelength's class alone limits what the two send


def wavelength_ends(fabric: Fabric) -> list[tuple[str, float]]:
    """(device, the wavelength's latency in ms) for both gateway ports of every wavelength."""
    return [(fabric.switches[end.node].interface(end.port), link.latency_ms)
            for link in fabric.wavelengths() for end in (link.a, link.b)]


def wavelength_devices(fabric: Fabric) -> list[str]:
    """Both gateway ports of every wavelength."""
    return [dev for dev, _ in wavelength_ends(fabric)]


def _qdisc_kinds() -> dict[tuple[str, str], str]:
    """(device, handle) -> kind of every qdisc."""
    done = subprocess.run(["tc", "-j", "qdisc", "show"], capture_output=True, text=True,
                          timeout=30)
    try:
        qdiscs = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return {}
    return {(q["dev"], q["handle"]): q["kind"] for q in qdiscs
            if "dev" in q and "handle" in q and "kind" in q}


def queue_lines(ends: list[tuple[str, float]], packets: int,
                kinds: dict[tuple[str, str], str] | None = None) -> list[str]:
    """`tc -batch` lines giving each wavelength end (device, latency ms) its two classes
    under htb's 5:1, reserved and best effort, each with a FIFO of `packets` full frames
    (in bytes). Where the kernel has netem, the delay line Mininet put at 10: goes away with
    5:1's own queue once 5:1 has children, so each class gets one (the wavelength's
    latency), its FIFO under it. Run again, the lines change only the FIFOs' sizes.
    `kinds`: the qdiscs there now, (device, handle) -> kind (read from tc when None)."""
    kinds = _qdisc_kinds() if kinds is None else kinds
    limit = packets * FRAME_BYTES
    lines = []
    for dev, latency_ms in ends:
        delayed = "netem" in (kinds.get((dev, "10:")), kinds.get((dev, "20:")))
        for prio, (classid, (delay, fifo)) in enumerate(_CLASS_LEAVES.items()):
            lines.append(f"class replace dev {dev} parent 5:1 classid {classid} htb rate "
                         f"{_CLASS_RATE} ceil {_CLASS_CEIL} cburst 15k prio {prio} "
                         f"quantum {FRAME_BYTES}")
            if delayed:
                lines += [f"qdisc replace dev {dev} parent {classid} handle {delay} netem "
                          f"delay {latency_ms * 1000:.3f}us",
                          f"qdisc replace dev {dev} parent {delay}1 handle {fifo} bfifo "
                          f"limit {limit}"]
            else:
                lines.append(f"qdisc replace dev {dev} parent {classid} handle {fifo} bfifo "
                             f"limit {limit}")
    return lines


def class_filter_lines(devices: list[str]) -> list[str]:
    """`tc -batch` lines sending each device's packets from RESERVED_CLASS_MAC to the
    reserved class, untagged or VLAN-tagged (a standby's; its source MAC sits 4 bytes
    further from the network header), and every other packet to best effort (htb's
    default is 5:1, no longer a leaf). After BFD's filter (prio 1): BFD keeps its class."""
    mac = bytes.fromhex(RESERVED_CLASS_MAC.replace(":", ""))
    high, low = int.from_bytes(mac[:4], "big"), int.from_bytes(mac[4:], "big")
    return [line for dev in devices for line in (
        f"filter add dev {dev} parent 5: protocol all prio 2 u32 match ether src "
        f"{RESERVED_CLASS_MAC} flowid {RESERVED_CLASS}",
        f"filter add dev {dev} parent 5: protocol 802.1Q prio 3 u32 match u32 0x{high:08x} "
        f"0xffffffff at -12 match u16 0x{low:04x} 0xffff at -8 flowid {RESERVED_CLASS}",
        f"filter add dev {dev} parent 5: protocol all prio 4 u32 match u32 0 0 "
        f"flowid {BEST_EFFORT_CLASS}")]


def run_batch(lines: list[str]) -> str:
    """Every line of `tc -batch`, on past one that fails (-force); tc's complaints, or ""."""
    if not lines:
        return ""
    done = subprocess.run(["tc", "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                          text=True, capture_output=True, timeout=60)
    return "" if done.returncode == 0 else (done.stderr or done.stdout).strip()


def shorten_wavelength_queues(fabric: Fabric, packets: int = WAVELENGTH_QUEUE_PACKETS) -> str:
    """Both gateway ports of every wavelength: BFD in a class of its own, reserved traffic
    and best effort in two classes under the wavelength's, each with a short FIFO
    (`packets` full frames, in bytes). Returns tc's complaint, or "" when all went in."""
    devices = wavelength_devices(fabric)
    bfd = [line for dev in devices for line in (
        f"class replace dev {dev} parent 5: classid 5:2 htb rate {BFD_CLASS_KBIT}kbit",
        f"filter replace dev {dev} parent 5: protocol ip prio 1 handle 800::800 u32 match ip "
        f"protocol 17 0xff match ip dport {BFD_UDP_PORT} 0xffff flowid 5:2")]
    return run_batch(queue_lines(wavelength_ends(fabric), packets) + bfd
                     + class_filter_lines(devices))
