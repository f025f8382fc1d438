"""The lab's controller process: one that dies under a lab says so, once, and is reaped
(a restart tester's lab kept its prompt, its commands going to a dead address, and the
dead controller stayed a zombie that `kill -0` took for alive)."""

from __future__ import annotations

import os
import signal
import threading

from dcilab.lab import ControllerProcess, free_port
from dcilab.resources import topology_path


def test_a_controller_that_dies_is_said_and_reaped_and_one_stopped_is_not_said():
    said, told = [], threading.Event()

    def on_exit(text):
        said.append(text)
        told.set()

    proc = ControllerProcess(topology_path("two-dc"), free_port(), on_exit=on_exit)
    try:
        proc.wait_listening(60)
        os.kill(proc.proc.pid, signal.SIGKILL)
        assert told.wait(30)
        assert said == [f"the controller (pid {proc.proc.pid}) exited, code -9: the "
                        f"switches keep their rules, but nothing answers reserve, links or a "
                        f"failure now; stop this run and start it again"]
        assert proc.proc.returncode == -9                 # reaped: no zombie
    finally:
        proc.stop()
    stopped = ControllerProcess(topology_path("two-dc"), free_port(), on_exit=on_exit)
    try:
        stopped.wait_listening(60)
    finally:
        stopped.stop()
    assert len(said) == 1                                  # a stop we made is not news
    # a clean stop ends with a line saying so (an ops tester's: "stopping", then nothing)
    assert stopped.proc.returncode == 0
    assert "stopped: the state file " in stopped.lines[-1], stopped.lines[-3:]
