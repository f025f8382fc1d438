"""Fibre element naming and nft scripts (pure: no namespace is created)."""

from __future__ import annotations

import pytest
from fabric_helpers import topology

from dcilab.emulation.cleanup import INTERFACE_RE, NAMESPACE_RE
from dcilab.emulation.fibre import chain_rules, chains_script, fibre_plan, namespaces
from dcilab.emulation.topo import FabricTopo


@pytest.mark.parametrize("name", ["two-dc", "four-dc-ring"])
def test_every_wavelength_has_unique_short_dl_names(name):
    fabric = topology(name)
    plan = fibre_plan(fabric)
    assert set(plan) == {w.name for w in fabric.wavelengths()}
    ends = [e for p in plan.values() for e in (p.end_a, p.end_b)]
    assert len(ends) == len(set(ends))
    for e in ends:
        assert e.startswith("dl") and len(e) <= 15, e
        # Middle ends live in the fibre namespace; even so they never look like a gateway
        # port or host interface that cleanup would take for something else.
        assert not INTERFACE_RE.match(e)
    for ns in namespaces(plan):
        assert NAMESPACE_RE.match(ns), ns
    # One namespace per line system.
    assert len(namespaces(plan)) == len(fabric.spec.dci_links)


def test_two_dc_names_by_hand():
    plan = fibre_plan(topology("two-dc"))
    w3 = plan["dc1-dc2-a.w3"]
    assert (w3.namespace, w3.end_a, w3.end_b, w3.chain_a, w3.chain_b) == (
        "dlfibre1", "dl1w3a", "dl1w3b", "w3a", "w3b")
    assert w3.end_of("dc1") == "dl1w3a" and w3.end_of("dc2") == "dl1w3b"
    with pytest.raises(ValueError, match="does not end at site 'dc3'"):
        w3.end_of("dc3")


def test_four_dc_ring_line_systems_by_file_order():
    fabric = topology("four-dc-ring")
    plan = fibre_plan(fabric)
    for i, dci in enumerate(fabric.spec.dci_links, start=1):
        first = plan[f"{dci.name}.w1"]
        assert first.namespace == f"dlfibre{i}"
        assert first.end_a == f"dl{i}w1a"
        assert (first.site_a, first.site_b) == (dci.a, dci.b)


def test_chain_rules_put_faults_before_the_forwarding():
    assert chain_rules("x", False, 0) == ['fwd to "x"']
    assert chain_rules("x", True, 0) == ["counter drop", 'fwd to "x"']
    assert chain_rules("x", False, 50) == ["numgen random mod 1000 < 50 counter drop",
                                           'fwd to "x"']
    assert chain_rules("x", True, 50)[0] == "counter drop"      # gray wins over loss
    assert chain_rules("x", False, 5000)[0].endswith("< 1000 counter drop")


def test_chains_script_rewrites_both_directions():
    w1 = fibre_plan(topology("two-dc"))["dc1-dc2-a.w1"]
    script = chains_script(w1, gray=True)
    lines = script.splitlines()
    assert lines == [
        "flush chain netdev dlfibre w1a",
        "add rule netdev dlfibre w1a counter drop",
        'add rule netdev dlfibre w1a fwd to "dl1w1b"',
        "flush chain netdev dlfibre w1b",
        "add rule netdev dlfibre w1b counter drop",
        'add rule netdev dlfibre w1b fwd to "dl1w1a"',
    ]
    created = chains_script(w1, create=True)
    assert 'hook ingress device "dl1w1a"' in created and 'hook ingress device "dl1w1b"' in created


def test_topology_keeps_gateway_ports_and_marks_wavelengths_for_the_fibre():
    fabric = topology("two-dc")
    topo = FabricTopo(fabric)
    dci = [i for _a, _b, i in topo.links(withInfo=True) if "fibre" in i]
    assert len(dci) == 4
    assert sorted((i["port1"], i["port2"]) for i in dci) == [(3, 3), (4, 4), (5, 5), (6, 6)]
    assert {i["fibre"].wavelength for i in dci} == {f"dc1-dc2-a.w{k}" for k in range(1, 5)}
    plain = FabricTopo(fabric, fibre=False)
    assert not any("fibre" in i for _a, _b, i in plain.links(withInfo=True))
