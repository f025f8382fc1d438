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


def wavelength_devices(fabric: Fabric) -> list[str]:
    """Both gateway ports of every wavelength."""
    return [fabric.switches[end.node].interface(end.port)
            for link in fabric.wavelengths() for end in (link.a, link.b)]


def _queues_at_10() -> dict[str, str]:
    """device -> kind of the qdisc with handle 10: (where Mininet puts netem, under htb's
    5:1, when a link has a delay and the kernel has sch_netem)."""
    done = subprocess.run(["tc", "-j", "qdisc", "show"], capture_output=True, text=True,
                          timeout=30)
    try:
        qdiscs = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return {}
    return {q["dev"]: q["kind"] for q in qdiscs if q.get("handle") == "10:" and "dev" in q}


def queue_lines(devices: list[str], packets: int) -> list[str]:
    """`tc -batch` lines giving each device's wavelength queue room for `packets` full
    frames, in bytes: a bfifo at 10: under htb's class; where a delay line is there
    (netem), under it, as its child (netem hands it the packets whose delay is over, and
    they wait there for htb's tokens). Replacing netem by the bfifo is refused ("must
    match existing qdisc"), and a reviewer found that stopped the whole batch."""
    at_10 = _queues_at_10()
    limit = packets * FRAME_BYTES
    return [f"qdisc replace dev {dev} parent 10:1 handle 11: bfifo limit {limit}"
            if at_10.get(dev, "bfifo") not in ("bfifo", "pfifo", "pfifo_fast") else
            f"qdisc replace dev {dev} parent 5:1 handle 10: bfifo limit {limit}"
            for dev in devices]


def run_batch(lines: list[str]) -> str:
    """Every line of `tc -batch`, on past one that fails (-force); tc's complaints, or ""."""
    if not lines:
        return ""
    done = subprocess.run(["tc", "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                          text=True, capture_output=True, timeout=60)
    return "" if done.returncode == 0 else (done.stderr or done.stdout).strip()


def shorten_wavelength_queues(fabric: Fabric, packets: int = WAVELENGTH_QUEUE_PACKETS) -> str:
    """A short FIFO (`packets` full frames, in bytes) in the htb class (5:1, Mininet's)
    of both gateway ports of every wavelength, and BFD in a class of its own. Returns tc's
    complaint, or "" when all went in."""
    devices = wavelength_devices(fabric)
    bfd = [line for dev in devices for line in (
        f"class replace dev {dev} parent 5: classid 5:2 htb rate {BFD_CLASS_KBIT}kbit",
        f"filter replace dev {dev} parent 5: protocol ip prio 1 handle 800::800 u32 match ip "
        f"protocol 17 0xff match ip dport {BFD_UDP_PORT} 0xffff flowid 5:2")]
    return run_batch(queue_lines(devices, packets) + bfd)
