"""`dcilab clean`: remove what a crashed emulation left (by our prefix and PIDs only)."""

from __future__ import annotations

from ..emulation.cleanup import clean


def register(sub) -> None:
    p = sub.add_parser("clean", help="remove bridges, interfaces and processes a crashed run left",
                       description="Remove every OVS bridge, interface and process that a dcilab "
                                   "emulation created and did not remove (found by the `dl` name "
                                   "prefix and the PIDs it recorded). Never touches anything else.")
    p.set_defaults(run=run)


def run(args) -> int:
    removed = clean()
    if not any(removed.values()):
        print("nothing of dcilab's is left to remove")
    return 0
