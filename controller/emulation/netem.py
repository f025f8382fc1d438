"""Is tc netem available? Many container kernels lack sch_netem; Mininet would then only log
an error per link and carry on, so ask once, on a veth pair of our own."""

from __future__ import annotations

import subprocess

from ..names import NAME_PREFIX

_PROBE = f"{NAME_PREFIX}netem0"


def netem_available() -> bool:
    def run(*cmd: str) -> bool:
        return subprocess.run(cmd, capture_output=True).returncode == 0

    if not run("ip", "link", "add", _PROBE, "type", "veth", "peer", "name", f"{_PROBE}b"):
        return False
    try:
        return run("tc", "qdisc", "add", "dev", _PROBE, "root", "netem", "delay", "1ms")
    finally:
        run("ip", "link", "del", _PROBE)
