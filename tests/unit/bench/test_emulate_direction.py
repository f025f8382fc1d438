"""`bench --emulate`: a wavelength's utilization is read in the flows' direction, whichever
way round its line system is written (a reviewer's, written from the far site, showed
only the ACKs: 0.0 on both of its wavelengths while they carried the flows)."""

from __future__ import annotations

from dcilab.bench.emulate import wavelength_utilization
from dcilab.fabric import parse_fabric
from dcilab.fabric.model import scaled_mbps

REV = """
name: rev
scale: 1.0e-4
sites:
  - {name: dc1, spines: 1, leaves: 1, hosts_per_leaf: 2}
  - {name: dc2, spines: 1, leaves: 1, hosts_per_leaf: 2}
dci_links:
  - {name: fwd, a: dc1, b: dc2, fiber_km: 80, module: 400ZR, wavelengths: 1}
  - {name: back, a: dc2, b: dc1, fiber_km: 80, module: 400ZR, wavelengths: 1}
"""


def test_utilization_is_read_leaving_the_source_site_on_either_way_round():
    fabric = parse_fabric(REV)
    waves = list(fabric.wavelengths())
    full = scaled_mbps(fabric, 400) * 1e6 / 8                   # bytes in one second
    delivered = {}
    for link in waves:
        for end in (link.a, link.b):
            from_dc2 = fabric.switches[end.node].site == "dc2"
            delivered[(end.node, end.port)] = full if from_dc2 else full / 100   # data, ACKs
    got = wavelength_utilization(fabric, waves, delivered, 1.0, "dc2")
    assert got == {"fwd.w1": 1.0, "back.w1": 1.0}
