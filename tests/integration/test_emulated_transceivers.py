"""Transceivers over gNMI on the real emulation: an independent client (pygnmicli) reads
and sets them, degradation drops real packets (nftables), a mode change darkens the
wavelength for its reconfiguration time and then reshapes it, and the controller (its own
process, `--gnmi`) exports what it receives."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from optical_helpers import zrplus_fabric

from dcilab.emulation.cleanup import NFT_TABLE
from dcilab.emulation.optical_state import OpticalState
from dcilab.gnmi.client import wait_until
from dcilab.lab import Lab

pytestmark = pytest.mark.integration

PYGNMICLI = str(Path(sys.executable).with_name("pygnmicli"))
RECONFIGURATION_S = 3.0


def pygnmicli(lab, cwd, *args) -> str:
    done = subprocess.run([PYGNMICLI, "-t", lab.gnmi, "-i", "-u", "x", "-p", "x", *args],
                          capture_output=True, text=True, timeout=30, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def metrics(lab) -> str:
    """One scrape; /metrics answers 503 with Retry-After to a client scraping too often
    (it is bounded per client), and a scraper honours it."""
    for _ in range(20):
        try:
            with urllib.request.urlopen(lab.controller.metrics_url, timeout=5) as reply:
                return reply.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
            time.sleep(float(exc.headers.get("Retry-After", "1")))
    raise AssertionError("/metrics kept answering 503")


def ping_loss(lab, count: int) -> float:
    out = lab.emulation.host("dc1-h1").cmd(
        # -w: every reply waited for up to a deadline (ping's own wait is two round trips,
        # which a busy machine exceeds)
        f"ping -n -q -c {count} -i 0.02 -w {int(count * 0.02) + 5} "
        f"{lab.fabric.hosts['dc2-h1'].ip}")
    return float(re.search(r"([\d.]+)% packet loss", out).group(1)) / 100


def extra_loss_for(fabric, per_mille: int) -> float:
    """The span-2 extra loss (dB) at which the model drops about `per_mille` (bisection on
    a copy of the optical model, so the test follows the model rather than a constant)."""
    lo, hi = 0.0, 15.0
    for _ in range(40):
        mid = (lo + hi) / 2
        state = OpticalState(fabric)
        state.degrade_span("dc1-dc2", 2, mid)
        effect = state.effects()["dc1-dc2.w1"]
        if effect.dark or effect.loss_per_mille > per_mille:
            hi = mid
        else:
            lo = mid
    return lo


def port_state(port: str) -> str:
    out = subprocess.run(["ip", "-o", "link", "show", port], capture_output=True, text=True)
    return "DOWN" if "state DOWN" in out.stdout or ",UP" not in out.stdout else "UP"


def test_transceivers_over_gnmi_on_the_emulation(tmp_path, no_leftovers):
    fabric, path = zrplus_fabric(tmp_path)
    ports = [fabric.switches[end.node].interface(end.port)
             for link in fabric.wavelengths() if link.wavelength == "dc1-dc2.w1"
             for end in (link.a, link.b)]
    with Lab(fabric, path, say=lambda _: None, gnmi=True,
             reconfiguration_s=RECONFIGURATION_S) as lab:
        # the controller subscribed and exports GSNR and BER for both wavelengths
        assert wait_until(lambda: metrics(lab).count("dcilab_wavelength_prefec_ber{") == 2, 20)
        assert metrics(lab).count("dcilab_wavelength_reported_gsnr_db{") == 2

        # an independent client reads a transceiver
        out = pygnmicli(lab, tmp_path, "-o", "get", "--gnmi-path-target", "dc1-gw1", "-x",
                        "/components/component[name=dc1-dc2.w1]/optical-channel/state/operational-mode")
        assert '"val": 2' in out                            # 400ZR+ 400G
        assert ping_loss(lab, 50) == 0.0

        # degrade span 2 to ~20 % loss per direction: real packets are dropped
        span = "/line-systems/line-system[name=dc1-dc2]/spans/span[index=2]/config/extra-loss"
        (tmp_path / "loss.json").write_text(json.dumps(extra_loss_for(fabric, 200)))
        pygnmicli(lab, tmp_path, "-o", "set-update", "-x", span, "-f", str(tmp_path / "loss.json"))
        assert wait_until(lambda: "< 20" in subprocess.run(
            ["nft", "list", "table", "netdev", NFT_TABLE], capture_output=True, text=True).stdout, 5)
        loss = ping_loss(lab, 200)
        print(f"ping loss at 20 % per direction: {loss:.1%}")
        assert 0.15 < loss < 0.60, loss         # 1 − 0.8² = 36 % expected for a round trip
        counters = subprocess.run(["nft", "list", "table", "netdev", NFT_TABLE],
                                  capture_output=True, text=True).stdout
        assert sum(map(int, re.findall(r"counter packets (\d+)", counters))) > 0

        # restore: the loss rule goes, pings come back
        pygnmicli(lab, tmp_path, "-o", "set-delete", "-x", "/line-systems/line-system[name=dc1-dc2]")
        assert wait_until(lambda: "numgen" not in subprocess.run(
            ["nft", "list", "table", "netdev", NFT_TABLE], capture_output=True, text=True).stdout, 5)
        assert ping_loss(lab, 50) <= 0.02

        # a mode set over gNMI: dark while reconfiguring, then shaped at the new rate
        (tmp_path / "mode.json").write_text("3")               # 300G DP-8QAM
        started = time.monotonic()
        pygnmicli(lab, tmp_path, "-o", "set-update", "-x",
                  "/components/component[name=dc1-dc2.w1]/optical-channel/config/operational-mode",
                  "-f", str(tmp_path / "mode.json"))
        assert wait_until(lambda: all(port_state(p) == "DOWN" for p in ports), 2)
        assert wait_until(lambda: all(port_state(p) == "UP" for p in ports), RECONFIGURATION_S + 5)
        assert time.monotonic() - started >= RECONFIGURATION_S - 0.5
        for port in ports:
            shown = subprocess.run(["tc", "class", "show", "dev", port], capture_output=True,
                                   text=True).stdout
            assert "rate 30Mbit" in shown, shown                # 300 Gb/s × 1e-4
        assert wait_until(lambda: 'dcilab_wavelength_mode_changes_total{link="dc1-dc2",'
                          'site_a="dc1",site_b="dc2",wavelength="dc1-dc2.w1"} 1.0' in metrics(lab), 10)
        # the controller (no --adapt) follows the mode set elsewhere: capacity and mode
        text = metrics(lab)
        [info] = re.findall(r'dcilab_wavelength_mode_info\{[^}]*wavelength="dc1-dc2\.w1"[^}]*\}',
                            text)
        assert 'mode="300G"' in info and 'rate_gbps="300"' in info, info
        capacities = {float(v) for v in re.findall(
            r'dcilab_link_capacity_bps\{[^}]*wavelength="dc1-dc2\.w1"[^}]*\} (\S+)', text)}
        assert capacities == {300e9}, capacities
        assert ping_loss(lab, 50) <= 0.02
    table = subprocess.run(["nft", "list", "table", "netdev", NFT_TABLE], capture_output=True)
    assert table.returncode != 0                               # removed with the emulation
