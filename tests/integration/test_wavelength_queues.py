"""The wavelengths' short queues on real interfaces and tc: a bfifo in htb's class, or
under the delay line Mininet puts at 10: where the kernel has netem (refused as a
replacement: "must match existing qdisc", and the rest of the batch, BFD's class among it,
never ran). This kernel has no netem: a tbf at 10: stands in for it."""

from __future__ import annotations

import json
import subprocess

import pytest

from dcilab.emulation.shaping import FRAME_BYTES, queue_lines, run_batch

A, B = "dlqtest0", "dlqtest1"


def tc(*args: str) -> None:
    subprocess.run(["tc", *args], check=True, timeout=10, capture_output=True)


def qdiscs(dev: str) -> dict[str, tuple[str, str]]:
    out = subprocess.run(["tc", "-j", "qdisc", "show", "dev", dev], capture_output=True,
                         text=True, timeout=10).stdout
    return {q["handle"]: (q["kind"], q.get("parent", "root")) for q in json.loads(out)}


@pytest.fixture
def shaped_pair():
    """A veth pair shaped as Mininet shapes a link: htb 5:, its class 5:1; A with a delay
    line at 10: (the stand-in), B with the kernel's default queue."""
    subprocess.run(["ip", "link", "add", A, "type", "veth", "peer", "name", B], check=True,
                   timeout=10)
    try:
        for dev in (A, B):
            tc("qdisc", "add", "dev", dev, "root", "handle", "5:", "htb", "default", "1")
            tc("class", "add", "dev", dev, "parent", "5:", "classid", "5:1", "htb", "rate",
               "10mbit")
        tc("qdisc", "add", "dev", A, "parent", "5:1", "handle", "10:", "tbf", "rate", "10mbit",
           "burst", "32kbit", "latency", "50ms")
        yield
    finally:
        subprocess.run(["ip", "link", "del", A], timeout=10)


def test_the_queue_goes_under_a_delay_line_and_in_htbs_class_otherwise(shaped_pair):
    lines = queue_lines([A, B], 20)
    assert lines == [f"qdisc replace dev {A} parent 10:1 handle 11: bfifo limit {20 * FRAME_BYTES}",
                     f"qdisc replace dev {B} parent 5:1 handle 10: bfifo limit {20 * FRAME_BYTES}"]
    assert run_batch(lines) == ""
    assert qdiscs(A)["10:"] == ("tbf", "5:1") and qdiscs(A)["11:"] == ("bfifo", "10:1")
    assert qdiscs(B)["10:"] == ("bfifo", "5:1")
    assert run_batch(queue_lines([A, B], 30)) == ""        # again: replaced, not added


def test_one_refused_line_does_not_stop_the_rest(shaped_pair):
    problem = run_batch([f"qdisc replace dev {A} parent 5:1 handle 10: bfifo limit 3000",
                         f"class replace dev {A} parent 5: classid 5:2 htb rate 100kbit"])
    assert "must match existing qdisc" in problem
    out = subprocess.run(["tc", "class", "show", "dev", A], capture_output=True, text=True,
                         timeout=10).stdout
    assert "class htb 5:2" in out
