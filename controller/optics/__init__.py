"""Optics of DCI links: the ZR transceiver catalog, line-system QoT (GSNR and OSNR_ASE from
GNPy, dispersion, latency), mode selection and flexible-grid spectrum. Pure: no I/O but
reading GNPy's equipment file, no clock; GNPy's results are cached per line system.
"""

from .catalog import DEFAULT_CATALOG, MODULE_NAMES, Catalog, Mode, Module, OpticsError
from .line import AUTO, LineSystem
from .modes import check_mode, select_mode
from .plan import Channel, LinkPlan, plan_link
from .qot import QoT, line_qot

__all__ = [
    "AUTO",
    "Catalog",
    "Channel",
    "DEFAULT_CATALOG",
    "LineSystem",
    "LinkPlan",
    "MODULE_NAMES",
    "Mode",
    "Module",
    "OpticsError",
    "QoT",
    "check_mode",
    "line_qot",
    "plan_link",
    "select_mode",
]
