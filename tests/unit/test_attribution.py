"""attribute(): which wavelength each measured flow took, from hand-made byte counters.

Ports by hand: a gateway has its spines on 1..S, then one port per wavelength in file
order. In four-dc-ring.yaml north-gw1 carries north-east-a.w1..w4 on 3..6; east-gw1
carries north-east-a on 3..6 and east-south.w1..w2 on 7..8; south-gw2 carries
south-west.w1..w4 on 3..6. In two-dc.yaml dc1-gw1 carries dc1-dc2-a.w1..w4 on 3..6.
"""

from __future__ import annotations

import pytest
from fabric_helpers import topology

from dcilab.te.attribution import MeasuredFlow, attribute, dci_stages
from dcilab.te.paths import PathEngine

MB = 1_000_000


@pytest.fixture(scope="module")
def ring():
    return PathEngine(topology("four-dc-ring"))


@pytest.fixture(scope="module")
def two_dc():
    return PathEngine(topology("two-dc"))


def crossings(result):
    return [[(c.switch, c.port, c.link.name) for c in flow] for flow in result]


def test_one_flow_per_line_system_is_exact(ring):
    flows = [
        MeasuredFlow("north-leaf1", "east-leaf2", 40 * MB),        # north-east-a
        MeasuredFlow("east-leaf1", "south-leaf1", 25 * MB),        # east-south
        MeasuredFlow("south-leaf2", "west-campus-leaf1", 7 * MB),  # south-west
    ]
    tx = {
        ("north-gw1", 5): 40 * MB + 1200,   # w3, plus a little ARP/LLDP-sized noise
        ("north-gw1", 3): 800,
        ("east-gw1", 8): 25 * MB,           # east-south.w2
        ("east-gw1", 7): 300,
        ("south-gw2", 6): 7 * MB + 64,      # south-west.w4
        ("south-gw2", 4): 64,
    }
    assert crossings(attribute(ring, flows, tx)) == [
        [("north-gw1", 5, "north-east-a.w3")],
        [("east-gw1", 8, "east-south.w2")],
        [("south-gw2", 6, "south-west.w4")],
    ]


def test_reverse_direction_is_read_on_the_other_gateway(two_dc):
    flows = [MeasuredFlow("dc2-leaf2", "dc1-leaf1", 9 * MB)]
    # The dc1 side also sent bytes (the ACKs) on w1: they must not be confused with it.
    tx = {("dc1-gw1", 3): 20 * MB, ("dc2-gw1", 4): 9 * MB}
    assert crossings(attribute(two_dc, flows, tx)) == [[("dc2-gw1", 4, "dc1-dc2-a.w2")]]


def test_two_flows_of_different_sizes_on_one_line_system(two_dc):
    small = MeasuredFlow("dc1-leaf2", "dc2-leaf2", 3 * MB)
    big = MeasuredFlow("dc1-leaf1", "dc2-leaf1", 10 * MB)
    tx = {("dc1-gw1", 3): 0, ("dc1-gw1", 4): 10 * MB, ("dc1-gw1", 5): 5000,
          ("dc1-gw1", 6): 3 * MB}
    # Results come back in the order the flows were given.
    assert crossings(attribute(two_dc, [small, big], tx)) == [
        [("dc1-gw1", 6, "dc1-dc2-a.w4")],
        [("dc1-gw1", 4, "dc1-dc2-a.w2")],
    ]


def test_two_flows_sharing_a_wavelength_both_land_on_it(two_dc):
    a = MeasuredFlow("dc1-leaf1", "dc2-leaf1", 6 * MB)
    b = MeasuredFlow("dc1-leaf2", "dc2-leaf2", 4 * MB)
    tx = {("dc1-gw1", 5): 10 * MB}
    assert crossings(attribute(two_dc, [a, b], tx)) == [
        [("dc1-gw1", 5, "dc1-dc2-a.w3")],
        [("dc1-gw1", 5, "dc1-dc2-a.w3")],
    ]


def test_two_hop_flow_gets_one_crossing_per_dci_hop(ring):
    flow = MeasuredFlow("north-leaf2", "south-leaf1", 12 * MB)
    tx = {("north-gw1", 4): 12 * MB, ("east-gw1", 7): 12 * MB}
    assert crossings(attribute(ring, [flow], tx)) == [[
        ("north-gw1", 4, "north-east-a.w2"),
        ("east-gw1", 7, "east-south.w1"),
    ]]


def test_three_hop_flow_gets_one_crossing_per_dci_hop(ring):
    # north -> west-campus goes via east and south (415 km) rather than direct (900 km).
    flow = MeasuredFlow("north-leaf1", "west-campus-leaf1", 8 * MB)
    tx = {("north-gw1", 6): 8 * MB,    # north-east-a.w4
          ("east-gw1", 8): 8 * MB,     # east-south.w2
          ("south-gw2", 5): 8 * MB}    # south-west.w3
    assert crossings(attribute(ring, [flow], tx)) == [[
        ("north-gw1", 6, "north-east-a.w4"),
        ("east-gw1", 8, "east-south.w2"),
        ("south-gw2", 5, "south-west.w3"),
    ]]


def test_dci_stages_list_every_wavelength_of_each_hop(ring):
    stages = dci_stages(ring, "north-leaf1", "west-campus-leaf1")
    assert [sorted(c.link.name for c in stage) for stage in stages] == [
        [f"north-east-a.w{k}" for k in range(1, 5)],
        ["east-south.w1", "east-south.w2"],
        [f"south-west.w{k}" for k in range(1, 5)],
    ]


def test_flow_within_a_site_crosses_nothing(two_dc):
    flow = MeasuredFlow("dc1-leaf1", "dc1-leaf2", 5 * MB)
    assert attribute(two_dc, [flow], {("dc1-gw1", 3): 5 * MB}) == [[]]


def test_a_flow_pinned_to_a_longer_route_mid_run_shows_it(ring):
    """A new user's demo table named the hashed wavelengths (the shortest way) for flows
    the controller had pinned onto a longer route: with the routes it may pin to, the way
    that carried most of the flow's bytes is shown."""
    from dcilab.te.attribution import route_stages
    from dcilab.te.placement import Candidates
    routes = Candidates(ring.fabric, engine=ring).routes("north", "west-campus")
    pinned = next(r for r in routes if r.hops[0].line_system == "north-east-b")
    alternatives = [route_stages(ring, r.hops) for r in routes]
    way = [stage[0] for stage in route_stages(ring, pinned.hops)]
    flow = MeasuredFlow("north-leaf1", "west-campus-leaf1", 10 * MB)
    tx = {("north-gw1", 6): 3 * MB, ("east-gw1", 8): 3 * MB, ("south-gw2", 5): 3 * MB}
    for c in way:
        tx[(c.switch, c.port)] = tx.get((c.switch, c.port), 0) + 7 * MB
    assert crossings(attribute(ring, [flow], tx, [alternatives])) == crossings([way])
    # Without the alternatives, only the hashed shortest way could be named.
    assert crossings(attribute(ring, [flow], tx))[0][0][2].startswith("north-east-a")
