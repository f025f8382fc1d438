"""The fabric file: its schema, its checks, and its expansion into switches, ports and links."""

from .errors import FabricError, FabricIssue
from .load import load_fabric, parse_fabric
from .model import Fabric, Host, Link, Switch, build_fabric
from .schema import DciLinkSpec, FabricSpec, SiteSpec

__all__ = [
    "DciLinkSpec", "Fabric", "FabricError", "FabricIssue", "FabricSpec", "Host", "Link",
    "SiteSpec", "Switch", "build_fabric", "load_fabric", "parse_fabric",
]
