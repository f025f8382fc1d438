"""The API's client commands load the wire and nothing of the controller: an outside
tester's `dcilab switches`, polled while a controller restarted, took 0.9 s of CPU a call
(its imports: numpy, os-ken, networkx, pydantic, the fabric's checks), and on a 2-core lab
that starved Open vSwitch's BFD, every wavelength down at once."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "scipy", "os_ken", "networkx", "pydantic", "gnpy", "dcilab.fabric.load",
         "dcilab.te.reservations", "dcilab.core", "dcilab.app", "dcilab.api.servicers",
         "dcilab.api.server")


def test_a_client_command_loads_nothing_of_the_controller():
    probe = ("import sys; from dcilab.cli import build_parser; build_parser('client'); "
             "import dcilab.cli.client, dcilab.emulation.cleanup; "
             f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == "[]", out
