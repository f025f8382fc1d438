"""The committed generated code is what protoc makes of proto/ today, and proto/ passes
`buf lint` (STANDARD rules)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dcilab.api import gen

REPO = Path(__file__).resolve().parents[3]


def test_generated_code_is_current(tmp_path):
    fresh = gen.generate(tmp_path)          # grpc_tools.protoc, -I proto, imports fixed
    assert sorted(f.name for f in fresh) == sorted(
        f"{stem}{suffix}" for stem in ("fabric", "path") for suffix in gen.SUFFIXES)
    committed = gen.OUT_DIR
    stale = [f.name for f in fresh if (committed / f.name).read_bytes() != f.read_bytes()]
    if stale:
        from importlib.metadata import version
        header = (committed / "path_pb2_grpc.py").read_text()
        made_with = re.search(r"GRPC_GENERATED_VERSION = '([^']+)'", header)
        pytest.fail(f"stale generated code: {', '.join(stale)}; run "
                    f"`.venv/bin/python -m dcilab.api.gen` and commit the result "
                    f"(committed files were made with grpcio-tools "
                    f"{made_with.group(1) if made_with else '?'}, this is "
                    f"{version('grpcio-tools')})")
    extra = {p.name for p in committed.iterdir() if p.name.endswith(gen.SUFFIXES)} - {
        f.name for f in fresh}
    assert not extra, f"generated files without a .proto: {extra}"


def test_generated_code_imports_as_dcilab_api_v1():
    from dcilab.api.v1 import fabric_pb2_grpc, path_pb2, path_pb2_grpc
    assert path_pb2.DESCRIPTOR.name == "dcilab/v1/path.proto"
    assert path_pb2.DESCRIPTOR.package == "dcilab.v1"
    for module in (fabric_pb2_grpc, path_pb2_grpc):
        assert "from dcilab.v1 " not in Path(module.__file__).read_text()


def test_buf_lint():
    npx = shutil.which("npx")
    if npx is None:
        if os.environ.get("CI"):
            pytest.fail("npx is missing (Debian package npm); buf lint must run in CI")
        pytest.skip("npx is missing (Debian package npm)")
    if not (REPO / "node_modules" / ".bin" / "buf").exists():
        # buf is pinned in package-lock.json; this is all `npm ci` does.
        installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REPO,
                                   capture_output=True, text=True, timeout=600)
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stderr}"
    lint = subprocess.run([npx, "--offline", "buf", "lint"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert lint.returncode == 0, f"buf lint:\n{lint.stdout}{lint.stderr}"
