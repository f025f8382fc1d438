"""Mininet's own CLI on the emulated fabric, reachable by the fabric's names.

Mininet finds nodes by their Mininet names (dl1h1, dl1gw1); the fabric file's names
(dc1-h1, dc1-gw1) are added as aliases, and '-' is made part of a command word, so
`dc1-h1 ping dc2-h3`, `iperf dc1-h1 dc2-h1` and `link dc1-gw1 dc2-gw1 down` work as a
Mininet user types them. Extra commands (the lab's dcilab commands) are given as callables.
"""

from __future__ import annotations

import sys
from typing import Callable

from mininet.cli import CLI
from mininet.log import setLogLevel


def add_fabric_names(emulation) -> dict[str, str]:
    """Let Mininet find every host and switch by its fabric name too; return name -> node."""
    net, fabric = emulation.net, emulation.fabric
    names = {h.name: h.node for h in fabric.hosts.values()}
    names |= {s.name: s.bridge for s in fabric.switches.values()}
    for name, node in names.items():
        net.nameToNode.setdefault(name, net.nameToNode[node])
    return names


class FabricCLI(CLI):
    """mininet.cli.CLI with fabric names and `commands` (name -> function of the rest of
    the line, its docstring the help). An extra command overrides Mininet's of that name."""

    identchars = CLI.identchars + "-"          # dc1-h1 is one word, not `dc1` and `-h1`

    def __init__(self, emulation, commands: dict[str, Callable[[str], object]],
                 script: str | None = None, stdin=sys.stdin):
        self.extra = dict(commands)
        for name, function in self.extra.items():
            setattr(self, f"do_{name}", function)
        add_fabric_names(emulation)
        setLogLevel("output")     # the emulation runs at "warning", which hides CLI output
        try:
            super().__init__(emulation.net, stdin=stdin, script=script)
        finally:
            setLogLevel("warning")

    def get_names(self):
        # cmd.Cmd lists commands for `help` from the class; add the extra ones.
        return sorted(set(super().get_names()) | {f"do_{n}" for n in self.extra})
