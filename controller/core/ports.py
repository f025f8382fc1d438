"""Compare the ports a switch reports with the ports the fabric file gives it."""

from __future__ import annotations

from ..fabric import Fabric

OFPP_MAX = 0xFFFFFF00  # ports above this are reserved (LOCAL, CONTROLLER, ...)


def port_problems(fabric: Fabric, switch: str, seen: dict[int, str]) -> list[str]:
    """Human-readable differences between `seen` (port number -> name) and the file."""
    sw = fabric.switches[switch]
    expected = {port: sw.interface(port) for port in fabric.ports(switch)}
    seen = {no: name for no, name in seen.items() if no < OFPP_MAX}
    problems = []
    missing = sorted(set(expected) - set(seen))
    if missing:
        problems.append("missing port(s) " + ", ".join(
            f"{p} ({fabric.ports(switch)[p].name})" for p in missing))
    extra = sorted(set(seen) - set(expected))
    if extra:
        problems.append("unexpected port(s) " + ", ".join(f"{p} ({seen[p]})" for p in extra))
    # Names are checked on a switch named as the emulation names it (`dl…`), where a wrong
    # name is a miswired port; a switch built by hand may name its ports as it likes (the
    # `dl…` names are the emulation's, which `dcilab clean` removes), matched by number.
    if any(name.startswith(sw.bridge) for name in seen.values()):
        for port in sorted(set(seen) & set(expected)):
            if seen[port] != expected[port]:
                problems.append(f"port {port} is named {seen[port]!r}, expected "
                                f"{expected[port]!r}")
    return problems
