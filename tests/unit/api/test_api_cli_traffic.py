"""`dcilab reserve --protocol/--dport/--dscp/--protection` against a real server."""

from __future__ import annotations

import json

import pytest
from test_api_cli import dcilab


@pytest.fixture
def at(port):
    return ["--server", f"127.0.0.1:{port}"]


def test_a_selector_and_a_protection_class_show_in_the_answer(at, capsys):
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "10", "--protocol", "tcp",
                  "--dport", "5201-5300", "--protection", "none", *at) == 0
    out = capsys.readouterr().out
    assert "dc1-h1 -> dc2-h1 [tcp dport 5201-5300], 10 Gb/s" in out and ", NONE" in out
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "10", "--dscp", "46", "--json",
                  *at) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["selector"]["dscp"] == 46 and res["selector"]["ip_protocol"] == 0
    assert dcilab("reservations", *at) == 0
    out = capsys.readouterr().out
    assert "[dscp 46]" in out and "RESTORABLE" in out


def test_bad_selectors_are_one_line_errors(at, capsys):
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "10", "--protocol", "tcp",
                  "--dport", "80-x", *at) == 2
    assert capsys.readouterr().err == "dcilab reserve: --dport: '80-x' is not a port (1-65535) or LO-HI range\n"
    # Ports belong to TCP or UDP: said as the options say it, not as the API's field.
    for protocol in ([], ["--protocol", "47"]):
        assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "10", *protocol,
                      "--dport", "80", *at) == 2
        assert capsys.readouterr().err == \
            "dcilab reserve: --dport needs --protocol tcp or --protocol udp\n"
    assert dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "10", "--protocol", "udp",
                  "--dport", "90-80", *at) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "INVALID_ARGUMENT" in err and "1 <= min <= max" in err


@pytest.mark.parametrize("option, value, said", [
    ("--duration", "1e20", "must be a number of seconds from 0 to 315576000000"),
    ("--duration", "nan", "must be a number of seconds from 0 to 315576000000"),
    ("--duration", "inf", "must be a number of seconds from 0 to 315576000000"),
    ("--priority", "99999999999", "must be from -2147483648 to 2147483647"),
])
def test_values_a_request_cannot_carry_are_usage_errors_not_tracebacks(at, capsys, option,
                                                                       value, said):
    with pytest.raises(SystemExit) as exit_:
        dcilab("reserve", "dc1-h1", "dc2-h1", "--gbps", "1", option, value, *at)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {said}" in err and "Traceback" not in err
