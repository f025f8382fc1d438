"""Regenerate the committed protobuf/gRPC code from proto/dcilab/v1/*.proto.

    .venv/bin/python -m dcilab.api.gen            # rewrite controller/api/v1/*_pb2*.py(i)
    .venv/bin/python -m dcilab.api.gen --check    # exit 1 if the committed files are stale

protoc runs with `-I proto`, so the files are registered as `dcilab/v1/<name>.proto` in
package `dcilab.v1` (what reflection and grpcurl show). Their Python imports would then be
`dcilab.v1`; this package lives at `dcilab.api.v1`, so those imports are rewritten.
The output depends on the grpcio-tools version: regenerate after upgrading it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

from ..resources import proto_dir

PROTO_ROOT = proto_dir()
PROTO_DIR = PROTO_ROOT / "dcilab" / "v1"
OUT_DIR = Path(str(files("dcilab.api.v1")))
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    """Run protoc into `out_dir`; return the generated files (imports already fixed)."""
    from grpc_tools import protoc
    import grpc_tools

    protos = sorted(PROTO_DIR.glob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        include = str(Path(grpc_tools.__file__).parent / "_proto")
        args = ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{include}",
                f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}",
                *(str(p.relative_to(PROTO_ROOT)) for p in protos)]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {', '.join(p.name for p in protos)}")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for src in sorted((Path(tmp) / "dcilab" / "v1").iterdir()):
            if not src.name.endswith(SUFFIXES):
                continue
            text = src.read_text().replace("from dcilab.v1 import ", "from dcilab.api.v1 import ")
            dst = out_dir / src.name
            dst.write_text(text)
            written.append(dst)
    return written


def stale_files(out_dir: Path = OUT_DIR) -> list[str]:
    """Names of generated files that differ from (or are missing in) `out_dir`."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = [f.name for f in fresh
                 if not (out_dir / f.name).exists()
                 or (out_dir / f.name).read_bytes() != f.read_bytes()]
        extra = sorted(p.name for p in out_dir.iterdir()
                       if p.name.endswith(SUFFIXES) and p.name not in {f.name for f in fresh})
    return stale + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dcilab.api.gen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="only report whether the committed files are current")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print(f"stale generated code in {OUT_DIR}: {', '.join(stale)}; "
                  f"run `python -m dcilab.api.gen`", file=sys.stderr)
            return 1
        print("generated code is current")
        return 0
    written = generate(OUT_DIR)
    for path in written:
        print(path)
    for old in sorted(OUT_DIR.iterdir()):          # code of a .proto that is gone
        if old.name.endswith(SUFFIXES) and old not in written:
            old.unlink()
            print(f"removed {old}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
