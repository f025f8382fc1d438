"""The emulation's optical state over (simulated) time, and its data-plane commands."""

import subprocess

import pytest
from optical_helpers import zrplus_fabric

from dcilab.emulation.optical_state import OpticalState, Ramp, WavelengthEffect
from dcilab.emulation.wavelength_effects import NFT_TABLE, WavelengthEffects
from dcilab.optics import OpticsError


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def fabric(tmp_path):
    return zrplus_fabric(tmp_path)[0]


def test_ramp_is_linear_and_ends_at_its_target():
    ramp = Ramp(0.0, 6.0, t0=10.0, duration_s=30.0)
    assert [ramp.value_at(t) for t in (5, 10, 25, 40, 99)] == [0.0, 0.0, 3.0, 6.0, 6.0]


def test_as_designed_every_wavelength_runs_its_planned_mode_clean(fabric):
    state = OpticalState(fabric, clock=Clock())
    effects = state.effects()
    assert set(effects) == {"dc1-dc2.w1", "dc1-dc2.w2"}
    assert all(e == WavelengthEffect(400, 0, False) for e in effects.values())
    status = state.statuses()[("dc1-dc2.w1", "dc1-gw1")]
    assert status.reading.q_margin_db > 0 and status.mode.name == "400G"


def test_a_span_loss_ramp_degrades_then_darkens_and_restore_stops_it(fabric):
    clock = Clock()
    state = OpticalState(fabric, clock=clock)
    state.degrade_span("dc1-dc2", 3, 12.0, ramp_s=40.0)
    seen = []
    for _ in range(41):
        clock.now += 1
        state.tick()
        e = state.effects()["dc1-dc2.w1"]
        seen.append((e.loss_per_mille, e.dark))
    # clean at first, then partial loss, then dark (sync lost) at the end of the ramp
    assert seen[0] == (0, False)
    assert any(0 < loss < 1000 and not dark for loss, dark in seen)
    assert seen[-1][1] is True
    assert state.line_state("dc1-dc2").span_extra_loss_db[2] == 12.0
    state.degrade_span("dc1-dc2", 3, 8.0, ramp_s=0)
    state.set_amplifier_nf("dc1-dc2", 1, 9.0, ramp_s=100.0)
    assert state.ramping()
    state.restore("dc1-dc2")
    assert not state.ramping()
    clock.now += 50
    state.tick()
    assert state.line_state("dc1-dc2").amplifier_nf_db[0] == 5.5
    assert state.effects()["dc1-dc2.w1"] == WavelengthEffect(400, 0, False)


def test_a_mode_change_is_dark_for_the_reconfiguration_time_then_runs_the_new_rate(fabric):
    clock = Clock()
    state = OpticalState(fabric, reconfiguration_s=10.0, clock=clock)
    assert state.set_mode("dc1-dc2.w1", "300G") == ["dc1-gw1", "dc2-gw1"]
    assert state.effects()["dc1-dc2.w1"] == WavelengthEffect(300, 0, True)
    clock.now += 9.9
    state.tick()
    assert state.effects()["dc1-dc2.w1"].dark
    clock.now += 0.2
    state.tick()
    assert state.effects()["dc1-dc2.w1"] == WavelengthEffect(300, 0, False)
    assert state.effects()["dc1-dc2.w2"] == WavelengthEffect(400, 0, False)


def test_ends_in_different_modes_do_not_talk(fabric):
    clock = Clock()
    state = OpticalState(fabric, reconfiguration_s=0.0, clock=clock)
    state.set_mode("dc1-dc2.w2", "200G", gateway="dc2-gw1")
    assert state.effects()["dc1-dc2.w2"].dark
    state.set_mode("dc1-dc2.w2", 4, gateway="dc1-gw1")        # operational-mode id of 200G
    assert state.effects()["dc1-dc2.w2"] == WavelengthEffect(200, 0, False)


def test_a_lower_mode_survives_what_the_higher_one_does_not(fabric):
    clock = Clock()
    state = OpticalState(fabric, reconfiguration_s=0.0, clock=clock)
    state.degrade_span("dc1-dc2", 1, 9.0)
    assert state.effects()["dc1-dc2.w1"].loss_per_mille > 0 or state.effects()["dc1-dc2.w1"].dark
    state.set_mode("dc1-dc2.w1", "300G")
    assert state.effects()["dc1-dc2.w1"] == WavelengthEffect(300, 0, False)


def test_bad_requests_are_named(fabric):
    state = OpticalState(fabric, clock=Clock())
    with pytest.raises(OpticsError, match="unknown line system 'nope'"):
        state.degrade_span("nope", 1, 1.0)
    with pytest.raises(OpticsError, match="400ZR\\+ has no mode '500G'"):
        state.set_mode("dc1-dc2.w1", "500G")
    with pytest.raises(OpticsError, match="operational-mode 1 is not a mode of 400ZR\\+"):
        state.set_mode("dc1-dc2.w1", 1)
    with pytest.raises(OpticsError, match="amplifier 9 does not exist"):
        state.set_amplifier_nf("dc1-dc2", 9, 6.0)


def test_a_refused_degradation_changes_nothing_and_the_agent_ticks_on(fabric):
    """An optical tester's finding: a noise figure GNPy gives no GSNR for was refused
    yet kept (so every later tick failed, and every later degradation on any line), and a
    NaN or infinite ramp was taken."""
    clock = Clock()
    state = OpticalState(fabric, clock=clock)
    designed = state.line_state("dc1-dc2")
    state.degrade_span("dc1-dc2", 1, 6.0, ramp_s=10.0)     # one in flight: its end counts
    with pytest.raises(OpticsError, match="noise figure \\(dB\\) of amplifier 2 1e\\+06 "
                                          "refused, nothing changed: GNPy gives no finite"):
        state.set_amplifier_nf("dc1-dc2", 2, 1e6, ramp_s=5.0)
    for ramp in (float("nan"), float("inf"), 1e308):
        with pytest.raises(OpticsError, match="ramp time must be a number of seconds from 0 to 86400"):
            state.degrade_span("dc1-dc2", 1, 3.0, ramp_s=ramp)
    clock.now += 20
    state.tick()
    assert state.line_state("dc1-dc2").span_extra_loss_db == (6.0,) + (0.0,) * (
        designed.spans - 1)
    state.set_amplifier_nf("dc1-dc2", 1, 6.0)                  # later changes go in
    state.tick()


def test_a_span_loss_past_the_amplifier_and_the_receiver_is_no_light(fabric):
    """An optical tester's finding: +500 dB in a span still read an OSNR of -465 dB (and
    GNPy failed past ~55 dB): an EDFA makes up at most ~35 dB, and a ZR receiver loses
    the signal below ~-20 dBm. 80 km spans lose 17.6 dB: past 37.4 dB more, no light."""
    state = OpticalState(fabric, clock=Clock())
    for extra, lost in ((37.0, False), (38.0, True), (100.0, True)):   # 100: the most
        state.degrade_span("dc1-dc2", 2, extra)
        statuses = [s for (w, _), s in state.statuses().items() if w.startswith("dc1-dc2.")]
        assert {(s.dark, s.no_light) for s in statuses} == {(True, lost)}, extra
    state.restore("dc1-dc2")
    assert not any(s.dark or s.no_light for s in state.statuses().values())


def test_a_ramp_through_states_gnpy_has_no_gsnr_for_reads_no_light_and_ticks_on(fabric):
    """An optical re-tester's: a ramp into loss of signal with a huge noise figure was
    accepted (its end is no light, which GNPy is not asked about), and on its way every
    tick failed: readings froze as healthy until the loss passed the cliff."""
    clock = Clock()
    state = OpticalState(fabric, clock=clock)
    state.degrade_span("dc1-dc2", 1, 100.0, ramp_s=40.0)
    state.set_amplifier_nf("dc1-dc2", 1, 1e6, ramp_s=40.0)
    for _ in range(5):
        clock.now += 2.0
        state.tick()                                  # no OpticsError
        assert all(s.no_light and s.dark for (w, _), s in state.statuses().items()
                   if w.startswith("dc1-dc2."))
    state.restore("dc1-dc2")
    assert not any(s.dark for s in state.statuses().values())


def test_data_plane_commands_are_issued_only_on_change(fabric):
    calls = []

    def run(cmd, stdin=None):
        calls.append((cmd, stdin))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    effects = WavelengthEffects(fabric, run=run)
    effects.apply("dc1-dc2.w1", WavelengthEffect(400, 0, False))
    rates = [c for c, _ in calls if c[:3] == ["tc", "class", "change"]]
    assert [c[4] for c in rates] == ["dl1gw1p2", "dl2gw1p2"]
    assert rates[0][rates[0].index("rate") + 1] == "40.000000Mbit"   # 400 Gb/s × 1e-4
    calls.clear()
    effects.apply("dc1-dc2.w1", WavelengthEffect(400, 0, False))
    assert calls == []
    effects.apply("dc1-dc2.w1", WavelengthEffect(400, 250, False))
    [(cmd, script)] = calls
    assert cmd == ["nft", "-f", "-"]
    assert f"add table netdev {NFT_TABLE}" in script
    assert 'hook egress device "dl1gw1p2"' in script
    assert script.count("numgen random mod 1000 < 250 counter drop") == 2
    calls.clear()
    effects.apply("dc1-dc2.w1", WavelengthEffect(400, 1000, False))   # all lost: no numgen
    [(_, script)] = calls
    assert "numgen" not in script and script.count("counter drop") == 2
    calls.clear()
    effects.apply("dc1-dc2.w1", WavelengthEffect(300, 0, True))
    cmds = [c for c, _ in calls]
    assert ["ip", "link", "set", "dev", "dl1gw1p2", "down"] in cmds
    assert any(c[:3] == ["tc", "class", "change"] and "30.000000Mbit" in c for c in cmds)
    effects.close()
    assert calls[-1][0] == ["nft", "delete", "table", "netdev", NFT_TABLE]


def test_the_qot_engine_runs_only_when_the_line_changes(fabric, monkeypatch):
    import dcilab.emulation.optical_state as module
    calls = []
    real = module.line_gsnr_db

    def counting(*args):
        calls.append(args)
        return real(*args)
    monkeypatch.setattr(module, "line_gsnr_db", counting)
    clock = Clock()
    state = OpticalState(fabric, clock=clock)
    assert len(calls) == 1
    for _ in range(5):
        clock.now += 1
        state.tick()
    assert len(calls) == 1                       # nothing changed: no new computation
    state.degrade_span("dc1-dc2", 1, 1.0)
    assert len(calls) == 2


def test_each_direction_carries_one_channel_per_wavelength(tmp_path):
    """An outside tester: the agent modelled both ends' transceivers as channels on one
    fibre, twice the wavelengths there are. A line lit over half its band (17 x 800ZR)
    crashed `demo --gnmi`, and smaller ones read a lower GSNR than `check` plans."""
    from dcilab.fabric import load_fabric
    path = tmp_path / "full.yaml"
    path.write_text("""\
name: full
scale: 1.0e-4
sites:
  - {name: dc1, spines: 1, leaves: 1, hosts_per_leaf: 1}
  - {name: dc2, spines: 1, leaves: 1, hosts_per_leaf: 1}
dci_links:
  - {name: l, a: dc1, b: dc2, fiber_km: 80, module: 800ZR, wavelengths: 17}
  - {name: m, a: dc1, b: dc2, fiber_km: 400, module: 400ZR+, wavelengths: 4}
""")
    fabric = load_fabric(path)
    state = OpticalState(fabric, clock=Clock())         # used to raise: 34 do not fit
    statuses = state.statuses()
    for link in fabric.wavelengths():
        for gateway in (link.a.node, link.b.node):
            osnr = statuses[(link.wavelength, gateway)].reading.osnr_db
            assert osnr == pytest.approx(link.channel.gsnr_db, abs=0.01), link.wavelength


def test_every_frame_errored_is_a_link_down_though_sync_holds(fabric):
    """The optical bench's +11 dB sat where 400G errs every frame yet keeps sync: a link
    up that passed nothing, and the run without adaptation hung on it."""
    state = OpticalState(fabric, clock=Clock())
    state.degrade_span("dc1-dc2", 1, 10.5)
    status = state.statuses()[("dc1-dc2.w1", "dc1-gw1")]
    assert status.reading.in_sync and status.reading.loss_ratio >= 1.0
    assert status.dark and status.signal           # down, its OSNR still read
    assert state.effects()["dc1-dc2.w1"].dark


@pytest.mark.parametrize("ps_nm_km, dark", [(35.0, True), (30.0, False)])
def test_a_mode_whose_dispersion_tolerance_the_line_exceeds_never_locks(tmp_path, ps_nm_km,
                                                                        dark):
    from optical_helpers import ZRPLUS_FABRIC

    from dcilab.fabric import load_fabric
    path = tmp_path / "long.yaml"
    path.write_text(ZRPLUS_FABRIC.replace(
        "fiber_km: 400", f"fiber_km: 600\n    dispersion_ps_nm_km: {ps_nm_km}"))
    fabric = load_fabric(path)       # 21 000 ps/nm is beyond 400G's 20 000, 18 000 within
    state = OpticalState(fabric, reconfiguration_s=0.0, clock=Clock())
    state.set_mode("dc1-dc2.w1", "400G")                 # by hand: its OSNR would carry it
    assert state.effects()["dc1-dc2.w1"].dark is dark
    assert not state.effects()["dc1-dc2.w2"].dark        # the plan's mode, left as it is
