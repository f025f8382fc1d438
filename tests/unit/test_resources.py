"""The files the commands read are found through the package, not through the source tree."""

from __future__ import annotations

from pathlib import Path

from dcilab.resources import (bundled_jobs, bundled_topologies, deploy_dir, job_arg,
                              jobs_dir, proto_dir, topology_arg, topology_path, topologies_dir)


def test_bundled_topologies_are_found_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert {"two-dc", "four-dc-ring"} <= set(bundled_topologies())
    for name in ("two-dc", "two-dc.yaml", "topologies/two-dc.yaml"):
        path = topology_path(name)
        assert path.is_file() and path.parent == topologies_dir(), name


def test_a_path_that_exists_wins_over_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "two-dc").write_text("name: mine\n")
    assert topology_path("two-dc") == Path("two-dc")
    own = tmp_path / "elsewhere.yaml"
    own.write_text("name: x\n")
    assert topology_path(own) == own


def test_an_unknown_name_is_returned_unchanged_for_its_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert topology_arg("no-such-fabric") == "no-such-fabric"
    assert topology_path("other/two-dc.yaml") == Path("other/two-dc.yaml")
    assert topology_path("two-dc.yml") == Path("two-dc.yml")


def test_deploy_and_proto_files_ship_with_the_package():
    assert (deploy_dir() / "prometheus" / "rules.yml").is_file()
    assert len(list((deploy_dir() / "grafana" / "dashboards").glob("*.json"))) >= 4
    assert sorted(p.name for p in (proto_dir() / "dcilab" / "v1").glob("*.proto"))


def test_bundled_jobs_are_found_by_name_and_only_jobs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert {"10b-data-2dc", "300b-data-16dc"} <= set(bundled_jobs())
    for name in ("10b-data-2dc", "10b-data-2dc.yaml", "jobs/10b-data-2dc.yaml"):
        assert Path(job_arg(name)) == jobs_dir() / "10b-data-2dc.yaml", name
    assert job_arg("two-dc") == "two-dc" and job_arg("topologies/two-dc.yaml") == \
        "topologies/two-dc.yaml"


def test_every_command_that_reads_a_fabric_names_the_bundled_ones_when_it_is_missing(
        tmp_path, monkeypatch, capsys):
    from dcilab.cli import main
    monkeypatch.chdir(tmp_path)
    commands = [["check", "nosuch"], ["controller", "--topology", "nosuch"],
                ["bench", "--emulate", "nosuch"], ["bench", "--faults", "nosuch"],
                ["bench", "--optical", "nosuch"], ["train", "nosuch", "--job", "10b-data-2dc"]]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "nosuch: cannot read" in err, argv
        assert "fabrics shipped with dcilab: four-dc-ring, two-dc" in err, argv
    (tmp_path / "mine.yaml").write_text("name: [\n")
    assert main(["check", "mine.yaml"]) == 2
    assert "shipped with dcilab" not in capsys.readouterr().err    # it is there, just bad


def test_the_controller_refuses_two_listeners_on_one_port(capsys):
    """An outside tester gave --grpc and --openflow one port: the controller started, and
    switches pointed there never connected (gRPC answered them)."""
    from dcilab.cli import main
    for argv, said in (
            (["--openflow", "127.0.0.1:16654", "--grpc", "127.0.0.1:16654"],
             "--openflow 127.0.0.1:16654 and --grpc 127.0.0.1:16654"),
            (["--metrics", "0.0.0.0:16655", "--grpc", "127.0.0.1:16655"],
             "--grpc 127.0.0.1:16655 and --metrics 0.0.0.0:16655"),
            (["--openflow", "127.0.0.1:16656", "--grpc", "localhost:16656"],
             "--openflow 127.0.0.1:16656 and --grpc localhost:16656")):
        assert main(["controller", "--topology", "two-dc", *argv]) == 2
        assert f"dcilab controller: {said} are one listening address: give each its own " \
            "port" in capsys.readouterr().err


def test_serving_commands_survive_a_closed_peer_and_reports_end_quietly_in_a_pipe():
    """SIGPIPE's default action ends `dcilab check | head` quietly, but killed the
    controller when it wrote to a switch connection that had just closed."""
    import signal

    from dcilab.cli import main
    before = signal.getsignal(signal.SIGPIPE)
    try:
        assert main(["controller", "--topology", "nosuch"]) == 2
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
        assert main(["check", "two-dc"]) == 0
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGPIPE, before)


def test_cpu_lists_are_read_as_taskset_reads_them_and_link_kinds_shown_plainly(capsys):
    import argparse

    import pytest

    from dcilab.cli import main
    from dcilab.cli.controller import cpu_list
    assert cpu_list("0") == {0} and cpu_list("0-0") == {0}
    for bad in ("0-", "1-0", "-1", "a"):
        with pytest.raises(argparse.ArgumentTypeError, match="a range low to high"):
            cpu_list(bad)
    with pytest.raises(SystemExit):
        main(["links", "--kind", "wavelength"])
    assert "(choose from 'host', 'fabric', 'dci')" in capsys.readouterr().err


def test_listen_addresses_take_ipv6_in_brackets(capsys):
    """An outside tester's `--grpc [::1]:50051` was refused (and `--grpc ::1:50051` would
    be ambiguous: ::1 port 50051, or ::1:50051 with no port)."""
    import argparse

    import pytest

    from dcilab.addresses import address_text
    from dcilab.cli import main
    from dcilab.addresses import host_port
    assert host_port("[::1]:6653") == ("::1", 6653)
    assert host_port("[fe80::1%eth0]:9108") == ("fe80::1%eth0", 9108)
    assert host_port("127.0.0.1:6653") == ("127.0.0.1", 6653)
    assert address_text("::1", 6653) == "[::1]:6653"
    assert address_text("127.0.0.1", 6653) == "127.0.0.1:6653"
    with pytest.raises(argparse.ArgumentTypeError, match=r"in brackets, as \[::1\]:6653"):
        host_port("::1:6653")
    for bad in ("[]:6653", "[::1:6653", "::1]:6653", "[::1]:", "[::1]:70000"):
        with pytest.raises(argparse.ArgumentTypeError):
            host_port(bad)
    assert main(["controller", "--topology", "two-dc", "--grpc", "[::]:16657",
                 "--metrics", "127.0.0.1:16657"]) == 2
    assert "--grpc [::]:16657 and --metrics 127.0.0.1:16657 are one listening address" \
        in capsys.readouterr().err


def test_a_listen_address_in_use_is_said_as_the_controller_and_exits_2(capsys):
    import socket

    from dcilab.cli import main
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        # the other listeners on free ports: an emulation on this machine may hold 6653
        assert main(["controller", "--topology", "two-dc", "--grpc", f"127.0.0.1:{port}",
                     "--openflow", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]) == 2
    assert (f"dcilab controller: cannot listen for gRPC on 127.0.0.1:{port}: Address already "
            f"in use") in capsys.readouterr().err
