"""Both repository topologies, end to end: real OVS, Mininet, os-ken and packets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time


from dcilab.emulation.traffic import iperf_concurrent, ping_all
from dcilab.fabric import load_fabric
from dcilab.fabric.model import scaled_mbps
from dcilab.lab import Lab

from conftest import TOPOLOGIES


def quiet(_msg: str) -> None:
    pass


def test_two_dc_pings_every_pair_and_fills_a_wavelength(no_leftovers):
    path = TOPOLOGIES / "two-dc.yaml"
    fabric = load_fabric(path)
    with Lab(fabric, path, say=quiet) as lab:
        pings = ping_all(lab.emulation)
        assert len(pings) == 8 * 7
        assert [p for p in pings if not p.ok] == []

        wavelength_mbps = scaled_mbps(fabric, 400)  # one 400ZR wavelength, scaled
        # A busy VM's scheduler stalls the sender now and then and the short wavelength
        # queue drains (a CI run measured 76 %, 34 Mb/s falling to 27): up to three
        # measurements, the best must fill the wavelength. A broken path fails all three.
        runs = []
        for _ in range(3):
            [result] = iperf_concurrent(lab.emulation, [("dc1-h1", "dc2-h3")], duration_s=4)
            assert result.error is None
            runs.append(result.bits_per_second / 1e6)
            # TCP goodput cannot exceed the shaped rate: proves the shaping is real.
            assert runs[-1] <= 1.02 * wavelength_mbps, runs
            if runs[-1] >= 0.8 * wavelength_mbps:
                break
        assert max(runs) >= 0.8 * wavelength_mbps, runs


def test_four_dc_ring_pings_every_pair(no_leftovers):
    path = TOPOLOGIES / "four-dc-ring.yaml"
    fabric = load_fabric(path)
    with Lab(fabric, path, say=quiet) as lab:
        pings = ping_all(lab.emulation)
        assert len(pings) == 16 * 15
        assert [p for p in pings if not p.ok] == []


def test_demo_command_end_to_end(no_leftovers):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dcilab", "demo", "--duration", "3"],
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert "56/56 pairs answered, 0.0% loss" in done.stdout
    assert "dc1 -> dc2" in done.stdout and "dc1-dc2-a.w" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert elapsed < 60, f"demo took {elapsed:.1f} s"


def test_kill_9_leaves_nothing_after_clean(tmp_path, no_leftovers):
    """A crashed run leaves bridges, interfaces, a fibre namespace and the controller's
    state directory; `dcilab clean` (or the next start) removes exactly those. Its
    processes end with it (the host shells at their stdin's end, the controller by
    PR_SET_PDEATHSIG), within about 0.2 s: seen alive or not, that race is not asserted
    (it failed a run in six once the controller stopped a little faster)."""
    script = tmp_path / "crash.py"
    script.write_text(
        "import sys, time\n"
        "from dcilab.fabric import load_fabric\n"
        "from dcilab.lab import Lab\n"
        f"path = {str(TOPOLOGIES / 'two-dc.yaml')!r}\n"
        "lab = Lab(load_fabric(path), path, say=lambda m: None)\n"
        "lab.start()\n"
        "print('UP', flush=True)\n"
        "time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "UP"
        # While the run goes on, clean refuses and names it (a user's live lab survives).
        busy = subprocess.run([sys.executable, "-m", "dcilab", "clean"], capture_output=True,
                              text=True, timeout=60)
        from dcilab.emulation.cleanup import our_bridges
        assert busy.returncode == 1 and f"pid {proc.pid}" in busy.stderr, busy
        assert len(our_bridges()) == 12
    finally:
        proc.kill()
        proc.wait()
    from dcilab.emulation.cleanup import leftovers
    left = leftovers()
    assert len(left["bridges"]) == 12 and left["namespaces"], left
    [state_dir] = left["directories"]
    assert os.path.exists(os.path.join(state_dir, "state.db")), state_dir
    done = subprocess.run([sys.executable, "-m", "dcilab", "clean"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "removed" in done.stdout


def test_controller_names_what_does_not_match(tmp_path):
    """Real os-ken, real OVS: a switch the file does not know, and one missing ports."""
    from dcilab.lab import ControllerProcess, free_port
    path = TOPOLOGIES / "two-dc.yaml"
    fabric = load_fabric(path)
    port = free_port()
    controller = ControllerProcess(path, port)
    known = fabric.switches["dc1-leaf1"]
    bridges = {"dl77sp1": 0x77, known.bridge: known.dpid}
    try:
        controller.wait_listening(60)
        for bridge, dpid in bridges.items():
            subprocess.run(
                ["ovs-vsctl", "add-br", bridge, "--", "set", "bridge", bridge,
                 "datapath_type=netdev", "protocols=OpenFlow13", "fail-mode=secure",
                 f"other-config:datapath-id={dpid:016x}"], check=True)
            subprocess.run(["ovs-vsctl", "set-controller", bridge, f"tcp:127.0.0.1:{port}"],
                           check=True)
        deadline = time.monotonic() + 20
        log = ""
        while time.monotonic() < deadline:
            log = "\n".join(controller.lines)
            if "no such switch" in log and "missing port(s)" in log:
                break
            time.sleep(0.2)
        # named with the address it came from (the bridge's connection to us)
        assert re.search(r"dpid 0x77 connected from 127\.0\.0\.1:\d+, but fabric 'two-dc' "
                         r"has no such switch", log), log
        assert "switch dc1-leaf1 does not match fabric 'two-dc': missing port(s) 1 (dc1-h1)" \
            in log, log
    finally:
        for bridge in bridges:
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", bridge])
        controller.stop()
