"""The choice of Open vSwitch datapath (pure: the module's presence is an argument)."""

from __future__ import annotations

import pytest

from dcilab.cli import build_parser
from dcilab.emulation.datapath import (DatapathError, choose_datapath, kernel_module_loaded,
                                       needs_tx_offload_off)


@pytest.mark.parametrize("requested, loaded, chosen", [
    ("auto", True, "kernel"),
    ("auto", False, "user"),
    ("kernel", True, "kernel"),
    ("user", True, "user"),
    ("user", False, "user"),
])
def test_choice(requested, loaded, chosen):
    assert choose_datapath(requested, module_loaded=loaded) == chosen


def test_kernel_without_the_module_is_refused_with_what_to_do():
    with pytest.raises(DatapathError, match=r"openvswitch kernel module is not loaded.*"
                                            r"modprobe openvswitch.*--datapath user"):
        choose_datapath("kernel", module_loaded=False)


def test_unknown_datapath_is_named():
    with pytest.raises(DatapathError, match="'netdev'"):
        choose_datapath("netdev", module_loaded=True)


def test_tx_offload_is_turned_off_only_on_userspace():
    assert needs_tx_offload_off("user") and not needs_tx_offload_off("kernel")


def test_module_presence_is_read_from_sysfs(tmp_path):
    assert not kernel_module_loaded(tmp_path / "openvswitch")
    (tmp_path / "openvswitch").mkdir()
    assert kernel_module_loaded(tmp_path / "openvswitch")


@pytest.mark.parametrize("argv", [["demo"], ["bench", "--emulate", "two-dc"]])
def test_every_emulating_command_takes_datapath(argv):
    parser = build_parser()
    assert parser.parse_args(argv).datapath == "auto"
    assert parser.parse_args([*argv, "--datapath", "kernel"]).datapath == "kernel"
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--datapath", "netdev"])
