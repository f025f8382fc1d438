"""What a path that should be a regular file is instead, in words.

Every input dcilab reads from a path (fabric and job files, TLS material, token files,
state files) is refused when it is not a regular file: a FIFO would block the read until
a writer comes, /dev/zero would never end it, a directory or /dev/null is no file of
ours. One list, so every refusal says it the same way.
"""

from __future__ import annotations

import stat

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def not_regular(mode: int) -> str | None:
    """None for a regular file's `st_mode`; else what it is ("a FIFO (named pipe)")."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")
