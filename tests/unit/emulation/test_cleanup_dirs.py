"""`dcilab clean` removes only the temporary directories a run recorded and that are ours."""

from __future__ import annotations

import tempfile
from pathlib import Path

from dcilab.emulation.cleanup import Manifest, _our_dirs


def test_only_recorded_temporary_dcilab_directories_are_ours(tmp_path):
    with tempfile.TemporaryDirectory(prefix="dcilab-") as ours, \
            tempfile.TemporaryDirectory(prefix="other-") as stranger:
        nested = tmp_path / "dcilab-nested"
        nested.mkdir()
        gone = str(Path(tempfile.gettempdir()) / "dcilab-gone-already")
        manifest = Manifest(1, "f", dirs=[ours, stranger, str(nested), gone, "/", "/tmp"])
        assert _our_dirs(manifest) == [ours]
    assert _our_dirs(None) == []
