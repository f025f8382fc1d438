"""Traffic engineering: paths over the fabric, and (later) load-aware placement and admission."""

from .paths import PathEngine

__all__ = ["PathEngine"]
