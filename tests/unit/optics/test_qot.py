"""GSNR and OSNR_ASE from GNPy: against GNPy run independently, the hand ASE formula as a
cross-check, launch power `auto`, and the physics each figure must follow."""

import math

import pytest
from gnpy_reference import gnpy_reference

from dcilab.optics import DEFAULT_CATALOG, AUTO, LineSystem, OpticsError, line_qot
from dcilab.optics.qot import roll_off

ZR_PLUS = DEFAULT_CATALOG.module("400ZR+")
ZR_PLUS_400G, ZR_PLUS_100G = ZR_PLUS.mode("400G"), ZR_PLUS.mode("100G")
ZR800_PLUS = DEFAULT_CATALOG.module("800ZR+")
ZR800 = DEFAULT_CATALOG.module("800ZR")

# Held-out line systems: full C-band loads, launch powers off 0 dBm, long hauls, other
# spans, noise figures and fibres. (module, mode, wavelengths, LineSystem kwargs, roll-off
# the test writes out itself from baud × (1 + roll-off) ≤ slot.)
HELD_OUT = [
    ("400ZR+", "400G", 64, dict(fiber_km=390, launch_power_dbm=-1.5), 0.15),
    ("400ZR+", "400G", 64, dict(fiber_km=800, launch_power_dbm=1.5), 0.15),
    ("400ZR+", "300G", 64, dict(fiber_km=1150, launch_power_dbm=1.5), 0.15),
    ("400ZR+", "100G", 96, dict(fiber_km=1500, span_km=70, amplifier_nf_db=6.0,
                                attenuation_db_per_km=0.2, launch_power_dbm=-1.0), 0.15),
    # 131.3 GBd in 150 GHz: roll-off at most 150/131.3 − 1 = 0.142 → 0.14.
    ("800ZR+", "800G", 32, dict(fiber_km=560, span_km=75, launch_power_dbm=2.5), 0.14),
    ("800ZR", "800G", 32, dict(fiber_km=120, span_km=60, launch_power_dbm=3.0,
                               dispersion_ps_nm_km=16.0), 0.15),
]


@pytest.mark.parametrize(("module", "mode", "count", "kwargs", "rolloff"), HELD_OUT)
def test_gsnr_within_0_3_db_of_gnpy_run_independently(module, mode, count, kwargs, rolloff):
    transceiver = DEFAULT_CATALOG.module(module)
    chosen = transceiver.mode(mode)
    line = LineSystem(**kwargs)
    qot = line_qot(line, transceiver, chosen, count)
    reference = gnpy_reference(
        fiber_km=line.fiber_km, span_km=line.span_km, channels=count, baud_gbd=chosen.baud_gbd,
        slot_ghz=chosen.width_ghz, launch_dbm=kwargs["launch_power_dbm"], roll_off=rolloff,
        tx_osnr_db=transceiver.tx_osnr_db, nf_db=line.amplifier_nf_db,
        attenuation_db_per_km=line.attenuation_db_per_km,
        dispersion_ps_nm_km=line.dispersion_ps_nm_km)
    assert len(qot.gsnr_db) == count
    for ours, theirs in zip(qot.gsnr_db, reference.gsnr_01nm):
        assert ours == pytest.approx(theirs, abs=0.3)
    for ours, theirs in zip(qot.osnr_ase_db, reference.osnr_ase_01nm):
        assert ours == pytest.approx(theirs, abs=0.3)
    assert qot.worst_gsnr_db == pytest.approx(min(reference.gsnr_01nm), abs=0.3)


def test_per_0_1_nm_is_signal_bandwidth_plus_10_log_baud_over_12_5_ghz():
    qot = line_qot(LineSystem(400), ZR_PLUS, ZR_PLUS_400G, 8)
    shift = 10 * math.log10(60.1385 / 12.5)                     # 6.822 dB
    for per_01nm, signal in zip(qot.gsnr_db, qot.gsnr_signal_db):
        assert per_01nm - signal == pytest.approx(shift, abs=1e-6)


@pytest.mark.parametrize(("fiber_km", "launch"), [(80, 0.0), (480, 0.0), (1000, 1.0)])
def test_ase_matches_the_hand_formula(fiber_km, launch):
    # Cross-check only: OSNR_ASE = 58 + P − L_span − NF − 10·log10(N), with the 34 dB
    # transmitter added in linear units; GNPy's ASE is hν·B·NF·G per amplifier, the same
    # physics, with h·ν taken per channel instead of at 193.1 THz (hence ≤ 0.15 dB).
    line = LineSystem(fiber_km, launch_power_dbm=launch)
    n = line.spans
    ase = 58 + launch - 0.22 * fiber_km / n - 5.5 - 10 * math.log10(n)
    hand = -10 * math.log10(10 ** (-ase / 10) + 10 ** (-34 / 10))
    qot = line_qot(line, ZR_PLUS, ZR_PLUS_400G, 64)
    assert all(abs(osnr - hand) <= 0.15 for osnr in qot.osnr_ase_db)


def test_nli_costs_0_4_to_0_9_db_at_0_dbm_with_64_x_400g():
    # REFERENCE.md, measured: NLI at 0 dBm costs 0.4–0.9 dB with 64 × 400G.
    for km in (80, 400, 1000):
        qot = line_qot(LineSystem(km), ZR_PLUS, ZR_PLUS_400G, 64)
        cost = min(qot.osnr_ase_db) - qot.worst_gsnr_db
        assert 0.3 <= cost <= 1.0, (km, cost)


def test_the_mid_band_wavelength_suffers_most_nli():
    qot = line_qot(LineSystem(600), ZR_PLUS, ZR_PLUS_400G, 64)
    worst = qot.gsnr_db.index(qot.worst_gsnr_db)
    assert 16 <= worst <= 48
    assert qot.gsnr_db[0] > qot.worst_gsnr_db + 0.05


def test_more_wavelengths_more_nli_less_gsnr():
    gsnr = [line_qot(LineSystem(600, launch_power_dbm=2), ZR_PLUS, ZR_PLUS_400G, n).worst_gsnr_db
            for n in (1, 8, 32, 64)]
    assert gsnr == sorted(gsnr, reverse=True)
    assert gsnr[0] - gsnr[-1] > 0.5


def test_noise_figure_and_extra_span_loss_cost_ase_db_for_db():
    base = line_qot(LineSystem(80), ZR_PLUS, ZR_PLUS_400G, 1)
    noisy = line_qot(LineSystem(80, amplifier_nf_db_each=(8.5,)), ZR_PLUS, ZR_PLUS_400G, 1)
    lossy = line_qot(LineSystem(80, span_extra_loss_db=(3.0,)), ZR_PLUS, ZR_PLUS_400G, 1)

    def line_ase(osnr_total):  # take the transmitter's 34 dB back out
        return -10 * math.log10(10 ** (-osnr_total / 10) - 10 ** (-34 / 10))

    assert line_ase(noisy.osnr_ase_db[0]) == pytest.approx(line_ase(base.osnr_ase_db[0]) - 3,
                                                           abs=0.02)
    assert line_ase(lossy.osnr_ase_db[0]) == pytest.approx(line_ase(base.osnr_ase_db[0]) - 3,
                                                           abs=0.02)


def test_one_degraded_span_of_several():
    clean = line_qot(LineSystem(400), ZR_PLUS, ZR_PLUS_400G, 64)
    bent = line_qot(LineSystem(400, span_extra_loss_db=(0, 0, 6.0, 0, 0)),
                    ZR_PLUS, ZR_PLUS_400G, 64)
    assert bent.worst_gsnr_db < clean.worst_gsnr_db - 0.5


def test_launch_auto_is_the_best_launch_power_gnpy_finds():
    # REFERENCE.md: the best launch power for full-load 400G is about 0.5–1 dBm.
    line = LineSystem(800, launch_power_dbm=AUTO)
    best = line_qot(line, ZR_PLUS, ZR_PLUS_400G, 64)
    assert 0.3 <= best.launch_power_dbm <= 1.5
    # GNPy run independently on a 0.25 dB scan finds nothing better.
    scan = {p / 4: min(gnpy_reference(fiber_km=800, span_km=80, channels=64,
                                      baud_gbd=60.1385, slot_ghz=75, launch_dbm=p / 4).gsnr_01nm)
            for p in range(-4, 13)}
    assert best.worst_gsnr_db >= max(scan.values()) - 0.02
    assert best.worst_gsnr_db == pytest.approx(
        min(gnpy_reference(fiber_km=800, span_km=80, channels=64, baud_gbd=60.1385,
                           slot_ghz=75, launch_dbm=best.launch_power_dbm).gsnr_01nm), abs=0.01)


def test_launch_auto_is_higher_for_800g_and_for_fewer_wavelengths():
    # REFERENCE.md: about 2–4 dBm for 800G (wider channels: NLI per dBm is lower).
    wide = line_qot(LineSystem(500, launch_power_dbm=AUTO), ZR800_PLUS,
                    ZR800_PLUS.mode("800G"), 32)
    assert 1.5 <= wide.launch_power_dbm <= 4.5
    scan = [min(gnpy_reference(fiber_km=500, span_km=80, channels=32, baud_gbd=131.3,
                               slot_ghz=150, roll_off=0.14, launch_dbm=p / 4).gsnr_01nm)
            for p in range(4, 25)]
    assert wide.worst_gsnr_db >= max(scan) - 0.02
    few = line_qot(LineSystem(800, launch_power_dbm=AUTO), ZR_PLUS, ZR_PLUS_400G, 4)
    full = line_qot(LineSystem(800, launch_power_dbm=AUTO), ZR_PLUS, ZR_PLUS_400G, 64)
    assert few.launch_power_dbm > full.launch_power_dbm


def test_roll_off_fits_the_slot():
    assert roll_off(ZR_PLUS_400G) == 0.15
    assert roll_off(ZR800_PLUS.mode("800G")) == 0.14         # 150 / 131.3 − 1 = 0.142
    for module in DEFAULT_CATALOG:
        for mode in module.modes:
            assert mode.baud_gbd * (1 + roll_off(mode)) <= mode.width_ghz + 1e-9


def test_full_band_is_the_default_load():
    qot = line_qot(LineSystem(80), ZR_PLUS, ZR_PLUS_100G)
    assert len(qot.gsnr_db) == 96                              # 4800 / 50


def test_too_many_wavelengths_is_an_optics_error():
    with pytest.raises(OpticsError, match="only 64 fit"):
        line_qot(LineSystem(80), ZR_PLUS, ZR_PLUS_400G, 65)


def test_c_plus_l_lights_the_l_band_too():
    qot = line_qot(LineSystem(200, band="C+L"), ZR_PLUS, ZR_PLUS_400G, 70)
    assert len(qot.gsnr_db) == 70
    assert qot.frequency_thz[-1] < 191.0
    assert all(25 < g < 35 for g in qot.gsnr_db)


def test_each_wavelength_gets_the_gsnr_of_its_own_frequency_across_bands():
    # C is filled first, the 65th wavelength is alone in L, below C: GNPy answers in
    # frequency order, and a C+L line once gave every wavelength its neighbour's figure
    # (an outside tester: the lone L carrier showed a crowded C one's GSNR, 2.8 dB off).
    mode = ZR_PLUS.mode("300G")
    both = line_qot(LineSystem(300, band="C+L", launch_power_dbm=5), ZR_PLUS, mode, 65)
    c_only = line_qot(LineSystem(300, launch_power_dbm=5), ZR_PLUS, mode, 64)
    assert both.frequency_thz[-1] < 191.0 < both.frequency_thz[0]
    # Alone, with no neighbours' non-linear noise, the L carrier is the cleanest.
    assert both.gsnr_db[-1] == max(both.gsnr_db) > max(c_only.gsnr_db) + 2.0
    # The C band barely notices one carrier 5 THz away.
    assert both.gsnr_db[:64] == pytest.approx(c_only.gsnr_db, abs=0.1)


def test_identical_line_systems_are_computed_once():
    from dcilab.optics import qot as qot_module
    line = LineSystem(321.5, launch_power_dbm=0.7)
    first = line_qot(line, ZR_PLUS, ZR_PLUS_400G, 16)
    hits = qot_module._qot.cache_info().hits
    again = line_qot(LineSystem(321.5, launch_power_dbm=0.7, margin_db=3.0),
                     ZR_PLUS, ZR_PLUS_400G, 16)
    assert again == first
    assert qot_module._qot.cache_info().hits == hits + 1
