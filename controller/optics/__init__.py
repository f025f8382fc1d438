"""Optics of DCI links: the ZR transceiver catalog, line-system QoT (OSNR, dispersion,
latency), mode selection and flexible-grid spectrum. Pure: no I/O, no clock, no mutable
globals.
"""

from .catalog import DEFAULT_CATALOG, MODULE_NAMES, Catalog, Mode, Module, OpticsError
from .line import LineSystem
from .modes import select_mode
from .plan import Channel, LinkPlan, plan_link

__all__ = [
    "Catalog",
    "Channel",
    "DEFAULT_CATALOG",
    "LineSystem",
    "LinkPlan",
    "MODULE_NAMES",
    "Mode",
    "Module",
    "OpticsError",
    "plan_link",
    "select_mode",
]
