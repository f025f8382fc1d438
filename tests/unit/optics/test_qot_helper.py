"""The GNPy helper process `dcilab plan` starts: its figures are this process's, it carries
on here when the helper dies, and it ends with its parent. Run in fresh interpreters,
since the helper is only started from a process with one thread and GNPy not loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

JOBS = Path(__file__).resolve().parents[3] / "jobs"

SCRIPT = r"""
import json, os, sys
from dcilab import qot_helper
from dcilab.optics import _gnpy
from dcilab.optics import DEFAULT_CATALOG, LineSystem, line_qot
from dcilab.optics.qot import clear_cache

assert qot_helper.start()
assert not qot_helper.start()                   # one helper
helper = _gnpy.delegate.process
module = DEFAULT_CATALOG.module("400ZR")
mode = module.modes[0]

def qot(km):
    return line_qot(LineSystem(fiber_km=km), module, mode, 4)

there = [qot(km) for km in (80, 240)]
assert "gnpy" not in sys.modules                 # computed in the helper, not here
os.kill(helper.pid, 9); helper.join(5)
clear_cache()                                    # QoTs are cached per line: ask again
after = qot(80)                                  # the helper is gone: computed here
assert _gnpy.delegate is None and "gnpy" in sys.modules
clear_cache()
here = [qot(km) for km in (80, 240)]
print(json.dumps([repr(a) == repr(b) for a, b in zip(there + [after], here + here[:1])]))
"""

# A parent that starts a helper, says its pid, and exits (or is killed when told "kill").
ENDS = r"""
import os, sys
from dcilab import qot_helper
from dcilab.optics import _gnpy
qot_helper.start()
print(_gnpy.delegate.process.pid, flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), 9)
"""


def test_the_helper_gives_this_process_figures_and_is_replaced_when_it_dies():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == [True, True, True]


def test_the_helper_ends_with_its_parent_however_that_ends():
    for how in ("exit", "kill"):
        out = subprocess.run([sys.executable, "-c", ENDS, how], capture_output=True,
                             text=True, timeout=60)
        pid = int(out.stdout.split()[0])
        deadline = time.monotonic() + 30
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)               # killed, the parent leaves the helper an end of file
        assert not _running(pid), how


def _running(pid: int) -> bool:
    try:                                   # an orphan's zombie waits for init: ended too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_plan_with_its_helper_prints_what_planning_here_prints(capsys):
    job = str(JOBS / "25b-data-3dc-400zr.yaml")
    out = subprocess.run([sys.executable, "-m", "dcilab", "plan", job, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    from dcilab.cli import main                  # in this process: no helper (threads, GNPy)
    assert main(["plan", job, "--json"]) == 0
    assert json.loads(out.stdout) == json.loads(capsys.readouterr().out)


# A helper lost before its first answer, or an exchange broken off by Ctrl-C: the figures
# come from this process, never another request's answer, and `dcilab`'s default SIGPIPE
# (restored for `| head`) does not kill it writing to a dead helper.
LOST = r"""
import json, os, signal, sys, time
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
from dcilab import qot_helper
from dcilab.optics import _gnpy
from dcilab.optics import DEFAULT_CATALOG, LineSystem, line_qot
from dcilab.optics.qot import clear_cache

module = DEFAULT_CATALOG.module("400ZR")
def qot(km):
    return line_qot(LineSystem(fiber_km=km), module, module.modes[0], 4)

assert qot_helper.start()
if sys.argv[1] == "killed":
    helper = _gnpy.delegate.process
    os.kill(helper.pid, 9); helper.join(5)           # dead before the first request
    got = [qot(80), qot(240)]
else:                                                # Ctrl-C while the answer is awaited
    def interrupt(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)        # the helper is still importing GNPy
    try:
        qot(80)
        raise SystemExit("not interrupted")
    except KeyboardInterrupt:
        pass
    got = [qot(240), qot(80)][::-1]
assert _gnpy.delegate is None
clear_cache()
print(json.dumps([repr(a) == repr(b) for a, b in zip(got, [qot(80), qot(240)])]))
"""


def test_a_helper_lost_or_interrupted_is_dropped_and_the_figures_stay_right():
    for how in ("killed", "interrupted"):
        out = subprocess.run([sys.executable, "-c", LOST, how], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, (how, out.returncode, out.stderr[-2000:])
        assert json.loads(out.stdout) == [True, True], how
