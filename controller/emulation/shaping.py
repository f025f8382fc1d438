"""Rate shaping of emulated links with htb, without htb's "quantum is big" warnings.

htb derives each class's quantum as rate / r2q (r2q defaults to 10), which at tens of
Mb/s exceeds the 200000-byte ceiling and makes tc warn once per interface. Choosing r2q
from the link's rate keeps the quantum between one MTU and that ceiling.
"""

from __future__ import annotations

import math

from mininet.link import Link, TCIntf

_QUANTUM_BYTES = 60_000


class ShapedIntf(TCIntf):
    _r2q = 10

    def config(self, bw=None, **params):
        if bw is not None:
            self._r2q = max(1, math.ceil(bw * 1e6 / 8 / _QUANTUM_BYTES))
        return super().config(bw=bw, **params)

    def tc(self, cmd, tc="tc"):
        return super().tc(cmd.replace("htb default 1", f"htb default 1 r2q {self._r2q}"), tc)


class ShapedLink(Link):
    """Mininet's TCLink with ShapedIntf on both ends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, cls1=ShapedIntf, cls2=ShapedIntf, **kwargs)
