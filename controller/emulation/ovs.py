"""Open vSwitch: make sure it runs (bridges choose their datapath, see datapath.py)."""

from __future__ import annotations

import shutil
import subprocess

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
OVS_PIDFILE = "/var/run/openvswitch/ovs-vswitchd.pid"


class OvsError(RuntimeError):
    pass


def ovs_running() -> bool:
    if not shutil.which("ovs-vsctl"):
        return False
    probe = subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True)
    return probe.returncode == 0 and subprocess.run(
        [OVS_CTL, "status"], capture_output=True, text=True).stdout.count("is running") == 2


def ensure_ovs(say=print) -> None:
    """Start ovsdb-server and ovs-vswitchd unless both already run."""
    if ovs_running():
        return
    if not shutil.which("ovs-vsctl"):
        raise OvsError("Open vSwitch is not installed: run `make setup` (or apt-get install "
                       "openvswitch-switch)")
    say("starting Open vSwitch")
    # ovs-ctl warns that it cannot raise the file limit in a container; that is harmless.
    done = subprocess.run([OVS_CTL, "start", "--system-id=random"], capture_output=True,
                          text=True)
    if done.returncode != 0 or not ovs_running():
        raise OvsError(f"could not start Open vSwitch:\n{done.stdout}{done.stderr}")


if __name__ == "__main__":  # `make setup` runs this: quiet when OVS already runs
    import sys
    try:
        ensure_ovs()
    except OvsError as exc:
        sys.exit(str(exc))
