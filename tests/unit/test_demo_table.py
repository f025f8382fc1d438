"""The demo's table: flows the controller pinned are named where it pinned them; the rest
are read back from the byte counters, less what the pinned flows sent.

two-dc by hand: dc1-gw1 sends over dc1-dc2-a.w1..w4 by ports 3..6; the bytes are counted
where they arrive, at dc2-gw1's port of the same wavelength.
"""

from __future__ import annotations

from fabric_helpers import topology

from dcilab.cli.demo import _print_table
from dcilab.emulation.traffic import IperfResult

A = ("dc1-h1", "dc2-h1")
B = ("dc1-h2", "dc2-h2")
W = [f"dc1-dc2-a.w{i}" for i in (1, 2, 3, 4)]


def received(fabric, by_wavelength: dict[str, int]) -> dict[str, int]:
    """interface_rx_bytes() after a run: what each dc1 -> dc2 wavelength delivered."""
    out = {}
    for name, count in by_wavelength.items():
        link = fabric.link(name)
        far = link.b if link.a.node == "dc1-gw1" else link.a
        out[fabric.switches[far.node].interface(far.port)] = count
    return out


def rows(capsys) -> dict[str, str]:
    """hosts column -> wavelength column, and the notes under the table."""
    lines = capsys.readouterr().out.strip().splitlines()
    table = {}
    for line in lines[1:3]:
        cells = line.split("  ")
        cells = [c.strip() for c in cells if c.strip()]
        table[cells[1]] = cells[3]
    return table | {"notes": "\n".join(lines[3:])}


def run(capsys, pins):
    fabric = topology("two-dc")
    results = [IperfResult(*A, 30e6, 15_000_000, dst_port=5301),
               IperfResult(*B, 20e6, 10_000_000, dst_port=5302)]
    after = received(fabric, {W[2]: 15_000_000, W[0]: 10_000_000})
    _print_table(fabric, [A, B], results, {}, after, pins=pins)
    return rows(capsys)


def test_two_flows_over_one_line_system_from_counters_alone_are_marked(capsys):
    table = run(capsys, {})
    assert table["dc1-h1 > dc2-h1"] == f"{W[2]}?" and table["dc1-h2 > dc2-h2"] == f"{W[0]}?"
    assert table["notes"].startswith("?: several flows the controller had not pinned")


def test_a_pinned_flow_is_named_where_it_was_pinned_and_the_other_is_then_certain(capsys):
    table = run(capsys, {("dc1-h1", "dc2-h1", 5301): ((W[2], "dc1-gw1"),)})
    assert table["dc1-h1 > dc2-h1"] == W[2] and table["dc1-h2 > dc2-h2"] == W[0]
    assert table["notes"].startswith("(flows the controller pinned are shown where")


def test_a_pin_wins_over_the_counters(capsys):
    # Pinned to w4 (the pin moved after the bytes went by): the pin is what is shown, and
    # its bytes are taken off w4, so the unpinned flow still reads w1 (or w3), unmarked.
    table = run(capsys, {("dc1-h2", "dc2-h2", 5302): ((W[3], "dc1-gw1"),)})
    assert table["dc1-h2 > dc2-h2"] == W[3]
    assert table["dc1-h1 > dc2-h1"] == W[2]
    assert "?" not in table["notes"]
