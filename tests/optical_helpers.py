"""A small fabric whose wavelengths have several modes (400ZR+), for the optical tests."""

from __future__ import annotations

from pathlib import Path

from dcilab.fabric import Fabric, load_fabric

ZRPLUS_FABRIC = """\
name: zrplus
scale: 1.0e-4
sites:
  - {name: dc1, spines: 1, leaves: 1, hosts_per_leaf: 1}
  - {name: dc2, spines: 1, leaves: 1, hosts_per_leaf: 1}
dci_links:
  - name: dc1-dc2
    a: dc1
    b: dc2
    fiber_km: 400        # 5 spans of 80 km: 400G with 2.9 dB OSNR above its 24 dB
    module: 400ZR+
    wavelengths: 2
"""


def zrplus_fabric(directory: Path) -> tuple[Fabric, Path]:
    path = Path(directory) / "zrplus.yaml"
    path.write_text(ZRPLUS_FABRIC)
    return load_fabric(path), path
