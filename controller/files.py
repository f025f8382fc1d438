"""What a path that should be a regular file is instead, and why an output path cannot
be written, in words.

Every input dcilab reads from a path (fabric and job files, TLS material, token files,
state files) is refused when it is not a regular file: a FIFO would block the read until
a writer comes, /dev/zero would never end it, a directory or /dev/null is no file of
ours. One list, so every refusal says it the same way.
"""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def not_regular(mode: int) -> str | None:
    """None for a regular file's `st_mode`; else what it is ("a FIFO (named pipe)")."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def unwritable(path: Path | None, option: str, source: str | None = None,
               png: bool = False, source_is: str = "the file being read") -> str | None:
    """Why `path` cannot be written, said before any work (None if it can be); the
    `source` file (a job being planned) is never overwritten; `png`: the name must not
    promise another format."""
    if path is None:
        return None
    path = Path(path)
    if png and path.suffix.lower() not in ("", ".png"):
        return f"{option} {path}: writes a PNG image; give a name ending .png"
    if path.is_dir():
        return f"{option} {path}: is a directory, not a file name"
    if (source and path.exists() and Path(source).exists()
            and path.resolve() == Path(source).resolve()):
        return f"{option} {path}: is {source_is}; give another name"
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        return f"{option} {path}: {parent} is not a directory"
    if not parent.is_dir():
        return f"{option} {path}: directory {parent} does not exist"
    # A trial file: as root, access() says yes to a read-only mount or to /proc.
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        return f"{option} {path}: cannot write in {parent} ({exc.strerror or exc})"
    return None
