"""Every metric the controller exports is in the README's metrics table."""

from __future__ import annotations

from pathlib import Path

from dcilab.metrics import names

README = Path(__file__).resolve().parents[3] / "README.md"


def test_every_exported_metric_is_documented():
    readme = README.read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `dcilab_"))
    exported = [v for k, v in vars(names).items()
                if k.isupper() and isinstance(v, str) and v.startswith("dcilab_")]
    assert len(exported) > 30
    # The table abbreviates a row's siblings: `dcilab_wavelength_osnr_db`, `…_margin_db`.
    missing = [n for n in exported if n not in table and
               "…" + n.removeprefix("dcilab_wavelength") not in table]
    assert not missing, f"README's metrics table lacks {missing}"
