"""The controller's gNMI client against a device's agent that asks for TLS and a login,
as real transceivers' do (a security reviewer's: it spoke plain gRPC only, so it could not
reach them). The emulation's agent serves both here, with the API tests' PKI."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from api_helpers import make_pki
from optical_helpers import zrplus_fabric

from dcilab.cli.controller import gnmi_security_problem, read_gnmi_security
from dcilab.emulation.gnmi_server import serve_gnmi
from dcilab.emulation.transceivers import TransceiverAgent
from dcilab.gnmi import GnmiSecurity, TransceiverClient


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """The transceivers' agent on TLS with a login: (address, PKI)."""
    where = tmp_path_factory.mktemp("gnmi-tls")
    pki = make_pki(where)
    fabric, _ = zrplus_fabric(where)
    with TransceiverAgent(fabric, apply_effects=False, tick_s=0.1) as agent:
        server, port, stop = serve_gnmi(
            agent.state, tls=(pki.server_cert.read_bytes(), pki.server_key.read_bytes()),
            login=("ops", "s3cret pass"))
        try:
            yield f"127.0.0.1:{port}", pki
        finally:
            stop.set()
            server.stop(1).wait(5)


def _reaches(address: str, security: GnmiSecurity | None, wait_s: float) -> bool:
    client = TransceiverClient(address, security=security).start()
    try:
        return client.connected.wait(wait_s) and bool(client.readings())
    finally:
        client.stop()


def test_tls_and_the_login_reach_the_device(device):
    address, pki = device
    assert _reaches(address, GnmiSecurity(ca=pki.ca.read_bytes(), username="ops",
                                          password="s3cret pass"), 20)


def test_a_wrong_password_plain_grpc_or_an_unknown_ca_do_not(device):
    address, pki = device
    assert not _reaches(address, GnmiSecurity(ca=pki.ca.read_bytes(), username="ops",
                                              password="guess"), 3)
    assert not _reaches(address, None, 3)
    assert not _reaches(address, GnmiSecurity(ca=pki.other_client_cert.read_bytes(),
                                              username="ops", password="s3cret pass"), 3)


def _options(**given):
    options = dict(gnmi=("127.0.0.1", 9339), gnmi_tls_ca=None, gnmi_tls_cert=None,
                   gnmi_tls_key=None, gnmi_username=None, gnmi_password_file=None)
    return SimpleNamespace(**(options | given))


def test_the_options_hold_together_or_are_refused_before_anything_starts(tmp_path):
    assert gnmi_security_problem(_options()) is None
    assert "in clear" in gnmi_security_problem(_options(gnmi_username="ops",
                                                        gnmi_password_file="p"))
    assert "need --gnmi" in gnmi_security_problem(_options(gnmi=None, gnmi_tls_ca="ca.pem"))
    assert "go together" in gnmi_security_problem(_options(gnmi_tls_ca="ca", gnmi_tls_cert="c"))
    pki = make_pki(tmp_path)
    password = tmp_path / "password"
    password.write_text("s3cret pass\n")
    security = read_gnmi_security(_options(gnmi_tls_ca=str(pki.ca), gnmi_username="ops",
                                           gnmi_password_file=str(password)))
    assert security.metadata == (("username", "ops"), ("password", "s3cret pass"))
    from dcilab.api.tls import ServerError
    with pytest.raises(ServerError, match="gNMI TLS CA .* is not a PEM certificate"):
        read_gnmi_security(_options(gnmi_tls_ca=str(password)))
