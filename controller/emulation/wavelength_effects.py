"""Apply a wavelength's optical condition to its emulated link: rate, packet loss, dark.

TO RECONCILE (lead): a stand-in for the fault work's fibre element (branch i10f), written
so optical dynamics can run before that lands. Once the fibre element is merged, `apply`
should keep only the rate change here (htb stays on the gateway ports there too) and call
its API for the rest: loss → `fibre.set_drops(ends, gray=False, loss_per_mille=N)` and
dark → `fibre.set_light(ends, end_a=not dark, end_b=not dark)` (carrier loss at both
gateways rather than ports set down), with `ends = fibre_plan(fabric)[wavelength]`. Those
rewrite the same chains as `dcilab fault gray/loss`, so the two sources of loss must be
combined there (e.g. the larger one wins) rather than overwrite each other.

- rate: the htb class Mininet put on both gateway ports (`tc class change ... 5:1`).
- loss: an nftables `netdev` table of ours with one egress chain per gateway port,
  `numgen random mod 1000 < N drop` (ENVIRONMENT.md: measured to drop as configured).
  Egress, because userspace OVS reads a port's packets from a packet socket before any
  ingress hook could drop them.
- dark: both gateway ports down, as when both receivers lose sync.
Only changes are applied; the table is removed by `close()` and by `dcilab clean`.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable

from ..fabric import Fabric
from ..fabric.model import scaled_mbps
from .cleanup import NFT_TABLE
from .optical_state import WavelengthEffect

log = logging.getLogger("dcilab.emulation")


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=10)


class WavelengthEffects:
    """Applies `WavelengthEffect`s to the gateway ports of each wavelength."""

    def __init__(self, fabric: Fabric, run: Callable = _run):
        self.fabric = fabric
        self.run = run
        self._ports = {}
        for link in fabric.wavelengths():
            self._ports[link.wavelength] = [fabric.switches[end.node].interface(end.port)
                                            for end in (link.a, link.b)]
        self._applied: dict[str, WavelengthEffect] = {}
        self._table = False

    def apply(self, wavelength: str, effect: WavelengthEffect) -> None:
        before = self._applied.get(wavelength)
        if before == effect:
            return
        ports = self._ports[wavelength]
        if before is None or before.rate_gbps != effect.rate_gbps:
            mbps = scaled_mbps(self.fabric, effect.rate_gbps)
            for port in ports:
                self._check(["tc", "class", "change", "dev", port, "parent", "5:0", "classid",
                             "5:1", "htb", "rate", f"{mbps:.6f}Mbit", "burst", "15k"])
        if (before.loss_per_mille if before else 0) != effect.loss_per_mille:
            self._set_loss(ports, effect.loss_per_mille)
        if (before.dark if before else False) != effect.dark:
            for port in ports:
                self._check(["ip", "link", "set", "dev", port, "down" if effect.dark else "up"])
        self._applied[wavelength] = effect
        (log.info if before is not None else log.debug)(
            "wavelength %s: %d Gb/s, %.1f %% loss%s", wavelength, effect.rate_gbps,
            effect.loss_per_mille / 10, ", dark" if effect.dark else "")

    def _set_loss(self, ports: list[str], per_mille: int) -> None:
        lines = []
        if not self._table:
            lines.append(f"add table netdev {NFT_TABLE}")
            self._table = True
        for port in ports:
            chain = f"egress_{port}"
            lines.append(f"add chain netdev {NFT_TABLE} {chain} {{ type filter hook egress "
                         f"device \"{port}\" priority 0; policy accept; }}")
            lines.append(f"flush chain netdev {NFT_TABLE} {chain}")
            if per_mille >= 1000:          # nft refuses `numgen ... < 1000` (out of range)
                lines.append(f"add rule netdev {NFT_TABLE} {chain} counter drop")
            elif per_mille > 0:
                lines.append(f"add rule netdev {NFT_TABLE} {chain} "
                             f"numgen random mod 1000 < {per_mille} counter drop")
        self._check(["nft", "-f", "-"], "\n".join(lines) + "\n")

    def _check(self, cmd: list[str], stdin: str | None = None) -> None:
        done = self.run(cmd, stdin)
        if done.returncode != 0:
            log.warning("%s failed: %s", " ".join(cmd), (done.stderr or "").strip())

    def close(self) -> None:
        """Remove our nftables table (ports and rates go with the emulation)."""
        if self._table:
            self.run(["nft", "delete", "table", "netdev", NFT_TABLE], None)
            self._table = False
        self._applied.clear()
