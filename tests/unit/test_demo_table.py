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
    results = [IperfResult(*A, 30e6, 15_000_000, src_port=41001, dst_port=5301),
               IperfResult(*B, 20e6, 10_000_000, src_port=41002, dst_port=5302)]
    after = received(fabric, {W[2]: 15_000_000, W[0]: 10_000_000})
    _print_table(fabric, [A, B], results, {}, after, pins=pins)
    return rows(capsys)


def test_two_flows_over_one_line_system_from_counters_alone_are_marked(capsys):
    table = run(capsys, {})
    assert table["dc1-h1 > dc2-h1"] == f"{W[2]}?" and table["dc1-h2 > dc2-h2"] == f"{W[0]}?"
    assert table["notes"].startswith("?: read from byte counters, and other flows crossed")


def test_a_pinned_flow_is_named_where_it_was_pinned_and_the_other_keeps_its_mark(capsys):
    table = run(capsys, {("dc1-h1", 41001, "dc2-h1", 5301): [((W[2], "dc1-gw1"),)]})
    assert table["dc1-h1 > dc2-h1"] == W[2]
    # What a pinned flow sent before its pin went elsewhere: the counters still cannot
    # vouch for the other flow over the same line system.
    assert table["dc1-h2 > dc2-h2"] == f"{W[0]}?"
    assert "(flows the controller named are shown where" in table["notes"]


def test_a_pin_of_another_flow_of_the_same_hosts_is_not_taken_for_this_one(capsys):
    table = run(capsys, {("dc1-h1", 40999, "dc2-h1", 5301): [((W[3], "dc1-gw1"),)]})
    assert table["dc1-h1 > dc2-h1"] == f"{W[2]}?"


def test_a_pin_wins_over_the_counters(capsys):
    # Pinned to w4 (the pin moved after the bytes went by): the pin is what is shown, and
    # its bytes are taken off w4; the unpinned flow is read from the counters, marked.
    table = run(capsys, {("dc1-h2", 41002, "dc2-h2", 5302): [((W[3], "dc1-gw1"),)]})
    assert table["dc1-h2 > dc2-h2"] == W[3]
    assert table["dc1-h1 > dc2-h1"] == f"{W[2]}?"


def test_bytes_a_pinned_flow_sent_before_its_pin_do_not_vouch_for_another(capsys):
    """A reviewer's case: B sent 2 MB hashed onto w1, then 8 MB pinned on w4; A, never
    pinned, sent 2 MB on w3. The counters may name w1 for A: never without its mark."""
    fabric = topology("two-dc")
    results = [IperfResult(*A, 4e6, 2_000_000, src_port=41001, dst_port=5301),
               IperfResult(*B, 16e6, 10_000_000, src_port=41002, dst_port=5302)]
    after = received(fabric, {W[2]: 2_000_000, W[0]: 2_000_000, W[3]: 8_000_000})
    _print_table(fabric, [A, B], results, {}, after,
                 pins={("dc1-h2", 41002, "dc2-h2", 5302): [((W[3], "dc1-gw1"),)]})
    table = rows(capsys)
    assert table["dc1-h2 > dc2-h2"] == W[3]
    assert table["dc1-h1 > dc2-h1"].endswith("?")


def test_a_flow_moved_mid_run_names_where_it_was_pinned_before(capsys):
    """A re-tester's four-dc-ring flow took w2 for most of its bytes, then moved to w3:
    the table named w3 alone."""
    table = run(capsys, {("dc1-h1", 41001, "dc2-h1", 5301): [((W[1], "dc1-gw1"),),
                                                            ((W[2], "dc1-gw1"),)]})
    assert table["dc1-h1 > dc2-h1"] == f"{W[2]} (moved from {W[1]})"
