"""The lab's controller process: one that dies under a lab says so, once, and is reaped
(a restart tester's lab kept its prompt, its commands going to a dead address, and the
dead controller stayed a zombie that `kill -0` took for alive)."""

from __future__ import annotations

import os
import signal
import socket
import threading
from unittest import mock

import pytest

from dcilab.api import convert
from dcilab.fabric import load_fabric
from dcilab.lab import ControllerProcess, ForeignController, Lab, PortTaken, foreign, free_port
from dcilab.resources import topology_path
from dcilab.sockets import free_ports, listener_of, listening_inodes, socket_fds


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


def test_a_port_a_stranger_takes_first_is_not_taken_for_the_controllers():
    """An outside tester's controller, on a port of its choosing, took the port a lab had
    just picked for its own: the lab saw the port accept, and pointed its switches at the
    stranger. Now the listener must be the child's; the lab starts it again elsewhere."""
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        taken = stranger.getsockname()[1]
        proc = ControllerProcess(topology_path("two-dc"), taken)
        try:
            with pytest.raises(PortTaken, match=f"port {taken}, picked for the controller"):
                proc.wait_listening(60)
        finally:
            proc.stop()
        said, first = [], [taken]

        def pick(count, besides=()):            # the stranger's port, picked first
            return [first.pop()] if first and count == 1 else free_ports(count, besides)

        with mock.patch("dcilab.lab.free_ports", side_effect=pick):
            again = ControllerProcess.listening(topology_path("two-dc"), timeout_s=60,
                                                say=said.append)
        try:
            assert again.port != taken
            assert listener_of(again.proc.pid, again.port) is True
            assert said == [f"port {taken}, picked for the controller, is another process's: "
                            f"starting the controller again on other ports"]
        finally:
            again.stop()


def test_ports_picked_together_are_distinct_and_none_of_those_given():
    """CI once gave a controller one port for OpenFlow and for metrics (each picked free
    on its own, its socket closed before the next pick): ports are picked together."""
    first = free_ports(64)
    assert len(set(first)) == 64
    assert not set(free_ports(64, besides=set(first))) & set(first)


def test_whose_listener_is_read_from_proc():
    assert listener_of(os.getpid(), free_port()) is None           # nobody listens
    with socket.socket() as mine:
        mine.bind(("127.0.0.1", 0))
        mine.listen()
        port = mine.getsockname()[1]
        assert listener_of(os.getpid(), port) is True
        assert listener_of(1, port) is False                       # init does not
        assert socket_fds(os.getpid())[os.fstat(mine.fileno()).st_ino] == mine.fileno()


def test_listening_inodes_reads_only_listening_sockets_of_the_port(tmp_path):
    table = tmp_path / "tcp"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
        "       0 111 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0 "
        "       0 222 1 0000000000000000 20 4 30 10 -1\n"
        "   2: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
        "       0 333 1 0000000000000000 100 0 0 10 0\n")
    assert listening_inodes(0x1F90, (str(table), str(tmp_path / "absent"))) == {111}
    assert listening_inodes(0x1F91, (str(table),)) == {333}


def test_a_lab_beside_a_controller_of_another_fabric_refuses_before_building():
    """An outside tester's `lab --controller`, its own controller dead on a port another
    tester's held, handed its 9 switches to that stranger's two-dc controller for a
    minute, saying only "6 of 12 switches not connected" (the stranger's count)."""
    two_dc = topology_path("two-dc")
    stranger = ControllerProcess.listening(topology_path("four-dc-ring"), timeout_s=60)
    try:
        lab = Lab(load_fabric(two_dc), two_dc, say=lambda _: None,
                  external=(("127.0.0.1", stranger.port), stranger.grpc_address))
        with pytest.raises(ForeignController,
                           match=f"the controller at {stranger.grpc_address} serves fabric "
                                 f"'four-dc-ring', not 'two-dc': start `dcilab controller "
                                 f"--topology {two_dc}` for this lab"):
            lab.start()
        assert lab.emulation is None                      # nothing built, nothing handed
    finally:
        stranger.stop()


def test_a_fabric_of_the_same_name_with_other_switches_is_foreign():
    fabric = load_fabric(topology_path("two-dc"))
    assert foreign(convert.fabric(fabric, {}), fabric) is None
    served = convert.fabric(fabric, {})
    served.switches[0].dpid += 1
    assert foreign(served, fabric) == (
        f"serves a fabric named 'two-dc' whose switches differ from this file's (first: "
        f"{served.switches[0].name}): another file of that name")
