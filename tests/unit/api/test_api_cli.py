"""`dcilab reserve | release | reservations | links` against a real server: results,
one-line refusals and an unreachable server, never a traceback."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
import socket
import time

import pytest
from api_helpers import make_pki

from dcilab.api.server import TlsConfig
from dcilab.cli import client as cli


def dcilab(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="dcilab")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    args = parser.parse_args(argv)
    return args.run(args)


@pytest.fixture
def at(port):
    return ["--server", f"127.0.0.1:{port}"]


def test_reserve_list_release(at, capsys):
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "36", "--duration", "60",
                  "--request-id", "job-1", *at) == 0
    out = capsys.readouterr().out
    assert out.startswith("reserved r-") and "PENDING: dc1-h1 -> dc2-h1, 36 Gb/s" in out
    assert "[dc1-dc2.w1]" in out and "expires" in out
    rid = out.split()[1]
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "36", "--duration", "60",
                  "--request-id", "job-1", "--json", *at) == 0
    assert json.loads(capsys.readouterr().out)["reservation_id"] == rid
    assert dcilab("reservations", *at) == 0
    assert capsys.readouterr().out.startswith(f"{rid} PENDING")
    assert dcilab("release", rid, *at) == 0
    assert capsys.readouterr().out.startswith(f"released {rid} RELEASED")
    # The request_id retried once its reservation ended: nothing is held, so not
    # "reserved" and not 0 (the first booking, ended, shown on stderr; --json gives it).
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "36", "--duration", "60",
                  "--request-id", "job-1", *at) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("not reserved: --request-id job-1 was booked before, "
                                   "and that reservation has ended") and \
        f"\n{rid} RELEASED" in captured.err
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "36", "--duration", "60",
                  "--request-id", "job-1", "--json", *at) == 1
    assert json.loads(capsys.readouterr().out)["state"] == "RESERVATION_STATE_RELEASED"
    for state in ("pending", "PENDING"):
        assert dcilab("reservations", "--state", state, *at) == 0
        assert capsys.readouterr().out == "no reservations in state pending\n"
    assert dcilab("reservations", *at) == 0            # live ones by default
    assert capsys.readouterr().out == "no reservations live (--all: ended ones too)\n"
    assert dcilab("reservations", "--all", "--json", *at) == 0
    [res] = json.loads(capsys.readouterr().out)["reservations"]
    assert res["state"] == "RESERVATION_STATE_RELEASED"


def test_one_reservation_by_its_id(at, capsys):
    """A new user's `dcilab reservations r-...` was an unknown argument: it shows that one
    reservation, live or ended; a listing's option beside it is bad usage."""
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "36", *at) == 0
    rid = capsys.readouterr().out.split()[1]
    assert dcilab("reserve", "dc1-h2", "dc2-h2", "--gbps", "10", *at) == 0
    capsys.readouterr()
    assert dcilab("reservations", rid, *at) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{rid} PENDING: dc1-h1 -> dc2-h1, 36 Gb/s") and "dc1-h2" not in out
    assert "  path: dc1-h1 > " in out
    assert dcilab("release", rid, *at) == 0
    capsys.readouterr()
    assert dcilab("reservations", rid, "--json", *at) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "RESERVATION_STATE_RELEASED"
    assert dcilab("reservations", "r-000000000000", *at) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    for listing in (["--all"], ["--state", "active"], ["--page-size", "5"]):
        assert dcilab("reservations", rid, *listing, *at) == 2
        assert f"{listing[0]} lists reservations; an ID shows one" in capsys.readouterr().err
    assert dcilab("reservations", "", *at) == 2            # not every reservation
    assert "an empty ID" in capsys.readouterr().err


def test_a_reserve_cut_short_names_its_request_id_for_the_retry(service, at, capsys):
    with service.lock:                        # busy past the command's deadline
        assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "1", "--timeout", "0.3",
                      *at) == 1
    err = capsys.readouterr().err
    assert "it may have been booked: the same command with --request-id cli-" in err
    request_id = err.split("--request-id ")[1].split()[0]
    for _ in range(2):                         # the retry books it, once
        assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "1", "--request-id",
                      request_id, "--json", *at) == 0
        assert json.loads(capsys.readouterr().out)["request_id"] == request_id
    assert len(service.list()) == 1


def test_refusal_is_one_line_with_the_servers_message(at, capsys):
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "500", *at) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("dcilab reserve: refused (FAILED_PRECONDITION): "
                                   "bandwidth_gbps 500: a reservation takes one path")
    assert dcilab("release", "r-nope", "--json", *at) == 1
    assert json.loads(capsys.readouterr().out) == {
        "ok": False, "code": "NOT_FOUND", "message": "no reservation 'r-nope'"}
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "-1", *at) == 1
    assert "refused (INVALID_ARGUMENT): bandwidth_gbps must be at least" in capsys.readouterr().err


def test_unreachable_server(capsys):
    with socket.socket() as s:                     # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert dcilab("reservations", "--server", f"127.0.0.1:{free}", "--timeout", "3") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dcilab reservations: cannot reach dcilab controller at "
                          f"127.0.0.1:{free}: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unreachable_with_no_server_given_and_no_lab_says_what_to_start(capsys, monkeypatch):
    import dcilab.cli.client as client_cli
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    monkeypatch.setattr(client_cli, "running_server", lambda: None)      # no demo or lab
    monkeypatch.setattr(client_cli, "DEFAULT_SERVER", f"127.0.0.1:{free}")
    assert dcilab("links", "--timeout", "3") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dcilab links: cannot reach dcilab controller at 127.0.0.1:{free}: ")
    assert err.rstrip().endswith("no dcilab demo or lab runs on this machine: start one "
                                 "(`dcilab lab`, as root) or `dcilab controller`, or give "
                                 "--server ADDRESS"), err


def test_a_server_taken_from_a_running_emulation_is_named(capsys, monkeypatch):
    """A new user's commands went to another user's lab on the machine without a word."""
    import subprocess

    import dcilab.cli.client as client_cli
    from dcilab.emulation import cleanup
    owner = subprocess.Popen(["sleep", "30"])
    try:
        manifest = cleanup.Manifest(owner.pid, "two-dc", services={"grpc": "127.0.0.1:1"},
                                    fabric_path="/tmp/x/two-dc.yaml")
        monkeypatch.setattr(client_cli.Manifest, "load", staticmethod(lambda: manifest))
        assert client_cli.running_server() == "127.0.0.1:1"
    finally:
        owner.kill()
        owner.wait()
    assert capsys.readouterr().err == (
        f"dcilab: the controller of emulation two-dc (/tmp/x/two-dc.yaml, pid {owner.pid}) "
        f"at 127.0.0.1:1; --server picks another\n")


def test_links(at, capsys, service):
    assert dcilab("links", "--kind", "dci", *at) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[1].split()[:4] == ["dc1-dc2.w1", "dc1-gw1", "dc2-gw1", "400"]
    # down (no switch connected): no margin, since the plan's would call it healthy
    assert lines[0].split()[-4:] == ["up", "mode", "margin", "dB"]
    assert lines[1].split()[-2:] == ["no", "400G"]
    # up: the margin in the mode it runs, the plan's until a gNMI reader reports one
    for name in service.fabric.switches:
        service.core.load.sample(name, {}, 1.0)                  # statistics came back
    [wave] = [l for l in service.fabric.wavelengths() if l.wavelength == "dc1-dc2.w1"]
    assert dcilab("links", "--kind", "dci", *at) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[-3:] == ["yes", "400G", f"{wave.channel.margin_db:.2f}"]
    service.reported_margins = lambda: {"dc1-dc2.w1": 0.4}
    assert dcilab("links", "--kind", "dci", "--json", *at) == 0
    [reported] = {l["margin_db"] for l in json.loads(capsys.readouterr().out)["link_loads"]}
    assert reported == 0.4
    assert dcilab("links", "--kind", "fabric", "--json", *at) == 0
    assert all("margin_db" not in l for l in json.loads(capsys.readouterr().out)["link_loads"])
    assert dcilab("links", "--json", "--site", "dc1", *at) == 0
    loads = json.loads(capsys.readouterr().out)["link_loads"]
    assert loads and all("dc1" in (l["site_a"], l["site_b"]) for l in loads)


def test_links_watch_prints_until_interrupted(at, capsys, monkeypatch):
    seen = []
    real_print = print

    def stop_after_three(*args, **kwargs):
        real_print(*args, **kwargs)
        if args and str(args[0]).startswith("{"):
            seen.append(args[0])
            if len(seen) == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr("builtins.print", stop_after_three)
    assert dcilab("links", "--watch", "--interval", "0.1", "--kind", "dci", "--json", *at) == 0
    assert [len(json.loads(s)["link_loads"]) for s in seen] == [2, 2, 2]


def test_elephants_watch_asks_every_interval_until_interrupted(at, capsys, monkeypatch):
    seen = []
    real_print = print

    def stop_after_three(*args, **kwargs):
        real_print(*args, **kwargs)
        if args and str(args[0]).startswith("{"):
            seen.append((time.monotonic(), args[0]))
            if len(seen) == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr("builtins.print", stop_after_three)
    assert dcilab("elephants", "--watch", "--interval", "0.2", "--json", *at) == 0
    answers = [json.loads(s) for _, s in seen]
    # each with the time it was asked, as `links --json --watch` (a steering tester's)
    times = [datetime.fromisoformat(a.pop("time").replace("Z", "+00:00")) for a in answers]
    assert answers == [{"policy": "loadaware", "elephants": []}] * 3
    assert times == sorted(times) and (times[2] - times[0]).total_seconds() >= 0.4 - 0.01
    # paced, not a busy loop; printed when each answer came (a slow first answer, on a
    # busy machine, brings the prints closer together than the asks)
    assert seen[2][0] - seen[0][0] >= 0.2


def test_token_and_tls_flags(serve, tmp_path, capsys):
    pki = make_pki(tmp_path)
    (tmp_path / "token").write_text("abc\n")
    port = serve(tls=TlsConfig.from_files(pki.server_cert, pki.server_key, pki.ca), token="abc")
    tls = ["--server", f"127.0.0.1:{port}", "--tls-ca", str(pki.ca),
           "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "1", *tls) == 1
    assert "refused (UNAUTHENTICATED)" in capsys.readouterr().err
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "1", "--token-file",
                  str(tmp_path / "token"), *tls) == 0
    capsys.readouterr()
    assert dcilab("reservations", "--token-file", str(tmp_path / "missing"), *tls) == 2
    assert "cannot read token file" in capsys.readouterr().err
    assert dcilab("reservations", "--tls-cert", str(pki.client_cert), *tls[:4]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, said", [
    ("--server", "127.0.0.1:70000", "expected HOST:PORT with a port from 1 to 65535"),
    ("--server", "", "expected HOST:PORT with a port from 1 to 65535"),
    # read as hosts never reached, "it may have been booked" (a hostile tester's)
    ("--server", "http://127.0.0.1:50051", "expected HOST:PORT without a scheme"),
    ("--server", "[::1:50051", "an IPv6 address goes in brackets"),
    ("--server", "a b:50051", "expected HOST:PORT, got 'a b:50051'"),
    ("--server", "dns:50051", "is a gRPC target scheme"),
    ("--timeout", "inf", "must be seconds over 0, at most 86400"),
    ("--timeout", "-1", "must be seconds over 0, at most 86400"),
])
def test_connection_options_out_of_range_are_usage_errors(capsys, option, value, said):
    with pytest.raises(SystemExit) as exit_:
        dcilab("links", option, value)
    assert exit_.value.code == 2 and said in capsys.readouterr().err


def test_an_expired_client_certificate_is_named_before_connecting(tmp_path, capsys):
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    pki = make_pki(tmp_path, client_valid=(now - datetime.timedelta(days=3),
                                           now - datetime.timedelta(days=1)))
    assert dcilab("links", "--server", "127.0.0.1:1", "--tls-ca", str(pki.ca), "--tls-cert",
                  str(pki.client_cert), "--tls-key", str(pki.client_key)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dcilab links: --tls-cert {pki.client_cert} expired on ")
    assert "the server would refuse it (certificate has expired); renew it" in err


def test_a_file_that_is_not_a_certificate_is_named_before_connecting(tmp_path, capsys):
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    assert dcilab("links", "--server", "127.0.0.1:1", "--tls-ca", str(junk)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dcilab links: --tls-ca {junk} is not a PEM CA certificate") \
        and err.count("\n") == 1


@pytest.mark.parametrize("size", ["-1", "1001", "x"])
def test_a_page_size_the_server_would_refuse_or_cap_is_refused_here(size, capsys):
    with pytest.raises(SystemExit) as exit_:
        dcilab("reservations", "--page-size", size)
    assert exit_.value.code == 2 and "--page-size" in capsys.readouterr().err


def test_a_listing_cut_short_says_so_on_stderr(serve, service, capsys):
    """Pages print as they come; when the read budget stops the listing within --timeout,
    stderr says how much was printed (stdout alone would be a silently short list)."""
    from dcilab.api.servicers import ReadBudget
    from dcilab.te.reservations import ReservationRequest
    for i in (1, 2, 3):
        service.reserve(ReservationRequest(f"dc1-h{i}", f"dc2-h{i}", 1))
    port = serve(read_budget=ReadBudget(per_client=0.5, total=0.5))
    assert dcilab("reservations", "--page-size", "1", "--timeout", "1",
                  "--server", f"127.0.0.1:{port}") == 1
    captured = capsys.readouterr()
    printed = sum(line.startswith("r-") for line in captured.out.splitlines())
    assert 1 <= printed < 3
    assert f"the listing is incomplete: it stopped after {printed} reservation(s)" \
        in captured.err
    assert "refused (RESOURCE_EXHAUSTED)" in captured.err


def test_a_protected_reservation_without_its_standby_says_so():
    from dcilab.api.v1 import path_pb2 as ppb
    from dcilab.cli.client import _describe
    hops = [ppb.ReservedHop(switch="fra-leaf1", out_port=3, link="l1"),
            ppb.ReservedHop(switch="fra-gw1", out_port=5, link="fra-ams.w1",
                            wavelength="fra-ams.w1"),
            ppb.ReservedHop(switch="ams-leaf1", out_port=1, link="ams-h1")]
    res = ppb.Reservation(reservation_id="r-1", state=ppb.RESERVATION_STATE_ACTIVE,
                          src_host="fra-h1", dst_host="ams-h1", bandwidth_gbps=50,
                          protection=ppb.PROTECTION_PROTECTED, hops=hops)
    assert "\n  standby: none: a failure or an edit of the fabric took it" in _describe(res)
    res.standby_hops.extend(hops)
    assert "standby: none" not in _describe(res) and "\n  standby: fra-h1 > " in _describe(res)
    one_site = ppb.Reservation(reservation_id="r-2", state=ppb.RESERVATION_STATE_ACTIVE,
                               src_host="fra-h1", dst_host="fra-h2", bandwidth_gbps=5,
                               protection=ppb.PROTECTION_PROTECTED, hops=hops[:1])
    assert "standby" not in _describe(one_site)          # crosses no line system
    assert "\n  path: fra-h1 > fra-leaf1 > " in _describe(res)
    res.cookie = 7 << 32 | 1 << 31 | 0xDC1AB              # as ovs-ofctl takes it
    assert "\n  rules: cookie=0x7800dc1ab/-1" in _describe(res)
    res.state = ppb.RESERVATION_STATE_DEGRADED           # holds no path: where it was
    assert "\n  last path (carried best effort now): fra-h1 > " in _describe(res)
    assert "rules:" not in _describe(res)                # nor rules


def test_an_expiry_not_today_shows_its_date():
    """An outside tester's reservation expiring in 2036 read "expires 00:25:27"."""
    now = time.mktime((2026, 12, 3, 12, 0, 0, 0, 0, -1))
    assert cli._when(now + 60, now) == "12:01:00"
    assert cli._when(now + 10 * 365 * 86400, now).startswith("2036-11-30 ")


def test_without_server_the_running_demo_or_labs_controller_is_used(port, tmp_path,
                                                                    monkeypatch, capsys):
    import subprocess

    from dcilab.emulation import cleanup
    monkeypatch.setattr(cleanup, "MANIFEST", tmp_path / "emulation.json")
    owner = subprocess.Popen(["sleep", "30"])       # stands for the demo's process
    try:
        cleanup.Manifest(owner.pid, "race", started=time.time() + 1,
                         services={"grpc": f"127.0.0.1:{port}"}).save()
        assert dcilab("links", "--kind", "dci") == 0
        assert "dc1-dc2.w1" in capsys.readouterr().out
    finally:
        owner.kill()
        owner.wait()
    # No run alive: the default address, named when it does not answer.
    assert dcilab("links", "--timeout", "1") in (0, 1)
    err = capsys.readouterr().err
    assert not err or "127.0.0.1:50051" in err


@pytest.mark.parametrize("command", [["links", "--watch", "--interval", "0.2"],
                                     ["reservations", "--watch"],
                                     ["elephants", "--watch", "--interval", "0.2"]])
def test_a_watch_stopped_by_sigterm_exits_143_not_as_a_watcher_done(port, client, command):
    """Ctrl-C ends a watch as its watcher's choice (exit 0); SIGTERM is the command being
    stopped (`timeout`, systemd), 143 like every command (a re-tester's find: 0)."""
    import signal
    import subprocess
    import sys
    client.reserve("dc1-h1", "dc2-h1", 1)         # something for the watch to print first
    proc = subprocess.Popen([sys.executable, "-m", "dcilab", *command,
                             "--server", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("[")       # streaming
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().endswith("terminated")


def test_elephants(at, capsys):
    assert dcilab("elephants", *at) == 0
    assert capsys.readouterr().out == "no elephants (policy loadaware)\n"
    assert dcilab("elephants", "--json", "--site", "dc2", *at) == 0
    answer = json.loads(capsys.readouterr().out)
    assert datetime.fromisoformat(answer.pop("time").replace("Z", "+00:00"))
    assert answer == {"policy": "loadaware", "elephants": []}
    assert dcilab("elephants", "--site", "dc9", *at) == 1
    assert "refused (INVALID_ARGUMENT): site: " in capsys.readouterr().err


def test_elephants_table_names_what_carries_each_and_where():
    from dcilab.api.v1 import fabric_pb2 as fpb
    hops = [fpb.PinnedHop(wavelength="a.w2", src="dc1-gw1", dst="dc2-gw1"),
            fpb.PinnedHop(wavelength="b.w1", src="dc2-gw1", dst="dc3-gw1")]
    pinned = fpb.Elephant(src_host="dc1-h1", dst_host="dc3-h2", src_ip="10.1.1.1",
                          dst_ip="10.3.1.2", ip_proto=6, src_port=40001, dst_port=5301,
                          rate_bps=61.04e9, demand_bps=400e9, hops=hops,
                          carrier=fpb.CARRIER_PINNED)
    hashed = fpb.Elephant(src_host="dc1-h2", dst_host="dc2-h1", src_ip="10.1.1.2",
                          dst_ip="10.2.1.1", ip_proto=17, src_port=1, dst_port=4791,
                          rate_bps=50e9, idle=True, carrier=fpb.CARRIER_HASHED)
    header, first, second = cli._elephants_table(
        fpb.ListElephantsResponse(policy="loadaware", elephants=[pinned, hashed])).splitlines()
    assert header.split()[:2] == ["flow", "hosts"] and header.endswith("carried by")
    assert first.startswith("tcp 10.1.1.1:40001 > 10.3.1.2:5301")
    assert first.split()[7:12] == ["61.0", "400", "its", "pin:", "a.w2"]
    assert first.endswith("a.w2 (dc1-gw1 > dc2-gw1) > b.w1 (dc2-gw1 > dc3-gw1)")
    assert second.startswith("udp 10.1.1.2:1 > 10.2.1.1:4791")
    assert second.endswith("not pinned: hashed over the shortest routes (no live route when "
                           "found)  (idle, pin held)")
    ecmp = cli._elephants_table(fpb.ListElephantsResponse(policy="ecmp", elephants=[hashed]))
    assert ecmp.splitlines()[1].endswith("hashed over the shortest routes (ecmp)  "
                                         "(idle, pin held)")
    rows = [fpb.Elephant(src_host="dc1-h1", dst_host="dc3-h2", hops=hops[:1], carrier=c,
                         reservation_id=r)
            for c, r in ((fpb.CARRIER_SHORTEST, ""), (fpb.CARRIER_RESERVATION, "r-7"),
                         (fpb.CARRIER_RESERVATION_IF_MARKED, "r-8"))]
    shortest, reserved, marked = cli._elephants_table(fpb.ListElephantsResponse(
        policy="shortest", elephants=rows)).splitlines()[1:]
    assert shortest.endswith("the shortest route: a.w2 (dc1-gw1 > dc2-gw1)")
    assert reserved.endswith("reservation r-7: a.w2 (dc1-gw1 > dc2-gw1)")
    assert marked.endswith("reservation r-8 if its packets carry its DSCP, else "
                           "a.w2 (dc1-gw1 > dc2-gw1)")


def test_the_demos_pin_watcher_reads_the_controller_and_says_when_it_cannot(port):
    from dcilab.cli.pins import PinWatcher
    with PinWatcher(f"127.0.0.1:{port}", interval_s=0.05) as pins:
        time.sleep(0.2)
    pins._thread.join(30)                  # a busy machine: its last call may still run
    assert pins.failure is None and pins.pins == {}
    with socket.socket() as s:              # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with PinWatcher(f"127.0.0.1:{dead}", interval_s=0.05, timeout_s=0.3) as pins:
        time.sleep(0.2)
    pins._thread.join(30)
    assert pins.failure and pins.pins == {}


def test_the_pin_watcher_keeps_every_pin_of_each_tcp_flow():
    from dcilab.api.v1 import fabric_pb2 as fpb
    from dcilab.cli.pins import PinWatcher

    def answer(wavelength, proto=6):
        hops = [fpb.PinnedHop(wavelength=wavelength, src="dc1-gw1", dst="dc2-gw1")] \
            if wavelength else []
        return fpb.ListElephantsResponse(elephants=[fpb.Elephant(
            src_host="dc1-h1", dst_host="dc2-h1", ip_proto=proto, src_port=41001,
            dst_port=5301, hops=hops)])
    watcher = PinWatcher("127.0.0.1:1")
    watcher.read(answer("a.w1"))
    watcher.read(answer("a.w1"))                  # the same pin, seen again
    watcher.read(answer("a.w3"))                  # moved: both are kept, in order
    watcher.read(answer("a.w2", proto=17))        # not an iperf3 TCP flow
    watcher.read(fpb.ListElephantsResponse())     # ended: its pins stay
    assert watcher.pins == {("dc1-h1", 41001, "dc2-h1", 5301): [(("a.w1", "dc1-gw1"),),
                                                               (("a.w3", "dc1-gw1"),)]}
    watcher.read(answer(""))                      # listed unpinned: no live route left
    assert watcher.pins == {}


def test_switches_names_what_does_not_match_the_file(service, at, capsys):
    """A switch that connected without a port of the file is a problem `dcilab switches`
    names, and the exit status says so (an operator had only the controller's log)."""
    assert dcilab("switches", *at) == 1                  # none connected yet
    out = capsys.readouterr().out
    rows = out.splitlines()[1:]
    assert len(rows) == len(service.fabric.switches)
    assert all(" no " in row and row.endswith("none") for row in rows)
    leaf = service.fabric.switches["dc1-leaf1"]
    ports = {p: leaf.interface(p) for p in service.fabric.ports(leaf.name)}
    lost = max(ports)
    del ports[lost]
    service.apply(lambda core: core.switch_connected(leaf.dpid))
    service.apply(lambda core: core.ports_described(leaf.dpid, ports))
    assert dcilab("switches", "--site", "dc1", *at) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("dc1-leaf1 "))
    assert " yes " in row and row.endswith(" 1")
    assert f"    missing port(s) {lost} (" in out
    assert "dc2-" not in out
    assert dcilab("switches", "--json", "--site", "dc1", *at) == 1
    listed = {sw["name"]: sw for sw in json.loads(capsys.readouterr().out)["switches"]}
    assert listed["dc1-leaf1"]["connected"] is True
    # as `dcilab check --json` names it, so that a script may join the two
    assert (listed["dc1-leaf1"]["dpid"], listed["dc1-leaf1"]["role"]) == (f"{leaf.dpid:#018x}",
                                                                          "leaf")
    assert listed["dc1-leaf1"]["problems"] == [f"missing port(s) {lost} "
                                               f"({service.fabric.ports(leaf.name)[lost].name})"]
    # refused as `links --site dc9` is: the server's fabric has no such site
    assert dcilab("switches", "--site", "dc9", *at) == 1
    assert "refused (INVALID_ARGUMENT): site: fabric " in capsys.readouterr().err
    assert dcilab("links", "--site", "dc9", *at) == 1
    assert "refused (INVALID_ARGUMENT): site: fabric " in capsys.readouterr().err


def test_elephants_table_widens_for_long_site_names():
    """An outside tester's `south-h3 > west-campus-h2` pushed its row out of line."""
    from dcilab.api.v1 import fabric_pb2 as fpb
    rows = [fpb.Elephant(src_host=s, dst_host=d, src_ip="10.1.1.1", dst_ip="10.4.1.2",
                         ip_proto=6, src_port=40001, dst_port=5201, rate_bps=61e9,
                         carrier=fpb.CARRIER_HASHED)
            for s, d in (("a-h1", "b-h1"), ("south-h3", "west-campus-h2-with-a-long-name"))]
    header, *lines = cli._elephants_table(
        fpb.ListElephantsResponse(policy="ecmp", elephants=rows)).splitlines()
    column = header.index("rate Gb/s")
    assert all(line[column:column + 9].strip() == "61.0" for line in lines), lines


@pytest.mark.parametrize("argv, said", [
    # port 0 is the wire's "every port": it reserved all TCP (a CLI auditor's)
    (["--protocol", "tcp", "--dport", "0"], "--dport: '0' is not a port"),
    (["--protocol", "tcp", "--dport", "0-80"], "--dport: '0-80' is not a port"),
    # beyond what the wire carries: protobuf's "Value out of range: -1" named no option
    (["--dscp", "-1"], "--dscp: a DSCP value is 0-63, got -1"),
    (["--protocol", "99999999999"], "--protocol: '99999999999' is not tcp, udp"),
    # str.isdigit takes other scripts' digits: "٣" booked tcp dport 3 (a re-tester's)
    (["--protocol", "tcp", "--dport", "\u0663"], "is not a port"),
    (["--protocol", "\u0666"], "is not tcp, udp"),
    # "80-" was taken as port 80; a full-width DSCP digit as 6 (a hostile tester's)
    (["--protocol", "tcp", "--dport", "80-"], "--dport: '80-' is not a port"),
    (["--dscp", "\uff16"], "--dscp: expected a whole number"),
])
def test_selector_values_the_wire_cannot_carry_are_bad_usage(argv, said, capsys):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "1", *argv,
                  "--server", f"127.0.0.1:{port}") == 2
    assert said in capsys.readouterr().err
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "1", *argv, "--json",
                  "--server", f"127.0.0.1:{port}") == 2
    assert json.loads(capsys.readouterr().out)["code"] == "USAGE"


def test_an_interval_is_the_watchs_and_bounded_alike_for_links_and_elephants(capsys):
    assert dcilab("links", "--interval", "5", "--server", "127.0.0.1:1") == 2
    assert "--interval needs --watch" in capsys.readouterr().err
    for command in ("links", "elephants"):
        for value in ("0.01", "7200"):
            with pytest.raises(SystemExit) as exc:
                dcilab(command, "--watch", "--interval", value)
            assert exc.value.code == 2
