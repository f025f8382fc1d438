"""Rate adaptation's decisions (core/adaptation.py), without gNMI; and the core draining a
wavelength make before break (FabricController.wavelength_service)."""

import math
import random
import subprocess
import sys

import pytest

from dcilab.core.adaptation import (Adapter, Drain, LineLimits, Observation, Phase, Policy,
                                    Resume, SetMode)
from dcilab.optics import DEFAULT_CATALOG
from dcilab.core.controller import RESUMED

# 400ZR+ needs 24 (400G), 21 (300G), 16 (200G), 12.5 dB (100G) OSNR per 0.1 nm.
W = "w1"


def obs(osnr, mode="400G", up=True):
    return Observation(W, "400ZR+", mode, osnr, up)


def adapter(**policy):
    return Adapter(DEFAULT_CATALOG, Policy(**{"hold_s": 30.0, "drain_s": 1.0, **policy}))


def run_change(a, now, target, osnr):
    """Drive a change already drained through SetMode and Resume; returns the decisions."""
    out = a.observe(now + 1.0, [obs(osnr, mode=None, up=True)])
    assert out == [SetMode(W, target)]
    assert a.observe(now + 2.0, [obs(osnr, mode=target, up=False)]) == []   # dark, reconfiguring
    return a.observe(now + 3.0, [obs(osnr, mode=target)])


def test_margin_is_osnr_above_the_modes_requirement():
    a = adapter()
    assert a.margin_db(obs(25.5)) == 1.5
    assert a.margin_db(obs(25.5), "200G") == 9.5


def test_no_change_while_margin_holds():
    a = adapter()
    assert all(a.observe(t, [obs(25.2)]) == [] for t in range(100))


def test_down_on_low_margin_to_the_highest_mode_that_keeps_it():
    a = adapter()
    assert a.observe(0.0, [obs(25.5)]) == []
    [drain] = a.observe(1.0, [obs(24.8)])        # 0.8 dB < 1 dB in 400G
    assert isinstance(drain, Drain) and (drain.from_mode, drain.to_mode) == ("400G", "300G")
    assert a.phase(W) == Phase.DRAINING
    # 20.5 dB: 300G would keep -0.5 dB only; 200G is the highest that keeps 1 dB
    b = adapter()
    [drain] = b.observe(0.0, [obs(20.5)])
    assert drain.to_mode == "200G"


def test_drain_comes_before_the_mode_change_and_resume_after_it():
    a = adapter(drain_s=2.0)
    [drain] = a.observe(0.0, [obs(24.5)])
    assert isinstance(drain, Drain)
    assert a.observe(1.0, [obs(24.5)]) == []               # still draining: no Set yet
    assert a.observe(2.0, [obs(24.5)]) == [SetMode(W, "300G")]
    assert a.phase(W) == Phase.CHANGING
    assert a.observe(3.0, [obs(24.5, mode="400G", up=False)]) == []   # one end not changed yet
    assert a.observe(4.0, [obs(24.5, mode="300G", up=False)]) == []   # dark
    assert a.observe(5.0, [obs(24.5, mode="300G")]) == [Resume(W, "300G", 300)]
    assert a.phase(W) == Phase.IN_SERVICE


def test_up_only_after_margin_has_held_with_hysteresis():
    a = adapter(hold_s=30.0)
    a.observe(0.0, [obs(24.5)])
    assert run_change(a, 0.0, "300G", 24.5) == [Resume(W, "300G", 300)]
    # repaired: 400G margin 1.5 dB is above the threshold but inside the hysteresis band
    assert all(a.observe(t, [obs(25.5, mode="300G")]) == [] for t in range(10, 100))
    # 2.5 dB in 400G: up only once held for 30 s
    assert all(a.observe(t, [obs(26.5, mode="300G")]) == [] for t in range(100, 130))
    [drain] = a.observe(130.0, [obs(26.5, mode="300G")])
    assert (drain.from_mode, drain.to_mode) == ("300G", "400G")


def test_a_single_dip_restarts_the_hold():
    a = adapter(hold_s=30.0)
    a.observe(0.0, [obs(24.5)])
    run_change(a, 0.0, "300G", 24.5)
    for t in range(10, 35):
        assert a.observe(t, [obs(26.5, mode="300G")]) == []
    assert a.observe(35, [obs(25.9, mode="300G")]) == []       # 1.9 dB: below the band
    assert all(a.observe(t, [obs(26.5, mode="300G")]) == [] for t in range(36, 66))
    assert isinstance(a.observe(66, [obs(26.5, mode="300G")])[0], Drain)


def test_no_flapping_on_a_noisy_margin():
    """A margin wandering ±0.6 dB around the threshold moves the wavelength down once and
    never back up: the hysteresis band is wider than the noise."""
    rng = random.Random(7)
    a = adapter(hold_s=30.0)
    mode, changes = "400G", []
    t = 0.0
    while t < 2000:
        osnr = 25.0 + rng.uniform(-0.6, 0.6)
        for d in a.observe(t, [obs(osnr, mode=mode if a.phase(W) != Phase.CHANGING
                                   else changes[-1])]):
            if isinstance(d, Drain):
                changes.append(d.to_mode)
            if isinstance(d, SetMode):
                mode = d.mode
        t += 1.0
    assert changes == ["300G"]
    assert [c.to_mode for c in a.changes] == ["300G"]


def test_nothing_below_the_most_robust_mode():
    a = adapter()
    assert a.observe(0.0, [obs(12.0, mode="100G")]) == []


def test_a_refused_change_puts_the_wavelength_back():
    a = adapter()
    a.observe(0.0, [obs(24.5)])
    a.observe(1.0, [obs(24.5)])
    assert a.set_mode_failed(1.5, W, "400G") == Resume(W, "400G", None)
    assert a.phase(W) == Phase.IN_SERVICE


def test_policy_problems():
    assert Policy(threshold_db=-1).problems()
    assert not Policy().problems()
    assert Policy(hold_s=-1).problems() == ["--hold-s must be a number >= 0, got -1"]
    # written as what must hold: NaN and infinities are refused too
    for bad in (math.nan, math.inf):
        assert Policy(threshold_db=bad).problems() and Policy(hold_s=bad).problems()
        assert Policy(hysteresis_db=bad).problems() and Policy(drain_s=bad).problems()


@pytest.mark.parametrize("flag, value", [
    ("--max-stretch", "nan"), ("--poll-interval", "inf"), ("--pin-hold", "nan"),
    ("--grpc-workers", "99999999"), ("--margin-threshold-db", "nan"), ("--hold-s", "inf"),
    ("--reads-per-second", "1e-300"), ("--reads-per-second-per-client", "1e-300")])
def test_the_controller_refuses_a_setting_out_of_range_before_it_starts(flag, value):
    done = subprocess.run([sys.executable, "-m", "dcilab", "controller", "--topology", "two-dc",
                           flag, value], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert flag.lstrip("-").split("-")[0] in done.stderr and "Traceback" not in done.stderr


# -- the core: drain, then back in use at the new rate -------------------------------------

import pytest  # noqa: E402
from controller_lab import ControllerLab  # noqa: E402
from fabric_helpers import dci_links_of_path, tcp_packet  # noqa: E402

from dcilab.fabric import parse_fabric  # noqa: E402
from dcilab.te.reservations import AdmissionError, Protection, ReservationRequest, State  # noqa: E402

THREE_WAYS = """
name: ways
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 3, fabric_gbps: 1600}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 3, fabric_gbps: 1600}
dci_links:
  - {name: x, a: a, b: b, fiber_km: 40, module: 400ZR+, wavelengths: 1}
  - {name: y, a: a, b: b, fiber_km: 50, module: 400ZR+, wavelengths: 1}
  - {name: z, a: a, b: b, fiber_km: 60, module: 400ZR+, wavelengths: 1}
"""


def on(lab, rid):
    (w,) = [h.wavelength for h in lab.ctl.book.get(rid).hops if h.wavelength]
    return w


def traced(lab, src, dst):
    s, d = lab.fabric.hosts[src], lab.fabric.hosts[dst]
    (path,) = lab.net.trace(lab.dpid(s.leaf), s.port, tcp_packet(s, d))
    return [l.line_system for l in dci_links_of_path(lab.fabric, path.hops)]


@pytest.fixture
def lab():
    return ControllerLab(parse_fabric(THREE_WAYS)).bring_up_all()


def test_drain_moves_reservations_off_before_the_mode_change_and_admission_follows_the_rate(lab):
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 300.0), "low", 0.0))
    lab.send(lab.ctl.reserve(ReservationRequest("a-h2", "b-h2", 300.0, priority=5), "high", 1.0))
    assert (on(lab, "low"), on(lab, "high")) == ("x.w1", "y.w1")
    x = lab.fabric.link(next(l.name for l in lab.fabric.wavelengths() if l.wavelength == "x.w1"))
    out = lab.send(lab.ctl.wavelength_service("x.w1", "margin 0.8 dB < 1.0 dB"))
    # drained but still up: everything moved off while it still carries traffic
    assert lab.ctl.engine.link_up(x.name) and not lab.ctl.engine.usable(x)
    assert on(lab, "low") == "z.w1" and any(r.reservation_id == "low" for r in out.changed)
    assert lab.ctl.book.get("low").state is not State.DEGRADED
    assert traced(lab, "a-h1", "b-h1") == ["z"]
    # back at 200G: 180 G reservable; the 300 G reservation does not fit and stays on z,
    # and admission counts x at its new rate
    lab.send(lab.ctl.wavelength_service("x.w1", None, 200.0))
    assert lab.ctl.engine.usable(x) and lab.ctl.engine.rate_gbps(x) == 200.0
    assert on(lab, "low") == "z.w1"
    with pytest.raises(AdmissionError):
        lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h2", 200.0), "r3", 2.0))
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h2", 150.0), "r4", 3.0))
    assert on(lab, "r4") == "x.w1"
    lab.send(lab.ctl.end("r4"))
    # back up at 400G: shorter paths are taken again, highest priority first
    lab.send(lab.ctl.wavelength_service("x.w1", "margin in 400G held"))
    lab.send(lab.ctl.wavelength_service("x.w1", None, 400.0))
    assert (on(lab, "high"), on(lab, "low")) == ("x.w1", "y.w1")
    assert traced(lab, "a-h2", "b-h2") == ["x"]


def test_a_port_coming_back_does_not_end_a_drain(lab):
    x = next(l for l in lab.fabric.wavelengths() if l.wavelength == "x.w1")
    lab.send(lab.ctl.wavelength_service("x.w1", "mode change"))
    end = x.a
    lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False, 1.0))   # dark
    lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, True, 2.0))
    lab.send(lab.ctl.tick(60.0))                                  # hold-down over
    assert lab.ctl.engine.link_up(x.name) and not lab.ctl.engine.usable(x)
    lab.send(lab.ctl.wavelength_service("x.w1", None, 300.0))
    assert lab.ctl.engine.usable(x)


def test_one_change_at_a_time_per_line_system():
    a = adapter()
    both = [Observation("ls.w1", "400ZR+", "400G", 24.5, True, "ls"),
            Observation("ls.w2", "400ZR+", "400G", 24.5, True, "ls"),
            Observation("other.w1", "400ZR+", "400G", 24.5, True, "other")]
    first = a.observe(0.0, both)
    assert [d.wavelength for d in first] == ["ls.w1", "other.w1"]
    assert a.phase("ls.w2") == Phase.IN_SERVICE


def test_an_urgent_change_does_not_wait_for_its_line_system():
    a = adapter()
    first = [Observation("ls.w1", "400ZR+", "400G", 24.5, True, "ls"),
             Observation("ls.w2", "400ZR+", "400G", 24.7, True, "ls")]
    assert [d.wavelength for d in a.observe(0.0, first)] == ["ls.w1"]
    later = [first[0], Observation("ls.w2", "400ZR+", "400G", 24.3, True, "ls")]   # 0.3 dB
    assert [d for d in a.observe(0.2, later) if isinstance(d, Drain)] == []      # waits
    later = [first[0], Observation("ls.w2", "400ZR+", "400G", 23.9, True, "ls")]  # -0.1 dB
    assert [d.wavelength for d in a.observe(0.5, later) if isinstance(d, Drain)] == ["ls.w2"]


def test_the_planned_dark_spell_of_a_mode_change_is_not_held_down(lab):
    x = next(l for l in lab.fabric.wavelengths() if l.wavelength == "x.w1")
    lab.send(lab.ctl.wavelength_service("x.w1", "mode change"))
    for up, now in ((False, 100.0), (True, 103.0)):              # dark while it changes
        for end in (x.a, x.b):
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, up, now))
    assert x.name not in lab.ctl.held_down() and lab.ctl.engine.link_up(x.name)
    lab.send(lab.ctl.wavelength_service("x.w1", None, 300.0))
    assert lab.ctl.engine.in_service(x)


def test_the_dark_spell_of_a_mode_change_is_no_failure_and_no_flap(lab, caplog):
    """`train` listed a wavelength dark for its mode change as "is down" among a run's
    faults, and it counted as a failure (link_down, then link_up twice) and a flap."""
    caplog.set_level("INFO", logger="dcilab")
    x = next(l for l in lab.fabric.wavelengths() if l.wavelength == "x.w1")
    faults = lab.send(lab.ctl.wavelength_service("x.w1", "mode change")).faults
    for up, now in ((False, 100.0), (True, 103.0)):
        for end in (x.a, x.b):
            faults += lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, up,
                                                    now)).faults
    assert faults == []
    assert "x.w1 is dark while it changes mode" in caplog.text
    assert "link x.w1 is down" not in caplog.text
    # Drained, dcilab_link_drained says so (its dark spell pages nothing: an SRE's)
    assert {l.drained for l in lab.ctl.link_loads() if l.link == x.name} == {True}
    faults = lab.send(lab.ctl.wavelength_service("x.w1", None, 300.0)).faults
    # back in use once: a return, not a recovery (no failure ended: it counted link_up)
    assert faults == [(RESUMED, "x.w1")]
    assert {l.drained for l in lab.ctl.link_loads() if l.link == x.name} == {False}
    # A real cut within the flap window is the first failure: the first hold-down (1 s),
    # not doubled as for a second flap.
    for up, now in ((False, 130.0), (True, 131.0)):
        for end in (x.a, x.b):
            lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, up, now))
    assert "x.w1 is back; held down for 1 s" in caplog.text


def test_a_mode_set_outside_dcilab_sets_capacity_and_moves_what_no_longer_fits(lab):
    # An operator's gNMI Set (or a mode found at start): no drain came first, so what the
    # slower mode cannot carry moves off after the fact, else is DEGRADED; the rest stays.
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 300.0), "big", 0.0))
    lab.send(lab.ctl.reserve(ReservationRequest("a-h2", "b-h2", 50.0), "small", 1.0))
    assert on(lab, "big") == "x.w1"
    x = next(l for l in lab.fabric.wavelengths() if l.wavelength == "x.w1")
    out = lab.send(lab.ctl.wavelength_mode("x.w1", "200G", 200.0))     # 180 reservable
    assert lab.ctl.engine.rate_gbps(x) == 200.0 and lab.ctl.engine.mode(x) == "200G"
    assert on(lab, "big") != "x.w1" and lab.ctl.book.get("big").state is not State.DEGRADED
    assert any(r.reservation_id == "big" for r in out.changed)
    assert traced(lab, "a-h1", "b-h1") != ["x"]
    assert lab.ctl.book.crosses_full(lab.ctl.book.get("small")) is None
    loads = {(l.link, l.src) for l in lab.ctl.link_loads() if l.capacity_bps == 200e9}
    assert (x.name, x.a.node) in loads                          # what `links` shows
    # The same mode again is nothing to do.
    assert not lab.send(lab.ctl.wavelength_mode("x.w1", "200G", 200.0)).changed
    # Every wavelength down to 100G (90 reservable): 300 G fits nowhere, DEGRADED, and says
    # why; the 50 G one stays where it is.
    for w in ("y.w1", "z.w1", "x.w1"):
        lab.send(lab.ctl.wavelength_mode(w, "100G", 100.0))
    big = lab.ctl.book.get("big")
    assert big.state is State.DEGRADED
    assert "runs a slower mode and cannot carry what is reserved on it" in big.reason
    assert lab.ctl.book.get("small").state is not State.DEGRADED
    for d, bps in lab.ctl.book.reserved.items():
        assert bps <= lab.ctl.book.capacity_bps(d) + 1, d               # never overbooked


def test_a_degraded_reason_stops_saying_down_once_the_link_is_back(lab):
    # Every wavelength full; x is cut and its reservation finds no room (DEGRADED, "is
    # down"); x comes back at 200G, too slow for it: still DEGRADED, and now it says so.
    pairs = [("a-h1", "b-h1"), ("a-h2", "b-h2"), ("a-h1", "b-h2")]
    for i, (src, dst) in enumerate(pairs):
        lab.send(lab.ctl.reserve(ReservationRequest(src, dst, 300.0), f"r{i}", float(i)))
    on_x = next(r for r in ("r0", "r1", "r2") if on(lab, r) == "x.w1")
    x = next(l for l in lab.fabric.wavelengths() if l.wavelength == "x.w1")
    end = x.a
    lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, False, 10.0))
    lab.send(lab.ctl.tick(10.1))
    res = lab.ctl.book.get(on_x)
    assert res.state is State.DEGRADED and res.reason.startswith("x.w1 is down")
    lab.send(lab.ctl.wavelength_mode("x.w1", "200G", 200.0))      # reconfigured while dark
    lab.send(lab.ctl.port_changed(lab.dpid(end.node), end.port, True, 11.0))
    lab.send(lab.ctl.tick(100.0))                                  # hold-down over
    res = lab.ctl.book.get(on_x)
    assert res.state is State.DEGRADED
    assert res.reason.startswith(
        "no path has room since it was displaced (then: x.w1 is down; over now)")
    assert res.reason.endswith("x.w1 (a-gw1 -> b-gw1) has 180.000 Gb/s free of 180.000 Gb/s "
                               "reservable; 300.000 Gb/s asked")


def test_a_drained_wavelength_is_named_out_of_use_not_down(lab):
    """An outside tester: a reservation displaced while its wavelength changed mode said
    'x.w1 is down', though it was lit and only drained."""
    for i, (src, dst) in enumerate([("a-h1", "b-h1"), ("a-h2", "b-h2"), ("a-h1", "b-h2")]):
        lab.send(lab.ctl.reserve(ReservationRequest(src, dst, 300.0), f"r{i}", float(i)))
    on_x = next(r for r in ("r0", "r1", "r2") if on(lab, r) == "x.w1")
    lab.send(lab.ctl.wavelength_service("x.w1", "changing mode 400G -> 300G: margin 0.8 dB"))
    res = lab.ctl.book.get(on_x)
    assert res.state is State.DEGRADED
    assert res.reason.startswith("x.w1 is out of use (changing mode 400G -> 300G: margin "
                                 "0.8 dB) and no other path has room: ")


def test_a_step_up_waits_while_what_the_wavelength_carries_has_no_room_elsewhere(lab):
    """An outside tester: moving back up to a faster mode drained the wavelength and left
    its ACTIVE reservations DEGRADED (nothing else had room), for the whole change."""
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 300.0), "r0", 0.0))
    assert lab.ctl.drain_room(on(lab, "r0")) is None          # y and z have room
    lab.send(lab.ctl.reserve(ReservationRequest("a-h2", "b-h2", 300.0), "r1", 1.0))
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h2", 300.0), "r2", 2.0))
    on_x = next(r for r in ("r0", "r1", "r2") if on(lab, r) == "x.w1")
    layout = {r: lab.ctl.book.get(r) for r in ("r0", "r1", "r2")}
    why = lab.ctl.drain_room("x.w1")
    # tried and taken back: every reservation where it was, nothing out of use
    assert {r: lab.ctl.book.get(r) for r in layout} == layout
    assert not lab.ctl.engine.drained
    assert why.startswith(f"reservation(s) {on_x} (300.000 Gb/s ") and (
        " would have no room without x.w1: wavelength " in why)
    lab.send(lab.ctl.end("r2"))
    assert lab.ctl.drain_room("x.w1") is None


def test_a_postponed_step_up_is_decided_again_and_not_counted():
    a = adapter(hold_s=0.0)
    assert a.observe(0.0, [obs(23.0, mode="300G")]) == []          # 2 dB: stays
    [drain] = a.observe(1.0, [obs(26.0, mode="300G")])
    assert (drain.from_mode, drain.to_mode) == ("300G", "400G") and len(a.changes) == 1
    a.postpone(W)
    assert a.phase(W) == Phase.IN_SERVICE and a.changes == []
    [again] = a.observe(2.0, [obs(26.0, mode="300G")])
    assert again.to_mode == "400G"


def test_room_for_a_step_up_counts_only_paths_within_a_reservations_latency_bound(lab):
    """An outside tester: a step up drained a wavelength whose reservation's latency bound
    ruled out the only wavelength with room; it went DEGRADED."""
    probe = lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0), "p", 0.0))
    latency = probe.changed[0].latency_ms
    lab.send(lab.ctl.end("p"))
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0,
                                                max_latency_ms=latency + 0.01), "r", 1.0))
    assert on(lab, "r") == "x.w1"                       # y and z are 10 and 20 km longer
    why = lab.ctl.drain_room("x.w1")
    assert why is not None and " within max_latency_ms " in why and why.endswith(" ms has room")
    lab.send(lab.ctl.end("r"))                          # without a bound, y has room
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0), "s", 2.0))
    assert on(lab, "s") == "x.w1" and lab.ctl.drain_room("x.w1") is None


def test_a_change_that_lands_dark_steps_down_at_once_not_at_the_timeout():
    """An outside tester: a sudden loss during a step up left the wavelength dark in its
    new mode, out of use, until the 600 s change timeout."""
    a = adapter(hold_s=0.0)
    assert a.observe(0.0, [obs(23.0, mode="300G")]) == []
    [up] = a.observe(1.0, [obs(26.5, mode="300G")])
    assert up.to_mode == "400G"
    assert a.observe(2.5, [obs(26.5, mode=None)]) == [SetMode(W, "400G")]
    assert a.observe(3.0, [obs(None, mode="400G", up=False)]) == []       # reconfiguring
    [down] = a.observe(4.0, [obs(20.0, mode="400G", up=False)])          # landed dark
    assert isinstance(down, Drain) and (down.from_mode, down.to_mode) == ("400G", "200G")


def test_a_change_that_lands_dark_in_the_most_robust_mode_is_put_back_in_use():
    """An optical re-tester's: stepped down to 100G and dark there, with nothing more
    robust to go to, the wavelength stayed drained for good, though up and lit later."""
    a = adapter()
    [down] = a.observe(0.0, [obs(13.0, mode="200G")])
    assert down.to_mode == "100G"
    assert a.observe(1.5, [obs(13.0, mode=None)]) == [SetMode(W, "100G")]
    [back] = a.observe(2.0, [obs(11.0, mode="100G", up=False)])          # landed dark
    assert back == Resume(W, "100G", 100)
    assert a.phase(W) is Phase.IN_SERVICE


def test_a_postponed_step_up_goes_once_there_is_room_without_a_new_hold():
    a = adapter(hold_s=30.0)
    assert a.observe(0.0, [obs(23.0, mode="300G")]) == []
    assert a.observe(1.0, [obs(26.5, mode="300G")]) == []                # hold starts
    [up] = a.observe(31.0, [obs(26.5, mode="300G")])
    a.postpone(W)
    [again] = a.observe(32.0, [obs(26.5, mode="300G")])                  # not at 61 s
    assert again.to_mode == "400G"


def test_adaptation_options_without_adapt_are_refused_not_ignored(capsys):
    """An outside tester's `demo --gnmi --margin-threshold-db 3` ran without adaptation."""
    from dcilab.cli import main
    assert main(["controller", "--topology", "two-dc", "--hold-s", "5"]) == 2
    assert ("dcilab controller: --hold-s sets rate adaptation, which only --adapt turns on"
            in capsys.readouterr().err)
    assert main(["demo", "--gnmi", "--margin-threshold-db", "3", "--drain-s", "2"]) == 2
    assert ("dcilab demo: --margin-threshold-db, --drain-s set rate adaptation, which only "
            "--adapt turns on") in capsys.readouterr().err


def test_the_wait_for_disagreeing_ends_is_an_option_with_or_without_adapt(capsys):
    from dcilab.cli import build_parser, main
    from dcilab.cli.controller import adaptation_options
    assert main(["controller", "--topology", "two-dc", "--mismatch-s", "-1"]) == 2
    assert "rate adaptation: --mismatch-s must be a number >= 0, got -1.0" in \
        capsys.readouterr().err
    # a lab or demo hands it to its controller, for the warning without --adapt too
    args = build_parser(only="demo").parse_args(["demo", "--gnmi", "--mismatch-s", "5"])
    assert adaptation_options(args) == ["--mismatch-s", "5.0"]
    args = build_parser(only="lab").parse_args(["lab", "--gnmi", "--adapt"])
    assert adaptation_options(args)[-2:] == ["--mismatch-s", "30.0"]


def test_a_reservation_displaced_past_its_latency_bound_says_the_bound(lab):
    """An outside tester: a latency-bound reservation displaced from its line system was
    DEGRADED 'and no other path has room: wavelength b.w1 has 360 Gb/s free'."""
    probe = lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0), "p", 0.0))
    latency = probe.changed[0].latency_ms
    lab.send(lab.ctl.end("p"))
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0,
                                                max_latency_ms=latency + 0.01), "r", 1.0))
    lab.send(lab.ctl.wavelength_service("x.w1", "changing mode 400G -> 300G"))
    res = lab.ctl.book.get("r")
    assert res.state is State.DEGRADED
    assert f"within max_latency_ms {latency + 0.01:g} has 100.000 Gb/s free; a path of " \
        in res.reason, res.reason


def disagreeing(osnr, ends=("300G", "400G")):
    return Observation(W, "400ZR+", None, osnr, False, "", ends)


def test_ends_left_disagreeing_are_set_alike_once_they_have_for_the_mismatch_time():
    """An optical tester: one end Set to 300G over gNMI left the wavelength dark for good
    (nothing acts on a wavelength whose ends disagree). Past `mismatch_s` both ends get the
    mode a step down would choose: here 400G, which keeps 1.5 dB."""
    a = adapter(mismatch_s=10.0)
    assert a.observe(0.0, [disagreeing(25.5)]) == []
    assert a.observe(9.0, [disagreeing(25.5)]) == []           # time for the other end
    [drain] = a.observe(10.0, [disagreeing(25.5)])
    assert (drain.from_mode, drain.to_mode) == ("300G/400G", "400G")
    assert "its ends run 300G and 400G" in drain.reason
    assert a.observe(11.0, [disagreeing(25.5)]) == [SetMode(W, "400G")]
    assert a.observe(12.0, [obs(25.5, mode="400G")]) == [Resume(W, "400G", 400.0)]
    assert a.phase(W) == Phase.IN_SERVICE


def test_ends_that_agree_again_in_time_are_left_alone_and_the_wait_starts_over():
    a = adapter(mismatch_s=10.0)
    assert a.observe(0.0, [disagreeing(25.5)]) == []
    assert a.observe(5.0, [obs(25.5, mode="300G")]) == []       # the other end was set too
    assert a.observe(8.0, [disagreeing(25.5)]) == []
    assert a.observe(17.0, [disagreeing(25.5)]) == []           # 9 s of this spell only
    assert len(a.observe(18.0, [disagreeing(25.5)])) == 1


def test_disagreeing_ends_with_no_osnr_read_take_the_more_robust_of_their_modes():
    a = adapter(mismatch_s=0.0)
    [drain] = a.observe(0.0, [disagreeing(None, ("200G", "400G"))])
    assert drain.to_mode == "200G"
    # a line too weak for any mode to keep the threshold: the most robust of all
    [drain] = adapter(mismatch_s=0.0).observe(0.0, [disagreeing(12.0)])
    assert drain.to_mode == "100G"


def test_a_fix_that_does_not_take_waits_twice_as_long_each_time():
    """A reviewer: an end that refuses the Set had the controller drain and Set it again
    every mismatch_s for good. Each fix after which the ends still disagree waits twice
    as long; once they agree the wait is back to mismatch_s."""
    a = adapter(mismatch_s=10.0, drain_s=0.0)
    tried_at = []
    t = 0.0
    while t < 400.0:
        for d in a.observe(t, [disagreeing(25.5)]):
            if isinstance(d, Drain):
                tried_at.append(t)
            elif isinstance(d, SetMode):                  # refused at one end
                a.set_mode_failed(t, W, None)
        t += 1.0
    gaps = [b - a_ for a_, b in zip(tried_at, tried_at[1:])]
    assert tried_at[0] == 10.0 and gaps == sorted(gaps) and gaps[-1] >= 4 * gaps[0]
    assert len(tried_at) <= 6                     # not one every 10 s (40 in 400 s)
    # the ends agree again (someone set them): the next spell waits mismatch_s once more
    a.observe(t, [obs(25.5, mode="400G")])
    assert a.observe(t + 1, [disagreeing(25.5)]) == []
    assert len(a.observe(t + 11, [disagreeing(25.5)])) == 1


def test_the_wait_starts_again_when_the_pair_of_modes_changes():
    """An operator setting the ends one at a time, to different modes in turn: each new
    pair of modes gets its full mismatch_s."""
    a = adapter(mismatch_s=10.0)
    assert a.observe(0.0, [disagreeing(25.5, ("300G", "400G"))]) == []
    assert a.observe(8.0, [disagreeing(25.5, ("200G", "300G"))]) == []
    assert a.observe(17.0, [disagreeing(25.5, ("200G", "300G"))]) == []
    assert len(a.observe(18.0, [disagreeing(25.5, ("200G", "300G"))])) == 1


def test_a_mismatch_fix_does_not_hold_back_its_line_systems_other_wavelengths():
    """A reviewer: the fix of a wavelength whose ends disagreed (dark, carrying nothing)
    kept its line system's other wavelength from stepping down until the fix timed out."""
    a = adapter(mismatch_s=0.0)
    w2 = Observation("ls.w2", "400ZR+", None, 25.5, False, "ls", ("300G", "400G"))
    w1 = Observation("ls.w1", "400ZR+", "400G", 25.5, True, "ls")
    [fix] = a.observe(0.0, [w1, w2])
    assert fix.wavelength == "ls.w2" and a.phase("ls.w2") == Phase.DRAINING
    low = Observation("ls.w1", "400ZR+", "400G", 24.8, True, "ls")      # 0.8 dB: not urgent
    decisions = a.observe(2.0, [low, w2])
    assert any(isinstance(d, Drain) and d.wavelength == "ls.w1" for d in decisions)


def test_ends_set_alike_while_their_fix_drains_are_left_as_set():
    """A re-tester set the second end 10.6 s after the first; the fix, then draining
    towards 300G, Set both to 300G right after they had agreed on the operator's 400G."""
    a = adapter(mismatch_s=10.0, drain_s=2.0)
    a.observe(0.0, [disagreeing(None)])
    [drain] = a.observe(10.0, [disagreeing(None)])
    assert drain.to_mode == "300G"
    assert a.observe(11.0, [obs(25.5, mode="400G", up=False)]) == [Resume(W, "400G", 400.0)]
    assert a.phase(W) == Phase.IN_SERVICE
    assert a.observe(13.0, [obs(25.5, mode="400G")]) == []          # no Set follows


def test_two_wavelengths_of_a_line_left_disagreeing_are_fixed_together():
    """A re-tester: one-ended Sets on both wavelengths of a line; the second was fixed only
    once the first was back in use (dark meanwhile, holding back for nothing)."""
    a = adapter(mismatch_s=10.0)
    both = [Observation(w, "400ZR+", None, 25.5, False, "ls", ("300G", "400G"))
            for w in ("ls.w1", "ls.w2")]
    a.observe(0.0, both)
    assert {d.wavelength for d in a.observe(10.0, both) if isinstance(d, Drain)} == \
        {"ls.w1", "ls.w2"}


# -- what the fabric file holds a wavelength to (LineLimits) -------------------------------

def limited(**limits):
    a = adapter()
    a.limits[W] = LineLimits(**limits)
    return a


def drains(a, times, observation):
    return [(d.from_mode, d.to_mode) for t in times
            for d in a.observe(float(t), [observation]) if isinstance(d, Drain)]


def test_never_up_to_a_mode_whose_dispersion_tolerance_the_line_exceeds():
    # 21 250 ps/nm (1 250 km): beyond 400G's 20 000 ps/nm, within 300G's 40 000
    a = limited(dispersion_ps_nm=21250.0)
    assert drains(a, range(300), obs(30.0, mode="300G")) == []
    assert drains(adapter(), range(300), obs(30.0, mode="300G")) == [("300G", "400G")]


def test_a_mode_the_line_cannot_decode_is_stepped_down_though_its_osnr_would_do():
    a = limited(dispersion_ps_nm=21250.0)
    [drain] = a.observe(0.0, [obs(30.0, mode="400G", up=False)])     # set so by hand: dark
    assert (drain.from_mode, drain.to_mode) == ("400G", "300G")
    assert "dispersion 21250 ps/nm beyond 400G's 20000 ps/nm" in drain.reason
    # a dark 400G with 6 dB of margin on a line it decodes is restoration's, as before
    assert adapter().observe(0.0, [obs(30.0, mode="400G", up=False)]) == []
    # lit, it decodes (a catalog's tolerance is a minimum): left as it is
    assert drains(limited(dispersion_ps_nm=21250.0), range(5), obs(30.0, mode="400G")) == []


def test_a_step_up_keeps_the_files_design_margin():
    a = limited(margin_db=4.0)
    # 2.5 dB in 400G: clear of threshold + hysteresis (2 dB), short of the file's 4 dB
    assert drains(a, range(200), obs(26.5, mode="300G")) == []
    assert drains(a, range(200, 260), obs(28.2, mode="300G")) == [("300G", "400G")]


def test_a_forced_mode_is_a_ceiling_stepped_down_from_and_back_up_to():
    a = limited(highest="300G")
    assert drains(a, range(200), obs(32.0, mode="300G")) == []      # 400G would have 8 dB
    [drain] = a.observe(200.0, [obs(21.5, mode="300G")])             # 0.5 dB in 300G
    assert drain.to_mode == "200G"
    assert run_change(a, 200.0, "200G", 21.5) == [Resume(W, "200G", 200)]
    assert drains(a, range(210, 300), obs(32.0, mode="200G")) == [("200G", "300G")]


def test_ends_that_disagree_are_set_alike_no_higher_than_a_forced_mode():
    a = limited(highest="200G")
    both = Observation(W, "400ZR+", None, 32.0, False, end_modes=("300G", "400G"))
    assert drains(a, range(40), both) == [("300G/400G", "200G")]
    # no OSNR read: the safer end's mode, else the highest usable one below it
    unread = Observation(W, "400ZR+", None, None, False, end_modes=("300G", "400G"))
    assert drains(limited(highest="200G"), range(40), unread) == [("300G/400G", "200G")]
    assert drains(adapter(), range(40), unread) == [("300G/400G", "300G")]


def test_the_limits_come_from_the_fabric_file(tmp_path):
    from optical_helpers import ZRPLUS_FABRIC

    from dcilab.app.adaptation import line_limits
    from dcilab.fabric import load_fabric
    path = tmp_path / "f.yaml"
    path.write_text(ZRPLUS_FABRIC + "    mode: 300G\n    margin_db: 3.5\n")
    limits = line_limits(load_fabric(path))
    assert set(limits) == {"dc1-dc2.w1", "dc1-dc2.w2"}
    assert limits["dc1-dc2.w1"] == LineLimits(400 * 17.0, 3.5, "300G")


# A reviewer's: `drain_room` counted only the other wavelengths' room, so it approved
# step ups that degraded (a full or cut way to those wavelengths inside a site) or left a
# PROTECTED pair without its standby. Each is now tried as restoration does, taken back.

def _drain_is_tried_and_taken_back(lab, wavelength: str) -> str | None:
    before = {r: lab.ctl.book.get(r) for r in lab.ctl.book.reservations}
    reserved = dict(lab.ctl.book.reserved)
    layout, engine = lab.ctl.book.layout(), lab.ctl.engine
    lab.ctl.engine.next_hops(next(iter(lab.fabric.hosts.values())).leaf)
    derived = (engine._next_hops, dict(engine._next_hops))
    why = lab.ctl.drain_room(wavelength)
    # nothing came back or moved: refusals stand; and routes are not derived again
    assert lab.ctl.book.layout() == layout
    assert engine._next_hops is derived[0] and engine._next_hops == derived[1]
    assert {r: lab.ctl.book.get(r) for r in before} == before
    assert lab.ctl.book.reserved.keys() == reserved.keys()
    assert all(lab.ctl.book.reserved[d] == pytest.approx(bps) for d, bps in reserved.items())
    assert not lab.ctl.engine.drained
    return why


def test_a_step_up_waits_while_the_way_to_the_other_wavelength_is_full_inside_a_site():
    lab = ControllerLab(parse_fabric("""
name: intra
sites:
  - {name: a, spines: 2, leaves: 3, hosts_per_leaf: 1, gateways: 2, fabric_gbps: 400}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 3, gateways: 2, fabric_gbps: 1600}
  - {name: c, spines: 1, leaves: 1, hosts_per_leaf: 3, gateways: 2, fabric_gbps: 1600}
dci_links:
  - {name: x, a: a, b: b, fiber_km: 40, module: 400ZR+, wavelengths: 1, a_gateway: 1, b_gateway: 1}
  - {name: y, a: a, b: b, fiber_km: 50, module: 400ZR+, wavelengths: 1, a_gateway: 2, b_gateway: 2}
  - {name: z, a: a, b: c, fiber_km: 50, module: 400ZR+, wavelengths: 2, a_gateway: 2, b_gateway: 1}
""")).bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 300.0), "r0", 0.0))
    for i, dst in enumerate(("c-h1", "c-h2"), 1):     # both spines' links to a-gw2 fill
        lab.send(lab.ctl.reserve(ReservationRequest(f"a-h{i + 1}", dst, 300.0), f"r{i}", i))
    assert on(lab, "r0") == "x.w1"                     # y (on a-gw2) has 360 G free
    why = _drain_is_tried_and_taken_back(lab, "x.w1")
    assert why is not None and why.startswith("reservation(s) r0 (300.000 Gb/s a-h1 -> b-h1) "
                                              "would have no room without x.w1: link a-gw2~")


def test_a_step_up_waits_while_the_other_wavelengths_gateway_is_cut_off_inside_its_site():
    lab = ControllerLab(parse_fabric("""
name: two
sites:
  - {name: a, spines: 2, leaves: 1, hosts_per_leaf: 2, gateways: 2, fabric_gbps: 1600}
  - {name: b, spines: 2, leaves: 1, hosts_per_leaf: 2, gateways: 2, fabric_gbps: 1600}
dci_links:
  - {name: x, a: a, b: b, fiber_km: 40, module: 400ZR+, wavelengths: 1}
  - {name: y, a: a, b: b, fiber_km: 50, module: 400ZR+, wavelengths: 1}
""")).bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0), "r0", 0.0))
    assert on(lab, "r0") == "x.w1"
    for link in lab.fabric.links:                      # a-gw2, y's gateway, loses its spines
        if link.name in ("a-gw2~spine1", "a-gw2~spine2"):
            lab.send(lab.ctl.port_changed(lab.dpid(link.a.node), link.a.port, False, 1.0))
    lab.send(lab.ctl.tick(2.0))
    why = _drain_is_tried_and_taken_back(lab, "x.w1")
    assert why is not None and "would have no room without x.w1: " in why
    lab.send(lab.ctl.tick(3.0))
    assert lab.ctl.book.get("r0").state is not State.DEGRADED


def test_a_step_up_waits_while_it_would_take_a_protected_reservations_standby():
    lab = ControllerLab(parse_fabric(THREE_WAYS)).bring_up_all()
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 300.0,
                                                protection=Protection.PROTECTED), "p", 0.0))
    lab.send(lab.ctl.reserve(ReservationRequest("a-h2", "b-h2", 300.0), "n", 1.0))
    [standby] = [h.wavelength for h in lab.ctl.book.get("p").standby if h.wavelength]
    assert on(lab, "n") not in (standby, on(lab, "p"))       # the third is full
    why = _drain_is_tried_and_taken_back(lab, standby)
    assert why == (f"reservation(s) p (300.000 Gb/s a-h1 -> b-h1) would run without a "
                   f"standby: none that avoids its primary's risks has room without {standby}")
    lab.send(lab.ctl.end("n"))                          # the third has room for it now
    assert _drain_is_tried_and_taken_back(lab, standby) is None


def test_a_step_up_is_not_held_off_by_a_protected_pair_already_without_a_standby():
    """A re-tester's: x down, p ran on y.w1 without a standby (none had room), and every
    step up of y.w1 was refused for good as "p would run without a standby", though a
    drain left it no worse, on y.w2."""
    lab = ControllerLab(parse_fabric("""
name: unprotected
sites:
  - {name: a, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 2, fabric_gbps: 1600}
  - {name: b, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 2, fabric_gbps: 1600}
dci_links:
  - {name: x, a: a, b: b, fiber_km: 40, module: 400ZR+, wavelengths: 1}
  - {name: y, a: a, b: b, fiber_km: 50, module: 400ZR+, wavelengths: 2}
""")).bring_up_all()
    lab.send(lab.ctl.tick(0.0))
    lab.send(lab.ctl.reserve(ReservationRequest("a-h1", "b-h1", 100.0,
                                                protection=Protection.PROTECTED), "p", 1.0))
    lab.ack_all()
    x = next(link for link in lab.fabric.wavelengths() if link.wavelength == "x.w1")
    lab.send(lab.ctl.port_changed(lab.dpid(x.a.node), x.a.port, False, 2.0))
    lab.send(lab.ctl.tick(2.5))
    lab.ack_all()
    p = lab.ctl.book.get("p")
    assert p.state is State.ACTIVE and p.standby == () and on(lab, "p").startswith("y.")
    assert _drain_is_tried_and_taken_back(lab, on(lab, "p")) is None

