"""The pure parts of fault injection: names, derived kernel state, conflicts, the book."""

from __future__ import annotations

import pytest
from fabric_helpers import topology

from dcilab.emulation.faults import (CUT, DARK, FLAP, GRAY, LOSS, SWITCH_DOWN, Fault,
                                     FaultBook, FaultInputError, WavelengthState,
                                     conflicts, optical_view, resolve_switch,
                                     resolve_wavelengths, restorable, switch_ports_down,
                                     wavelength_states)

LINK = "dc1-dc2-a"
W = [f"{LINK}.w{k}" for k in range(1, 5)]


@pytest.fixture(scope="module")
def fabric():
    return topology("two-dc")


def fault(kind, target, wavelengths, **kw):
    return Fault(kind, target, list(wavelengths), 0.0, **kw)


def test_a_link_stands_for_its_wavelengths(fabric):
    assert resolve_wavelengths(fabric, LINK) == W
    assert resolve_wavelengths(fabric, W[1]) == [W[1]]


def test_unknown_names_list_the_valid_ones(fabric):
    with pytest.raises(FaultInputError) as err:       # bad input: the CLI exits 2
        resolve_wavelengths(fabric, "dc1-dc3")
    assert "unknown link or wavelength 'dc1-dc3'" in str(err.value)
    assert "links: dc1-dc2-a" in str(err.value) and W[3] in str(err.value)
    with pytest.raises(FaultInputError, match=r"is a link: name one of its wavelengths"):
        resolve_wavelengths(fabric, LINK, links_allowed=False)
    with pytest.raises(FaultInputError, match=r"unknown switch 'dc1-gw9'; switches: .*dc1-gw1"):
        resolve_switch(fabric, "dc1-gw9")


def test_no_faults_all_lit(fabric):
    states = wavelength_states(fabric, [])
    assert set(states) == set(W)
    assert all(s == WavelengthState() for s in states.values())


def test_cut_dark_gray_loss_each_shape_their_wavelength(fabric):
    states = wavelength_states(fabric, [
        fault(CUT, W[0], [W[0]]),
        fault(DARK, W[1], [W[1]], end="dc2"),
        fault(GRAY, W[2], [W[2]]),
        fault(LOSS, W[3], [W[3]], loss_per_mille=20),
    ])
    assert states[W[0]] == WavelengthState(False, False)
    # A dark transceiver: the far receiver loses the signal, so both ends go dark.
    assert states[W[1]] == WavelengthState(False, False)
    assert states[W[2]] == WavelengthState(True, True, gray=True)
    assert states[W[3]] == WavelengthState(loss_per_mille=20)


def test_overlapping_faults_compose(fabric):
    faults = [fault(CUT, LINK, W), fault(GRAY, W[0], [W[0]])]
    assert wavelength_states(fabric, faults)[W[0]] == WavelengthState(False, False, gray=True)
    # Restoring the cut leaves the gray failure in force.
    assert wavelength_states(fabric, faults[1:])[W[0]] == WavelengthState(gray=True)


def test_gateway_down_darkens_its_wavelengths_spine_down_none(fabric):
    gw = fault(SWITCH_DOWN, "dc2-gw1", W)
    spine = fault(SWITCH_DOWN, "dc1-spine1", [])
    states = wavelength_states(fabric, [gw, spine])
    assert all(not s.light_a and not s.light_b for s in states.values())
    assert switch_ports_down([gw, spine]) == {"dc2-gw1", "dc1-spine1"}
    assert all(s == WavelengthState() for s in wavelength_states(fabric, [spine]).values())


def test_flaps_leave_the_light_to_their_process(fabric):
    states = wavelength_states(fabric, [fault(FLAP, W[0], [W[0]], period_s=1.0, pid=1)])
    assert states[W[0]] == WavelengthState()


def test_conflicts():
    cut = fault(CUT, W[0], [W[0]])
    assert "already has this fault" in conflicts(fault(CUT, W[0], [W[0]]), [cut])
    assert conflicts(fault(GRAY, W[0], [W[0]]), [cut]) is None
    assert conflicts(fault(CUT, LINK, W), [cut]) is None
    flap = fault(FLAP, LINK, W, period_s=1.0)
    assert "shares with nothing" in conflicts(flap, [cut])
    assert "restore dc1-dc2-a.w1 first" in conflicts(flap, [cut])
    assert "shares with nothing" in conflicts(fault(GRAY, W[3], [W[3]]), [flap])
    # A new loss figure replaces the old one rather than conflicting.
    assert conflicts(fault(LOSS, W[0], [W[0]]), [fault(LOSS, W[0], [W[0]])]) is None


def test_restore_a_link_takes_its_wavelengths_faults_too(fabric):
    active = [fault(CUT, LINK, W), fault(GRAY, W[0], [W[0]]), fault(DARK, W[1], [W[1]], end="dc1"),
              fault(SWITCH_DOWN, "dc1-spine1", [])]
    assert restorable(fabric, LINK, active) == active[:3]
    assert restorable(fabric, W[0], active) == [active[1]]
    assert restorable(fabric, W[1], active, kind=DARK) == [active[2]]
    assert restorable(fabric, W[1], active, kind=GRAY) == []
    assert restorable(fabric, "dc1-spine1", active) == [active[3]]


def test_book_keeps_faults_across_instances_and_forgets_another_run(tmp_path):
    path = tmp_path / "faults.json"
    book = FaultBook(path, run_stamp=1.0)
    with book.locked() as data:
        data["faults"].append(fault(GRAY, W[0], [W[0]]))
        data["processes"]["123"] = "tag"
    again = FaultBook(path, run_stamp=1.0)
    assert [f.target for f in again.faults()] == [W[0]]
    # The next emulation run starts with none.
    assert FaultBook(path, run_stamp=2.0).faults() == []


def test_describe_says_what_and_where():
    assert fault(DARK, W[0], [W[0]], end="dc2").describe() == f"{W[0]}: transceiver at dc2 dark"
    assert fault(LOSS, W[0], [W[0]], loss_per_mille=15).describe() == f"{W[0]}: 1.5 % loss"
    assert "every 0.5 s, 3 times (pid 7)" in fault(FLAP, LINK, W, period_s=0.5, count=3,
                                                  pid=7).describe()


def test_what_faults_do_to_the_transceivers_as_gnmi_shows_them(fabric):
    assert optical_view(fabric, []) == (set(), set())
    # A cut: no light either way, both lasers on.
    assert optical_view(fabric, [fault(CUT, W[0], W[:1])]) == ({W[0]}, set())
    # A dark transceiver at dc2: no light either way, dc2's laser off.
    assert optical_view(fabric, [fault(DARK, W[1], W[1:2], end="dc2")]) == \
        ({W[1]}, {(W[1], "dc2-gw1")})
    # A gateway down: every wavelength it ends, its lasers off.
    no_light, off = optical_view(fabric, [fault(SWITCH_DOWN, "dc1-gw1", W)])
    assert no_light == set(W) and off == {(w, "dc1-gw1") for w in W}
    # Gray and loss pass the light; a flap's phase is its process's.
    assert optical_view(fabric, [fault(GRAY, W[2], W[2:3]),
                                 fault(LOSS, W[3], W[3:], loss_per_mille=100),
                                 fault(FLAP, LINK, W, period_s=2.0)]) == (set(), set())
