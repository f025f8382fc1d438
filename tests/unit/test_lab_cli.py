"""`dcilab lab`: what can be checked without root (the prompt's parsing and wiring)."""

from __future__ import annotations

import pytest

from dcilab.cli import build_parser
from dcilab.cli.lab import LAB_COMMANDS, lab_command
from dcilab.emulation.console import FabricCLI


def test_fabric_host_names_are_one_command_word():
    cli = object.__new__(FabricCLI)      # parsing needs no network
    assert cli.parseline("dc1-h1 ping dc2-h3") == ("dc1-h1", "ping dc2-h3", "dc1-h1 ping dc2-h3")
    assert cli.parseline("pingall")[0] == "pingall"


def test_every_lab_command_is_a_dcilab_command_taking_its_server():
    parser = build_parser()
    for name, takes_server in LAB_COMMANDS.items():
        argv = [name, *(["--server", "127.0.0.1:1"] if takes_server else [])]
        if name == "reserve":
            argv += ["dc1-h1", "dc2-h1", "--gbps", "1"]
        if name == "release":
            argv += ["r-1"]
        if name == "fault":
            argv += ["list"]
        assert parser.parse_args(argv).command == name


def test_dcilab_before_a_lab_command_runs_it_and_names_the_others(capsys):
    from dcilab.cli.lab import dcilab_command
    command = dcilab_command("127.0.0.1:1")
    assert command("reserve --bogus") == 2          # reached reserve's own parser
    assert "the following arguments are required: SRC, DST, --gbps" in capsys.readouterr().err
    assert command("demo two-dc") == 2
    err = capsys.readouterr().err
    assert err.startswith("dcilab demo: not a command of this prompt; here: links, reserve, "
                          "release, reservations, elephants, switches, fault")


def test_a_bad_line_is_reported_not_raised(capsys):
    assert lab_command("reserve", "127.0.0.1:1")("--bogus") == 2
    assert "the following arguments are required: SRC, DST, --gbps" in capsys.readouterr().err
    lab_command("release", "127.0.0.1:1")('"unbalanced')
    assert "release: No closing quotation" in capsys.readouterr().err


def test_an_unreachable_controller_is_one_line(capsys):
    lab_command("reservations", "127.0.0.1:1")("--timeout 1")
    err = capsys.readouterr().err
    assert err.startswith("dcilab reservations: cannot reach dcilab controller at 127.0.0.1:1")


def test_bfd_is_on_by_default_in_demo_and_lab_and_can_be_turned_off(capsys):
    parser = build_parser()
    for command in ("demo", "lab"):
        assert parser.parse_args([command]).bfd == 100
        assert parser.parse_args([command, "--bfd", "30"]).bfd == 30
        assert parser.parse_args([command, "--no-bfd"]).bfd is None
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--bfd", "5"])
        assert "outside 10-10000 ms" in capsys.readouterr().err


def test_sigterm_while_mininet_writes_a_line_still_ends_the_lab():
    # Mininet's log handler turns any Exception raised while it writes into a logged
    # "Logging error": SIGTERM arriving then must still reach `dcilab lab`'s handler.
    import logging

    from mininet.log import StreamHandlerNoNewline

    from dcilab.cli.lab import _terminate, _Terminated

    class SignalledStream:
        def write(self, _text):
            _terminate()

        def flush(self):
            pass

    record = logging.LogRecord("mininet", logging.INFO, __file__, 1, "sleeping", None, None)
    with pytest.raises(_Terminated):
        StreamHandlerNoNewline(SignalledStream()).emit(record)


def test_failed_lines_are_kept_for_the_scripts_exit_status():
    from mininet.log import lg

    from dcilab.emulation.console import _ErrorSeen
    cli = object.__new__(FabricCLI)      # no network: only the commands' bookkeeping
    cli.failed, cli.mn, cli.lastcmd = [], {}, ""
    for name, status in (("good", 0), ("quiet", None), ("refused", 1)):
        setattr(cli, f"do_{name}", cli._counted(lambda line, s=status: s))
    errors = _ErrorSeen(cli)
    lg.addHandler(errors)
    try:
        for line in ("good", "quiet x", "refused a b", "no-such-command", "good"):
            assert cli.onecmd(line) is None       # nothing ends the loop
    finally:
        lg.removeHandler(errors)
    assert cli.failed == ["refused a b", "no-such-command"]     # Mininet's error counts


def test_a_scripts_exit_stops_it(tmp_path):
    """A newcomer's `exit` halfway through a `--script` file: Mininet's `source` ran the
    lines after it all the same."""
    cli = object.__new__(FabricCLI)      # no network: only the script's reading
    cli.failed, cli.mn, cli.lastcmd, ran = [], {}, "", []
    cli.do_note = cli._counted(lambda line: ran.append(line))
    script = tmp_path / "lab.txt"
    script.write_text("note one\nexit\nnote two\n")
    assert cli.do_source(str(script)) is True
    assert ran == ["one"] and cli.inputFile is None
    script.write_text("note three\n")
    assert cli.do_source(str(script)) is False and ran == ["one", "three"]


@pytest.mark.parametrize("make, said", [
    (lambda d: d, "it is a directory"),                       # os.access passed it
    (lambda d: d / "missing.txt", "no such file"),
])
def test_a_script_that_cannot_be_read_is_refused_before_anything_is_built(
        tmp_path, monkeypatch, capsys, make, said):
    from dcilab.cli import lab as cli_lab
    monkeypatch.setattr(cli_lab.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli_lab, "Lab", None)      # building one would be a TypeError
    args = build_parser().parse_args(["lab", "--script", str(make(tmp_path))])
    assert cli_lab.run(args) == 2
    assert said in capsys.readouterr().err


def test_a_ctrl_c_during_a_scripts_host_command_stops_the_script(tmp_path):
    """Mininet interrupts the host's command and goes on: a script interrupted halfway ran
    its other lines and exited 0 (a CLI auditor's)."""
    import os
    import select
    import signal
    import threading

    cli = object.__new__(FabricCLI)
    cli.failed, cli.mn, cli.lastcmd, ran = [], {}, "", []
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    cli.stdin = os.fdopen(stdin_r)
    cli.inPoller = select.poll()
    cli.inPoller.register(cli.stdin, select.POLLIN)

    class Host:                                  # a host whose command runs until Ctrl-C
        stdout, waiting = os.fdopen(out_r), True

        def sendInt(self):
            self.waiting = False
            os.write(out_w, b"^C\n")

        def monitor(self):
            return os.read(self.stdout.fileno(), 100).decode()

    def sleep_on_host(line):
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        cli.waitForNode(Host())
        ran.append(line)
    def watch(line):                             # as `links --watch`: Ctrl-C is "done"
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            threading.Event().wait(10)
        except KeyboardInterrupt:
            ran.append(line)
    cli.do_sleep = cli._counted(sleep_on_host)
    cli.do_watch = cli._counted(watch)
    cli.do_note = cli._counted(lambda line: ran.append(line))
    cli.script = str(tmp_path / "lab.txt")
    try:
        for interrupted_line in ("sleep 30", "watch links"):
            cli.interrupted, cli.failed, ran[:] = False, [], []
            (tmp_path / "lab.txt").write_text(f"note one\n{interrupted_line}\nnote two\n")
            assert cli.do_source(cli.script) is True        # stopped there
            assert ran == ["one", interrupted_line.split()[1]] and cli.interrupted
            assert cli.failed == [interrupted_line]
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        for fd in (stdin_w, out_w):
            os.close(fd)


def test_a_script_that_is_not_text_fails_in_one_line(tmp_path):
    cli = object.__new__(FabricCLI)
    cli.failed, cli.mn, cli.lastcmd = [], {}, ""
    script = tmp_path / "lab.txt"
    script.write_bytes(b"pingall\n\xff\xfe bad\n")
    cli.do_pingall = cli._counted(lambda line: None)
    assert cli.do_source(str(script)) is False
    assert cli.failed == [f"source {script}"]


def test_the_prompts_examples_name_hosts_of_the_fabric_in_two_sites(tmp_path):
    """An outside tester copied the prompt's `dc1-h1 ping -c3 dc2-h1` on a fabric of its
    own and got "Unknown command": the examples now take the loaded fabric's hosts."""
    from dcilab.cli.lab import _two_sites_hosts
    from dcilab.fabric import load_fabric
    from dcilab.resources import topology_path
    fabric = load_fabric(topology_path("four-dc-ring"))
    a, b = _two_sites_hosts(fabric)
    assert a in fabric.hosts and b in fabric.hosts
    assert fabric.hosts[a].site != fabric.hosts[b].site


def test_clean_and_an_emulated_bench_refuse_without_root(monkeypatch, capsys):
    """As another user `dcilab clean` removed nothing yet said it had."""
    from dcilab.bench import emulate
    from dcilab.cli import clean
    for module in (clean, emulate):
        monkeypatch.setattr(module.os, "geteuid", lambda: 1000)
    assert clean.run(build_parser().parse_args(["clean"])) == 1
    assert "dcilab clean needs root" in capsys.readouterr().err
    args = build_parser().parse_args(["bench", "--emulate", "two-dc"])
    assert args.run(args) == 1
    assert "needs root" in capsys.readouterr().err
