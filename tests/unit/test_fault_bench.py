"""The fault bench's yardsticks: the elephants' post-failure optimum and when they reach it."""

from types import SimpleNamespace

import pytest

from dcilab.bench.faults import (DEFAULT_FABRIC, _dead, all_met, _targets, _time_to_optimum, _worst,
                                 elephant_optimum, events)
from dcilab.emulation.probe_agent import WIRE_BYTES
from dcilab.emulation.probe_analysis import Window
from dcilab.emulation.probes import Stream
from dcilab.fabric import parse_fabric


@pytest.fixture(scope="module")
def triangle():
    return parse_fabric(DEFAULT_FABRIC, "fault-bench.yaml")


def _pairs(fabric):
    a, b = fabric.hosts_of("a"), fabric.hosts_of("b")
    return [(a[0].name, b[-1].name), (a[-1].name, b[0].name)]


def test_optimum_follows_what_survives_and_the_stretch_bound(triangle):
    by_name = {e.name: e for e in events(triangle)}
    pairs = _pairs(triangle)
    assert elephant_optimum(triangle, (), pairs) == pytest.approx(2.0)
    one = _dead(triangle, by_name["one wavelength cut"])
    # a-b keeps one wavelength; the way round through c is 2.75 x longer, beyond the
    # controller's 1.5 stretch, so both elephants share the survivor...
    assert elephant_optimum(triangle, one, pairs) == pytest.approx(1.0)
    # ... unless the stretch bound allows the detour.
    assert elephant_optimum(triangle, one, pairs, max_stretch=10.0) == pytest.approx(2.0)
    # The whole line system cut: through c is all there is, and it has two wavelengths.
    cut = _dead(triangle, by_name["line system a-b cut"])
    assert elephant_optimum(triangle, cut, pairs) == pytest.approx(2.0)
    every = tuple(w.name for w in triangle.wavelengths())
    assert elephant_optimum(triangle, every, pairs) == 0.0


def test_probes_take_their_share_of_the_wavelengths_they_hash_onto(triangle):
    by_name = {e.name: e for e in events(triangle)}
    pairs = _pairs(triangle)
    a, b, c = (triangle.hosts_of(s) for s in "abc")
    # 1 Mb/s on the wire: a tenth of a 400G wavelength at the fault bench's 2.5e-5 scale.
    pps = 1e6 / (WIRE_BYTES * 8)
    ab = [Stream(a[0].name, b[0].name, b[0].ip)]
    # Hashed over a-b's two wavelengths: 0.05 of each is the probe's, 0.95 the elephants'.
    assert elephant_optimum(triangle, (), pairs, probes=ab, probe_pps=pps) == pytest.approx(1.9)
    one = _dead(triangle, by_name["one wavelength cut"])
    assert elephant_optimum(triangle, one, pairs, probes=ab, probe_pps=pps) == pytest.approx(0.9)
    # A probe between a and c crosses nothing the elephants use while a-b is whole ...
    ac = [Stream(a[0].name, c[0].name, c[0].ip)]
    assert elephant_optimum(triangle, (), pairs, probes=ac, probe_pps=pps) == pytest.approx(2.0)
    # ... and shares a-c with them once a-b is cut and they go round through c.
    cut = _dead(triangle, by_name["line system a-b cut"])
    assert elephant_optimum(triangle, cut, pairs, probes=ac, probe_pps=pps) == pytest.approx(1.9)


def _result(rates):
    """An iperf3 result reporting `rates` (b/s) every 0.2 s from its start."""
    return SimpleNamespace(intervals=tuple((i * 0.2, (i + 1) * 0.2, r)
                                           for i, r in enumerate(rates)))


def test_time_to_optimum_is_when_goodput_stays_near_it():
    # Dark for 1 s after the event at t=2, then back to full rate.
    rates = [10.0] * 10 + [0.0] * 5 + [10.0] * 15
    assert _time_to_optimum([_result(rates)], 0.0, 2.0, 6.0, 10.0) == pytest.approx(1.0)
    assert _time_to_optimum([_result([4.0] * 30)], 0.0, 2.0, 6.0, 10.0) is None
    assert _time_to_optimum([_result(rates)], 0.0, 2.0, 6.0, 0.0) is None


def _row(name, settle, back=0, p99=10.0, switchover_p99=None):
    early = p99 if switchover_p99 is None else switchover_p99
    return {"event": name, "loss_ms": {"p50": 1.0, "p99": p99, "max": p99},
            "switchover_ms": {"p50": 1.0, "p99": early, "max": early},
            "dark_after_1s": [], "elephants_within_5pct_after_s": settle,
            "reservation_silently_broken": False, "links_back_in_use": back}


def test_targets_take_the_slowest_event_and_leave_the_flap_out():
    rows = [_row("one wavelength cut", 0.4), _row("gray failure", 1.6),
            _row("flap every 500 ms", None, back=2)]
    t = _targets({"events": rows})
    assert t["elephants_within_5pct_after_s"] == 1.6
    assert t["elephants_within_5pct_in_2s_met"]
    assert t["flap_links_back_in_use"] == 2
    rows[0]["elephants_within_5pct_after_s"] = None
    assert not _targets({"events": rows})["elephants_within_5pct_in_2s_met"]


def test_the_log_names_the_longest_loss_windows_and_when_they_began():
    windows = [Window("a-h1>b-h1", 36.0, 36, 100.012, True), Window("b-h1>c-h1", 0.0, 0, None, True),
               Window("c-h1>a-h1", 140.5, 140, 99.998, True), Window("a-h2>b-h2", 9.0, 9, 100.1, True)]
    assert _worst(windows, since=100.0, n=2) == \
        "c-h1>a-h1 140.5 ms from -2 ms, a-h1>b-h1 36.0 ms from +12 ms"
    assert _worst(windows[1:2], since=100.0) == "none"


def test_the_loss_target_is_judged_on_all_loss_and_on_the_switchover_alone():
    rows = [_row("one wavelength cut", 0.4, p99=52.3, switchover_p99=20.1),
            _row("one transceiver dark", 0.3, p99=15.0), _row("gray failure", 1.0, p99=243.0),
            _row("flap every 500 ms", None)]
    t = _targets({"events": rows})
    assert (t["cut_and_dark_loss_p99_ms"], t["cut_and_dark_loss_p99_met"]) == (52.3, False)
    assert (t["cut_and_dark_switchover_p99_ms"], t["cut_and_dark_switchover_p99_met"]) == \
        (20.1, True)
    assert not all_met(t)                       # the exit status of --check-targets
    rows[0]["loss_ms"]["p99"] = 30.0
    assert all_met(_targets({"events": rows}))
    rows[1]["dark_after_1s"] = ["a-h1>b-h1"]
    assert not all_met(_targets({"events": rows}))


def test_faults_without_a_file_selects_the_built_in_triangle_and_with_one_that_file():
    """README's `dcilab bench --faults` refused "." (argparse passed the empty const
    through the topology type), so the bench never ran without a file."""
    from dcilab.bench.faults import BUILT_IN
    from dcilab.cli import build_parser
    parser = build_parser(only="bench")
    assert parser.parse_args(["bench", "--faults", "--json"]).faults is BUILT_IN
    named = parser.parse_args(["bench", "--faults", "two-dc"]).faults
    assert named is not BUILT_IN and named.endswith("topologies/two-dc.yaml")
    assert parser.parse_args(["bench"]).faults is None


def test_an_elephant_under_a_tenth_of_its_share_is_stalled_and_misses_the_target():
    from dcilab.bench.faults import _stalled
    # A tester's gray failure: the sum read 103 % of the optimum, one of two flows at 0.
    by_flow = {"a-h1>b-h2": 6.95e6, "a-h2>b-h1": 0.0}
    assert _stalled(by_flow, [3.4e6, 3.4e6]) == ["a-h2>b-h1"]
    assert _stalled({"a-h1>b-h2": 6.95e6, "a-h2>b-h1": 0.87e6}, [3.4e6, 3.4e6]) == []
    assert _stalled(by_flow, [6.8e6, 0.0]) == []     # no share (no route left): not stalled
    rows = [_row("one wavelength cut", 0.4), _row("gray failure", 0.0),
            _row("flap every 500 ms", None)]
    assert _targets({"events": rows})["elephants_within_5pct_in_2s_met"]
    rows[1]["elephants_stalled"] = ["a-h2>b-h1"]
    t = _targets({"events": rows})
    assert t["elephants_stalled_after_2s"] == 1 and not t["elephants_within_5pct_in_2s_met"]


def test_a_plot_that_cannot_be_written_is_refused_before_the_run(tmp_path, capsys,
                                                                 monkeypatch):
    from dcilab.bench import faults
    from dcilab.cli import build_parser

    def no_emulation(*_args, **_kwargs):       # a regression must not start one here
        raise AssertionError("the run started")
    monkeypatch.setattr(faults, "run_mode", no_emulation)
    (tmp_path / "afile").write_text("")
    for plot, why in ((tmp_path / "nodir" / "f.png", "does not exist"),
                      (tmp_path / "f.jpg", "give a name ending .png"),
                      (tmp_path, "is a directory"),
                      (tmp_path / "afile" / "f.png", "afile is not a directory"),
                      ("/proc/f.png", "cannot write in /proc")):     # root may, elsewhere
        args = build_parser().parse_args(["bench", "--faults", "--plot", str(plot)])
        assert args.run(args) == 2
        assert why in capsys.readouterr().err
