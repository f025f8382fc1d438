"""Every name a command takes names one thing: a DCI link may not be called like another
link's wavelength, a switch or a host."""

from __future__ import annotations

import pytest

from dcilab.fabric import FabricError, parse_fabric

BASE = """
name: clash
scale: 1.0e-4
sites:
  - {name: x, spines: 1, leaves: 1, hosts_per_leaf: 2, gateways: 2}
  - {name: y, spines: 1, leaves: 1, hosts_per_leaf: 1}
dci_links:
  - {name: l, a: x, b: y, fiber_km: 40, module: 400ZR, wavelengths: 2}
"""


@pytest.mark.parametrize("name, message", [
    ("l.w1", "dci_links[1].name: name 'l.w1' is already the name of a wavelength of "
             "dci_links[0] ('l')"),
    ("l.w2", "is already the name of a wavelength of dci_links[0]"),
    ("x-h2", "dci_links[1].name: name 'x-h2' is already the name of a host of site 'x'"),
    ("x-gw2", "is already the name of a switch of site 'x'"),
    ("y-spine1", "is already the name of a switch of site 'y'"),
])
def test_a_link_named_like_another_thing_is_refused(name, message):
    text = BASE + f"  - {{name: {name}, a: x, b: y, fiber_km: 40, module: 400ZR, wavelengths: 1}}\n"
    with pytest.raises(FabricError) as caught:
        parse_fabric(text, "clash.yaml")
    assert message in str(caught.value)
    assert "clash.yaml:9:" in str(caught.value)


@pytest.mark.parametrize("name", ["l.w3", "x-h3", "x-gw3", "l-w1", "y-leaf2"])
def test_names_that_name_nothing_else_are_fine(name):
    text = BASE + f"  - {{name: {name}, a: x, b: y, fiber_km: 40, module: 400ZR, wavelengths: 1}}\n"
    fabric = parse_fabric(text, "clash.yaml")
    assert f"{name}.w1" in {link.name for link in fabric.wavelengths()}
