"""`dcilab clean`: remove what a crashed emulation left (by our prefix and PIDs only)."""

from __future__ import annotations

import os
import sys

from ..emulation.cleanup import Manifest, clean, live_owner, stop_owner

# A run stopping removes its emulation (bridges, host shells, controller): seconds.
STOP_GRACE_S = 60.0


def register(sub) -> None:
    p = sub.add_parser("clean", help="remove bridges, interfaces and processes a crashed run left",
                       description="Remove every OVS bridge, interface and process that a dcilab "
                                   "emulation created and did not remove (found by the `dl` name "
                                   "prefix and the PIDs it recorded). Never touches anything else. "
                                   "Refuses while the run that made them is still going.")
    p.add_argument("--force", action="store_true",
                   help="stop the run that made them (SIGTERM: it removes what it made, "
                        "as on Ctrl-C), then remove whatever is left")
    p.set_defaults(run=run)


def run(args) -> int:
    if os.geteuid() != 0:
        # as another user it could remove nothing, and would say it had
        print("dcilab clean needs root (the emulation's bridges, namespaces and processes "
              "are root's)", file=sys.stderr)
        return 1
    manifest = Manifest.load()
    owner = live_owner(manifest)
    if owner and not args.force:
        print(f"a dcilab emulation of {manifest.fabric!r} is running (pid {owner}): stop it "
              f"(Ctrl-C or `exit` where it runs, or `kill {owner}`) and it removes what it "
              "made; `dcilab clean --force` stops it so", file=sys.stderr)
        return 1
    if owner:
        print(f"stopping the dcilab emulation of {manifest.fabric!r} (pid {owner})",
              flush=True)
        if not stop_owner(owner, grace_s=STOP_GRACE_S):
            print(f"pid {owner} did not stop within {STOP_GRACE_S:g} s: killed; removing "
                  "what it left", flush=True)
    removed = clean()
    if not any(removed.values()):
        print("nothing of dcilab's is left to remove")
    return 0
