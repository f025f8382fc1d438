"""BFD on the DCI ports, as a lab's routers would run it: the gray-failure detector.

A wavelength whose ports keep carrier but pass nothing (a gray failure) looks healthy to
carrier sensing. BFD notices: OVS then takes the port out of its groups (the port is no
longer live) and reports it in a PORT_STATUS without the LIVE bit, which the controller
treats as down. Measured on this userspace datapath (README, "How userspace OVS reacts to
failures"): 10 ms intervals are serviced unevenly by ovs-vswitchd's main loop, 30 ms
detects in ~80 ms, 100 ms in 250-320 ms. 100 ms is the default: within the 1 s target for
gray failures, and well clear of false alarms on a busy 2-core machine.
"""

from __future__ import annotations

import subprocess
import time

from ..fabric import Fabric

DEFAULT_INTERVAL_MS = 100


def dci_interfaces(fabric: Fabric) -> list[str]:
    """The gateway interface at each end of every wavelength."""
    return [fabric.switches[end.node].interface(end.port)
            for link in fabric.wavelengths() for end in (link.a, link.b)]


def interface_options(fabric: Fabric, interval_ms: int = DEFAULT_INTERVAL_MS) -> dict[str, str]:
    """`ovs-vsctl set interface` options turning BFD on, per DCI interface. Given when the
    bridges are created (`network.FabricSwitch`), so a wavelength is never seen live
    before its session is up: enabled afterwards, every live port would go down and up
    again under a connected controller, which would take each for a failure."""
    options = f"bfd:enable=true bfd:min_tx={interval_ms} bfd:min_rx={interval_ms}"
    return {intf: options for intf in dci_interfaces(fabric)}


def not_up(fabric: Fabric) -> list[str]:
    """DCI interfaces whose BFD session is not up (yet)."""
    wanted = set(dci_interfaces(fabric))
    out = subprocess.run(["ovs-vsctl", "--format=csv", "--data=bare", "--no-headings",
                          "--columns=name,bfd_status", "list", "interface"],
                         capture_output=True, text=True, timeout=30).stdout
    up = {line.split(",", 1)[0] for line in out.splitlines()
          if "state=up" in line and "forwarding=true" in line}
    return sorted(wanted - up)


def wait_up(fabric: Fabric, timeout_s: float = 20.0) -> list[str]:
    """Until every DCI session is up (BFD's slow start takes 1-3 s); returns those still
    down when `timeout_s` passes (a wavelength that is really cut, say)."""
    deadline = time.monotonic() + timeout_s
    down = not_up(fabric)
    while down and time.monotonic() < deadline:
        time.sleep(0.2)
        down = not_up(fabric)
    return down
