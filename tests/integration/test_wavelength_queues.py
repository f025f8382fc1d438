"""The wavelengths' queues on real interfaces and tc: under htb's class 5:1 (Mininet's), a
reserved class served first and a best-effort one, each with a short FIFO; packets from
RESERVED_CLASS_MAC (tagged or not) go to the first. Frames are sent through a packet
socket, as OVS's userspace datapath sends them. Where the kernel has netem the delay line
Mininet put at 10: is put back under each class; this kernel has none, so only those
lines are checked."""

from __future__ import annotations

import errno
import json
import re
import socket
import struct
import subprocess
import time

import pytest

from dcilab.emulation.shaping import (BEST_EFFORT_CLASS, FRAME_BYTES, RESERVED_CLASS,
                                      class_filter_lines, one_queue_lines,
                                      put_class_filters, queue_lines, run_batch)
from dcilab.fabric.model import RESERVED_CLASS_MAC

A, B = "dlqtest0", "dlqtest1"
RATE_MBIT = 10


def end(packets: int) -> tuple[str, float, str]:
    """A as a wavelength end: 0.4 ms, FIFOs of `packets` full frames."""
    return (A, 0.4, f"bfifo limit {packets * FRAME_BYTES}")


def tc(*args: str) -> None:
    subprocess.run(["tc", *args], check=True, timeout=10, capture_output=True)


def qdiscs(dev: str) -> dict[str, tuple[str, str, int]]:
    """handle -> (kind, parent, limit)."""
    out = subprocess.run(["tc", "-j", "qdisc", "show", "dev", dev], capture_output=True,
                         text=True, timeout=10).stdout
    return {q["handle"]: (q["kind"], q.get("parent", "root"),
                          q.get("options", {}).get("limit", 0)) for q in json.loads(out)}


def classes(dev: str) -> dict[str, tuple[str, int, int, int]]:
    """classid -> (parent, prio, packets sent, packets dropped); this tc has no JSON for
    classes."""
    out = subprocess.run(["tc", "-s", "class", "show", "dev", dev], capture_output=True,
                         text=True, timeout=10).stdout
    found = {}
    for head, stats in re.findall(r"class htb (.*)\n Sent (.*)", out):
        classid, parent = head.split()[0], re.search(r"(?:parent (\S+)|root)", head).group(1)
        sent, dropped = re.search(r"(\d+) pkt \(dropped (\d+)", stats).groups()
        prio = re.search(r"prio (\d+)", head)          # an inner class shows none
        found[classid] = (parent, int(prio.group(1)) if prio else -1, int(sent), int(dropped))
    return found


@pytest.fixture
def shaped_pair():
    """A veth pair, A shaped as Mininet shapes a wavelength: htb 5:, its class 5:1."""
    subprocess.run(["ip", "link", "add", A, "type", "veth", "peer", "name", B], check=True,
                   timeout=10)
    try:
        for dev in (A, B):
            subprocess.run(["ip", "link", "set", dev, "up"], check=True, timeout=10)
        tc("qdisc", "add", "dev", A, "root", "handle", "5:", "htb", "default", "1")
        tc("class", "add", "dev", A, "parent", "5:", "classid", "5:1", "htb", "rate",
           f"{RATE_MBIT}mbit")
        yield
    finally:
        subprocess.run(["ip", "link", "del", A], timeout=10)


def frame(src_mac: str, vlan: int | None = None) -> bytes:
    """A full-size UDP frame from `src_mac`, VLAN-tagged if asked."""
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, FRAME_BYTES - 14 - len(tag), 0, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    head = (bytes.fromhex("020000000002") + bytes.fromhex(src_mac.replace(":", "")) + tag
            + b"\x08\x00" + ip + struct.pack("!HHHH", 1000, 2000, 8, 0))
    return head + b"\x00" * (FRAME_BYTES - len(head))


def sent_and_dropped(dev: str, classid: str) -> tuple[int, int]:
    return classes(dev)[classid][2:]


def test_two_queues_under_the_wavelengths_class_and_again_only_resized(shaped_pair):
    assert run_batch(class_filter_lines([A]) + queue_lines([end(20)], False)) == ""
    q = qdiscs(A)
    assert q["21:"] == ("bfifo", RESERVED_CLASS, 20 * FRAME_BYTES)
    assert q["31:"] == ("bfifo", BEST_EFFORT_CLASS, 20 * FRAME_BYTES)
    c = classes(A)
    assert c[RESERVED_CLASS][:2] == ("5:1", 0) and c[BEST_EFFORT_CLASS][:2] == ("5:1", 1)
    assert run_batch(queue_lines([end(30)], False)) == ""   # again: resized, not added
    q = qdiscs(A)
    assert q["21:"][2] == q["31:"][2] == 30 * FRAME_BYTES
    assert len([h for h, (kind, _, _) in q.items() if kind == "bfifo"]) == 2


def test_what_is_left_when_the_classes_cannot_all_be_made_is_one_shaped_fifo(shaped_pair):
    """Once 5:1 has children, htb sends what no filter classes unshaped (its default, 5:1,
    is no longer a leaf); where tc refuses part of the classes, they are removed and 5:1
    gets its one short FIFO back, as before the classes."""
    assert run_batch(class_filter_lines([A]) + queue_lines([end(20)], False)) == ""
    assert run_batch(one_queue_lines([end(20)])) == ""
    assert RESERVED_CLASS not in classes(A) and BEST_EFFORT_CLASS not in classes(A)
    assert "5:1" in classes(A) and qdiscs(A)["10:"] == ("bfifo", "5:1", 20 * FRAME_BYTES)


def test_class_filters_put_again_replace_the_first_ones(shaped_pair):
    """A second emulation start on the same links (or a second call) leaves one set of
    filters, not two: each classes a packet the same, but stacked they double the work."""
    def filters() -> list[str]:
        out = subprocess.run(["tc", "filter", "show", "dev", A, "parent", "5:"],
                             capture_output=True, text=True, timeout=10).stdout
        return [line for line in out.splitlines() if "flowid" in line]
    assert put_class_filters([A]) == ""
    once = filters()
    assert len(once) == 3
    assert put_class_filters([A]) == ""
    assert filters() == once


def test_where_the_kernel_has_netem_each_class_gets_the_delay_line_back():
    lines = queue_lines([end(20)], delayed=True)
    assert f"qdisc replace dev {A} parent {RESERVED_CLASS} handle 20: netem delay 400.000us" \
        in lines
    assert f"qdisc replace dev {A} parent 20:1 handle 21: bfifo limit {20 * FRAME_BYTES}" \
        in lines
    assert f"qdisc replace dev {A} parent 30:1 handle 31: bfifo limit {20 * FRAME_BYTES}" \
        in lines
    assert not any("bfifo" in line and "parent 5:1" in line for line in lines)


def test_reserved_frames_are_told_by_their_source_mac_tagged_or_not(shaped_pair):
    assert run_batch(class_filter_lines([A]) + queue_lines([end(20)], False)) == ""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((A, 0))
        for f in ([frame(RESERVED_CLASS_MAC)] * 3 + [frame(RESERVED_CLASS_MAC, 3001)] * 2
                  + [frame("02:00:0a:01:01:01")] * 4 + [frame("02:00:0a:01:01:01", 3001)]):
            s.send(f)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (sent_and_dropped(A, RESERVED_CLASS)[0] < 5
                                           or sent_and_dropped(A, BEST_EFFORT_CLASS)[0] < 5):
        time.sleep(0.05)
    assert sent_and_dropped(A, RESERVED_CLASS) == (5, 0)
    # best effort: the four and the tagged one (and whatever the kernel sent on its own)
    assert sent_and_dropped(A, BEST_EFFORT_CLASS)[0] >= 5


def test_best_effort_beyond_the_wavelength_never_drops_a_reserved_frame(shaped_pair):
    """Reserved frames at 70 % of the wavelength beside best effort at 250 %, for 1.5 s:
    every reserved frame goes out and best effort loses the excess. One FIFO shared (the
    queues before) or equal shares without priority would drop reserved frames."""
    assert run_batch(class_filter_lines([A]) + queue_lines([end(20)], False)) == ""
    per_s = RATE_MBIT * 1e6 / 8 / FRAME_BYTES               # full frames a second
    slice_s, reserved, best_effort = 0.01, frame(RESERVED_CLASS_MAC), frame("02:00:0a:01:01:01")
    sent, owed = {True: 0, False: 0}, {True: 0.0, False: 0.0}
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((A, 0))
        start = last = time.monotonic()
        while (now := time.monotonic()) - start < 1.5:
            # frames owed at each class's rate since the last slice; a stall of this
            # process is not made up beyond two slices (a burst of more reserved frames
            # than its 20-frame FIFO holds would be the test's doing, not the queues')
            for is_reserved, share, f in ((True, 0.7, reserved), (False, 2.5, best_effort)):
                owed[is_reserved] += min(now - last, 2 * slice_s) * per_s * share
                while owed[is_reserved] >= 1:
                    try:
                        s.send(f)
                    except OSError as exc:            # its queue was full: dropped
                        assert exc.errno == errno.ENOBUFS and not is_reserved, exc
                    sent[is_reserved] += 1
                    owed[is_reserved] -= 1
            last = now
            time.sleep(slice_s)
    time.sleep(0.5)                                            # the queues drain
    r_sent, r_dropped = sent_and_dropped(A, RESERVED_CLASS)
    b_sent, b_dropped = sent_and_dropped(A, BEST_EFFORT_CLASS)
    assert sent[True] > 0.3 * 1.5 * per_s                     # the test did load it
    assert r_dropped == 0 and r_sent == sent[True], (r_sent, r_dropped, sent)
    assert b_dropped > 0.3 * sent[False], (b_sent, b_dropped, sent)
