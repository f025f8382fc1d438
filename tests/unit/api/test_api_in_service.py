"""`ListLinks`' `in_service`: a wavelength up but held down after a flap, or drained for a
mode change, is not in use (a re-tester's: only the core's snapshot said so, ListLinks
showed every up link in service, and `dcilab train` counted such wavelengths)."""

from __future__ import annotations

from pathlib import Path

from dcilab.api import convert
from dcilab.app.service import ControllerService
from dcilab.fabric import load_fabric

TWO_DC = Path(__file__).resolve().parents[3] / "topologies" / "two-dc.yaml"


def test_held_and_drained_wavelengths_are_up_but_not_in_service(tmp_path):
    service = ControllerService.standalone(load_fabric(TWO_DC), tmp_path / "state.db")
    try:
        core = service.core
        for name in core.fabric.switches:              # every switch heard from: links up
            core.load.sample(name, {}, 0.0)
        held, drained, plain = list(core.fabric.wavelengths())[:3]
        core.engine.set_held(held.name, True)
        core.engine.set_drained(drained.name, "changing mode 400G -> 300G")
        state = {(l.link, l.src): (l.up, l.in_service)     # as ListLinks sends them
                 for l in map(convert.link_load, service.link_loads())}
        for link, in_use in ((held, False), (drained, False), (plain, True)):
            for end in (link.a, link.b):
                assert state[(link.name, end.node)] == (True, in_use), link.name
    finally:
        service.close()
