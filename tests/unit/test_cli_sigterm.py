"""SIGTERM stops every dcilab command as Ctrl-C does, so what it built is removed:
`timeout`, `dcilab clean --force` and systemd stop with it (`train` left its emulation,
bridges and sync agents behind)."""

from __future__ import annotations

import signal
import subprocess
import sys

COMMAND = """
import sys, time
import dcilab.cli.check as check

def run(args):                      # a command at work, with cleanup to do
    try:
        print("working", flush=True)    # inside: the signal may come at once
        time.sleep(60)
    finally:
        print("cleaned up", flush=True)

check.run = run
sys.argv = ["dcilab", "check", "two-dc"]
from dcilab.cli import main
sys.exit(main())
"""


def test_sigterm_unwinds_a_command_and_exits_143():
    proc = subprocess.Popen([sys.executable, "-c", COMMAND], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "working\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143                     # 128 + SIGTERM
    assert out == "cleaned up\n"
    assert err.strip().endswith("terminated")
