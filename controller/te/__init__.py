"""Traffic engineering: paths over the fabric, and (later) load-aware placement and admission."""

from .paths import LatencyGraph

__all__ = ["LatencyGraph"]
