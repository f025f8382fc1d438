"""Which Open vSwitch datapath the emulation uses: the kernel's where it has one.

The kernel datapath (the `openvswitch` module, what a Mininet VM has) forwards in the
kernel and needs nothing special. The userspace datapath (`datapath_type=netdev`, the
only one on machines without the module) forwards in ovs-vswitchd, costs far more CPU per
packet, and drops TCP segments whose checksum the host left to offload, so host TX
offload is turned off there.
"""

from __future__ import annotations

from pathlib import Path

AUTO, KERNEL, USER = "auto", "kernel", "user"
DATAPATHS = (AUTO, KERNEL, USER)
KERNEL_MODULE = Path("/sys/module/openvswitch")

HELP = ("Open vSwitch datapath: kernel (the openvswitch module; fast), user (userspace, "
        "netdev; slow, needs host TX offload off) or auto (kernel where the module is "
        "loaded, else user; default)")


class DatapathError(ValueError):
    pass


def kernel_module_loaded(module: Path = KERNEL_MODULE) -> bool:
    return module.exists()


def choose_datapath(requested: str, module_loaded: bool) -> str:
    """The datapath to build (`kernel` or `user`) for `--datapath requested`."""
    if requested == AUTO:
        return KERNEL if module_loaded else USER
    if requested == KERNEL and not module_loaded:
        raise DatapathError(
            f"--datapath kernel: the openvswitch kernel module is not loaded ({KERNEL_MODULE} "
            "is missing); load it with `modprobe openvswitch`, or use --datapath user")
    if requested not in (KERNEL, USER):
        raise DatapathError(f"--datapath {requested!r}: expected one of {', '.join(DATAPATHS)}")
    return requested


def needs_tx_offload_off(datapath: str) -> bool:
    """Userspace OVS drops TCP segments with offloaded checksums (ping works without it)."""
    return datapath == USER
