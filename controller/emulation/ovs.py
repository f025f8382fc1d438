"""Open vSwitch: make sure it runs (bridges choose their datapath, see datapath.py)."""

from __future__ import annotations

import shutil
import subprocess
import time

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
OVS_PIDFILE = "/var/run/openvswitch/ovs-vswitchd.pid"
START_WAIT_S = 10.0
# A switch retries its controller at doubling intervals up to max_backoff, OVS's default
# 8 s: refused while the controller restarted, it came back up to 8 s after the listener
# opened, past the controller's 3 s gather (an outside tester's: in 2 restarts of 6 a
# switch was programmed on its own). A try a second costs OVS and the controller nothing.
CONTROLLER_MAX_BACKOFF_MS = 1000


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
                          text=True, timeout=120)
    # Another program starting OVS at the same moment makes ours fail on its pid file's
    # lock while theirs comes up: wait a little for that before calling it a failure.
    deadline = time.monotonic() + START_WAIT_S
    while not ovs_running():
        if time.monotonic() > deadline:
            raise OvsError(f"could not start Open vSwitch (it was still not running "
                           f"{START_WAIT_S:g} s later; `{OVS_CTL} status` says what is "
                           f"missing):\n{done.stdout}{done.stderr}")
        time.sleep(0.5)


def shorten_backoff(bridges: list[str]) -> str | None:
    """Each bridge's controller connections retry at most CONTROLLER_MAX_BACKOFF_MS apart
    (two ovs-vsctl calls, whatever the number of bridges). None, or what went wrong: the
    switches then keep OVS's default."""
    if not bridges:
        return None
    listed = subprocess.run(["ovs-vsctl", "--timeout=10", "--bare", "--columns=controller",
                             "list", "Bridge", *bridges], capture_output=True, text=True,
                            timeout=60)
    if listed.returncode != 0:
        return listed.stderr.strip()[:300]
    command = ["ovs-vsctl", "--timeout=10"]
    for uuid in listed.stdout.split():
        command += ["--", "set", "Controller", uuid,
                    f"max_backoff={CONTROLLER_MAX_BACKOFF_MS}"]
    if len(command) == 2:
        return None
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return done.stderr.strip()[:300] if done.returncode != 0 else None


if __name__ == "__main__":  # `make setup` runs this: quiet when OVS already runs
    import sys
    try:
        ensure_ovs()
    except OvsError as exc:
        sys.exit(str(exc))
