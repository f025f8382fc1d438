"""`dcilab bench --optical` counts mode changes, not the timeline's entries."""

from __future__ import annotations

from dcilab.bench.optical import mode_changes


def test_a_wavelength_that_kept_its_mode_changed_nothing():
    assert mode_changes([(0.0, "a.w1", "400G"), (0.0, "a.w2", "400G")]) == 0
    # 400G, dark while it changes, 300G: one change; the dark spell is not a mode
    assert mode_changes([(0.0, "a.w1", "400G"), (25.0, "a.w1", "changing"),
                         (30.0, "a.w1", "300G"), (0.0, "a.w2", "400G"),
                         (31.0, "a.w2", "changing"), (36.0, "a.w2", "400G")]) == 1
    assert mode_changes([(0, "w", "400G"), (1, "w", "300G"), (2, "w", "400G")]) == 2
