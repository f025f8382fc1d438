"""Fabric -> Mininet Topo. A Topo is only a graph: building one touches no kernel state,
so this is unit-tested without root."""

from __future__ import annotations

from mininet.topo import Topo

from ..fabric import Fabric
from ..fabric.model import DCI, HOST, HTB_MIN_MBPS, MININET_MAX_MBPS, rounded, scaled_mbps
from .fibre import FibreLink, fibre_plan


class FabricTopo(Topo):
    """Switches, hosts and links exactly as the fabric file expands, with fixed port numbers
    and short interface names; each DCI wavelength is its own link.

    With `fibre` (the default), each wavelength's link runs through its line system's fibre
    namespace (see fibre.py): still one link between the same two gateway ports."""

    def build(self, fabric: Fabric, delay: bool = False,
              fibre: bool = True) -> None:  # noqa: D401 (Mininet API)
        plan = fibre_plan(fabric) if fibre else {}
        for sw in fabric.switches.values():
            self.addSwitch(sw.bridge, dpid=f"{sw.dpid:016x}", protocols="OpenFlow13")
        for host in fabric.hosts.values():
            self.addHost(host.node, ip=f"{host.ip}/{host.prefix_len}", mac=host.mac)
        for link in fabric.links:
            opts = {"bw": scaled_mbps(fabric, link.rate_gbps)}
            if delay and link.kind != HOST:
                opts["delay"] = f"{link.latency_ms * 1000:.3f}us"
            if link.kind == DCI and fibre:
                opts.update(cls=FibreLink, fibre=plan[link.name])
            b = fabric.switches[link.b.node]
            if link.kind == HOST:
                host = fabric.hosts[link.a.node]
                self.addLink(host.node, b.bridge, port1=0, port2=link.b.port,
                             intfName1=host.interface, intfName2=b.interface(link.b.port), **opts)
            else:
                a = fabric.switches[link.a.node]
                self.addLink(a.bridge, b.bridge, port1=link.a.port, port2=link.b.port,
                             intfName1=a.interface(link.a.port),
                             intfName2=b.interface(link.b.port), **opts)


def rate_problems(fabric: Fabric) -> list[str]:
    """Links whose scaled rate Mininet cannot shape (its htb limit is 1000 Mb/s; under
    `HTB_MIN_MBPS` htb shapes loosely), each kind said once, with the `scale` that would
    shape them all."""
    return _out_of_range(fabric, too_fast=True) + _out_of_range(fabric, too_fast=False)


def _out_of_range(fabric: Fabric, too_fast: bool) -> list[str]:
    if too_fast:
        out = sorted((link for link in fabric.links
                      if scaled_mbps(fabric, link.rate_gbps) > MININET_MAX_MBPS),
                     key=lambda link: (-link.rate_gbps, link.name))
    else:
        out = sorted((link for link in fabric.links
                      if scaled_mbps(fabric, link.rate_gbps) < HTB_MIN_MBPS),
                     key=lambda link: (link.rate_gbps, link.name))
    if not out:
        return []
    worst = out[0]
    names = ", ".join(link.name for link in out[:5]) + (
        f" and {len(out) - 5} more" if len(out) > 5 else "")
    rates = [link.rate_gbps for link in fabric.links]
    if too_fast:
        most = rounded(MININET_MAX_MBPS / (1000.0 * max(rates)), 3, up=False)
        return [f"{len(out)} link(s) too fast to emulate ({names}): "
                f"{worst.rate_gbps:g} Gb/s x scale {fabric.scale:g} = "
                f"{scaled_mbps(fabric, worst.rate_gbps):g} Mb/s exceeds Mininet's "
                f"{MININET_MAX_MBPS:g} Mb/s limit; set `scale` to at most {most:.3g}"]
    least = rounded(HTB_MIN_MBPS / (1000.0 * min(rates)), 3, up=True)
    return [f"{len(out)} link(s) too slow to emulate ({names}): "
            f"{worst.rate_gbps:g} Gb/s x scale {fabric.scale:g} = "
            f"{scaled_mbps(fabric, worst.rate_gbps):.3g} Mb/s is under the "
            f"{HTB_MIN_MBPS:g} Mb/s Linux's htb shapes faithfully; set `scale` to at least "
            f"{least:.3g}"]
