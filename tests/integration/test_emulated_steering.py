"""Elephant steering on the real emulation: what ECMP hashes together, loadaware separates."""

from __future__ import annotations

import threading
import time

from dcilab.api.client import Client
from dcilab.api.v1 import fabric_pb2
from dcilab.emulation.traffic import delivered_bytes, interface_rx_bytes, iperf_concurrent
from dcilab.fabric import load_fabric
from dcilab.fabric.model import scaled_mbps
from dcilab.lab import Lab, rescaled

from conftest import TOPOLOGIES

# 400 Gb/s -> 20 Mb/s: two flows stay well within what userspace OVS forwards on 2 cores.
SCALE = 5e-5
SRC, DST = "dc1-h1", "dc2-h1"


def quiet(_msg: str) -> None:
    pass


def bytes_per_wavelength(fabric, before, after):
    """Bytes each dc1 -> dc2 wavelength delivered (counted where they arrive)."""
    delivered = delivered_bytes(fabric, before, after)
    return {link.name: delivered[(link.a.node, link.a.port)] for link in fabric.wavelengths()}


def run_measuring(lab, fabric, ports, seconds: float, window: tuple[float, float],
                  at_end=None):
    """Run one flow per (client port, server port) for `seconds`; bytes per wavelength
    within `window` (s from when their bytes first cross: iperf3 starts late on a busy
    machine, and a window timed from the thread's start took that in). `at_end()` is
    called as the window ends, while the flows still run."""
    results, errors = [], []

    def flows():
        try:
            results.extend(iperf_concurrent(
                lab.emulation, [(SRC, DST)] * len(ports), duration_s=seconds,
                client_ports=[c for c, _ in ports], server_ports=[s for _, s in ports]))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
    thread = threading.Thread(target=flows)
    thread.start()
    base, deadline = interface_rx_bytes(fabric), time.monotonic() + 15.0
    while thread.is_alive() and time.monotonic() < deadline and sum(
            bytes_per_wavelength(fabric, base, interface_rx_bytes(fabric)).values()) < 100_000:
        time.sleep(0.1)
    started = time.monotonic()
    time.sleep(window[0])
    before = interface_rx_bytes(fabric)
    time.sleep(max(0.0, window[1] - (time.monotonic() - started)))
    after = interface_rx_bytes(fabric)
    if at_end is not None:
        at_end()
    thread.join()
    assert not errors and len(results) == len(ports), (errors, results)
    assert all(r.error is None for r in results), results
    return bytes_per_wavelength(fabric, before, after), window[1] - window[0], results


def test_two_elephants_ecmp_hashes_together_end_up_apart_under_loadaware(tmp_path, no_leftovers):
    topology = rescaled(TOPOLOGIES / "two-dc.yaml", SCALE, tmp_path)
    fabric = load_fabric(topology)
    wave_mbps = scaled_mbps(fabric, 400)
    # Under ecmp, find two source ports whose flows OVS hashes onto one wavelength: run
    # three flows at once (over four wavelengths two share with probability 5/8) until
    # one wavelength carries about two flows' worth; the pair is its two slowest flows.
    with Lab(fabric, topology, say=quiet, controller_args=["--policy", "ecmp"]) as lab:
        pair = None
        for attempt in range(12):
            ports = [(42000 + 3 * attempt + k, 5301 + 3 * attempt + k) for k in range(3)]
            moved, seconds, results = run_measuring(lab, fabric, ports, 4, (1.0, 2.5))
            rates = {w: b * 8 / 1e6 / seconds for w, b in moved.items()}
            # (relative to the total, so a busy machine slowing every flow alike is fine)
            if sum(r > 0.2 * sum(rates.values()) for r in rates.values()) == 2:
                slowest = sorted(results, key=lambda r: r.bits_per_second)[:2]
                pair = [(r.src_port, r.dst_port) for r in slowest]
                break
        assert pair, "no two of 36 flows shared a wavelength under ecmp"
        moved, seconds, _ = run_measuring(lab, fabric, pair, 6, (1.5, 4.5))
        rates = {w: b * 8 / 1e6 / seconds for w, b in moved.items()}
        busy = [w for w, r in rates.items() if r > 0.3 * sum(rates.values())]
        assert len(busy) == 1, rates            # the two alone: still on one wavelength
        assert rates[busy[0]] < 1.05 * wave_mbps
        shared_mbps = sum(rates.values())       # what the pair gets sharing, in this run

    with Lab(fabric, topology, say=quiet, controller_args=["--policy", "loadaware"]) as lab:
        # The controller sees elephants after two 1 s polls; measure once they are pinned.
        answers = []
        with Client(lab.controller.grpc_address) as client:
            moved, seconds, _ = run_measuring(lab, fabric, pair, 10, (4.5, 8.5),
                                              at_end=lambda: answers.append(client.elephants()))
            # Reserved, the pair's flow is carried by the reservation's rules: still
            # counted at the leaf, found, and listed as the reservation's, where its bytes
            # go (a re-tester's vanished from the list once reserved).
            res = client.reserve(SRC, DST, 200)          # 10 Mb/s here: an elephant
            reserved = [h.wavelength for h in res.hops if h.wavelength]
            listed = []
            on_res, res_seconds, _ = run_measuring(
                lab, fabric, [(43001, 5401)], 8, (3.5, 6.0),
                at_end=lambda: listed.append(client.elephants()))
        res_rates = {w: b * 8 / 1e6 / res_seconds for w, b in on_res.items()}
        assert [w for w, r in res_rates.items() if r > 0.5 * sum(res_rates.values())] == \
            reserved, res_rates
        [carried] = [e for e in listed[0].elephants if e.src_port == 43001]
        assert (carried.carrier, carried.reservation_id) == (
            fabric_pb2.CARRIER_RESERVATION, res.reservation_id), listed
        assert [h.wavelength for h in carried.hops] == reserved
        rates = {w: b * 8 / 1e6 / seconds for w, b in moved.items()}
        busy = {w for w, mbps in rates.items() if mbps > 0.3 * sum(rates.values())}
        assert len(busy) == 2, rates            # one wavelength each ...
        # ... where the controller says it pinned them (ListElephants, over gRPC).
        pinned = {(e.src_port, e.dst_port): [h.wavelength for h in e.hops]
                  for e in answers[0].elephants if (e.src_host, e.dst_host) == (SRC, DST)}
        assert set(pinned) == set(pair), answers
        assert {w for hops in pinned.values() for w in hops} == busy, (answers, rates)
        # ... so together they get clearly more than sharing one gave them in this run.
        assert sum(rates.values()) > 1.3 * shared_mbps, (rates, shared_mbps)
