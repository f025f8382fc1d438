"""Bearer token for changes, TLS and mutual TLS, each on and off."""

from __future__ import annotations

import re

import pytest
from api_helpers import make_pki

from dcilab.api.client import ApiError, Client, Unreachable
from dcilab.api.server import TlsConfig
from dcilab.api.tls import ServerError, read_token_file

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_without_a_token_configured_changes_need_none(port):
    with Client(f"127.0.0.1:{port}") as c:
        res = c.reserve("dc1-h1", "dc2-h1", 1)
        c.release(res.reservation_id)


def test_token_guards_changes_and_leaves_reads_open(serve):
    port = serve(token=TOKEN)
    with Client(f"127.0.0.1:{port}") as anonymous:
        with pytest.raises(ApiError) as err:
            anonymous.reserve("dc1-h1", "dc2-h1", 1)
        assert err.value.code == "UNAUTHENTICATED"
        assert "ReservePath needs 'authorization: Bearer <token>'" in err.value.message
        with pytest.raises(ApiError) as err:
            anonymous.release("r-anything")
        assert err.value.code == "UNAUTHENTICATED"
        assert anonymous.reservations() == []                # reads stay open
        assert anonymous.links("dci") and anonymous.fabric().name == "race"
    with Client(f"127.0.0.1:{port}", token="wrong") as wrong, pytest.raises(ApiError) as err:
        wrong.reserve("dc1-h1", "dc2-h1", 1)
    assert err.value.code == "UNAUTHENTICATED" and "not accepted" in err.value.message
    with Client(f"127.0.0.1:{port}", token=TOKEN) as operator:
        res = operator.reserve("dc1-h1", "dc2-h1", 1)
        assert operator.get(res.reservation_id).reservation_id == res.reservation_id
        operator.release(res.reservation_id)
        with pytest.raises(ApiError) as err:                  # past auth, to the service
            operator.release("r-unknown")
        assert err.value.code == "NOT_FOUND"


def test_the_scheme_is_case_insensitive_and_the_token_is_not(serve):
    port = serve(token=TOKEN)
    with Client(f"127.0.0.1:{port}", token=TOKEN) as c:
        for value, accepted in ((f"bearer {TOKEN}", True), (f"BEARER {TOKEN}", True),
                                (f"Bearer {TOKEN.upper()}", False), (f"Basic {TOKEN}", False),
                                (f"Bearer{TOKEN}", False), (f"Bearer  {TOKEN}", False),
                                (TOKEN, False)):
            c._metadata = (("authorization", value),)
            if accepted:
                c.release(c.reserve("dc1-h1", "dc2-h1", 1).reservation_id)
            else:
                with pytest.raises(ApiError) as err:
                    c.reserve("dc1-h1", "dc2-h1", 1)
                assert err.value.code == "UNAUTHENTICATED", value


def test_token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")
    assert read_token_file(path) == TOKEN
    path.write_text("two words\n")
    with pytest.raises(ServerError, match="one token"):
        read_token_file(path)
    with pytest.raises(ServerError, match="cannot read token file"):
        read_token_file(tmp_path / "missing")


def test_tls(serve, pki):
    port = serve(tls=TlsConfig.from_files(pki.server_cert, pki.server_key), token=TOKEN)
    ca = pki.ca.read_bytes()
    with Client(f"127.0.0.1:{port}", ca=ca, token=TOKEN) as c:
        assert c.reserve("dc1-h1", "dc2-h1", 1).reservation_id
    with Client(f"localhost:{port}", ca=ca) as c:
        assert len(c.reservations()) == 1
    with Client(f"127.0.0.1:{port}", timeout=3) as plaintext, pytest.raises(Unreachable) as err:
        plaintext.reservations()
    assert f"cannot reach dcilab controller at 127.0.0.1:{port}" in str(err.value)
    assert "if the server serves TLS, connect with TLS (--tls-ca" in str(err.value)
    with Client(f"127.0.0.1:{port}", tls=True, timeout=3) as untrusting:  # system roots only
        with pytest.raises(Unreachable) as err:
            untrusting.reservations()
    assert "not one the CA given (--tls-ca, or the system's) vouches for" in str(err.value)
    assert not str(err.value).split(";")[0].endswith(": OK")


def test_mutual_tls_refuses_clients_without_a_trusted_certificate(serve, pki):
    port = serve(tls=TlsConfig.from_files(pki.server_cert, pki.server_key, pki.ca))
    ca = pki.ca.read_bytes()
    with Client(f"127.0.0.1:{port}", ca=ca, cert=pki.client_cert.read_bytes(),
                key=pki.client_key.read_bytes()) as trusted:
        assert trusted.reserve("dc1-h1", "dc2-h1", 1).reservation_id
    with Client(f"127.0.0.1:{port}", ca=ca, timeout=3) as no_cert:
        with pytest.raises(Unreachable) as err:
            no_cert.reservations()
    assert "asks for client certificates (mutual TLS), give --tls-cert and --tls-key" in \
        str(err.value)
    with Client(f"127.0.0.1:{port}", ca=ca, cert=pki.other_client_cert.read_bytes(),
                key=pki.other_client_key.read_bytes(), timeout=3) as stranger:
        with pytest.raises(Unreachable):
            stranger.reservations()


def test_unreadable_certificate_is_a_clear_error(tmp_path):
    with pytest.raises(ServerError, match="cannot read TLS certificate"):
        TlsConfig.from_files(tmp_path / "nope.pem", tmp_path / "nope.key")


def test_a_fifo_a_device_or_a_directory_is_refused_at_once_not_read(tmp_path, pki):
    """A FIFO would block the start for ever, /dev/zero fill memory: each is refused,
    naming the file and what it is, for the token, the certificate, the key and the CA."""
    import os
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO (named pipe)"), ("/dev/zero", "a character device"),
                       (tmp_path, "a directory")):
        said = re.escape(f"{path} is {kind}")
        with pytest.raises(ServerError, match=f"token file {said}, not a file"):
            read_token_file(path)
        with pytest.raises(ServerError, match=f"TLS certificate {said}"):
            TlsConfig.from_files(path, pki.server_key)
        with pytest.raises(ServerError, match=f"TLS key {said}"):
            TlsConfig.from_files(pki.server_cert, path)
        with pytest.raises(ServerError, match=f"TLS client CA {said}"):
            TlsConfig.from_files(pki.server_cert, pki.server_key, path)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 5000)
    with pytest.raises(ServerError, match="over 4096 bytes"):
        read_token_file(big)


def test_an_encrypted_key_is_refused_never_prompted_for(tmp_path, pki):
    """OpenSSL asks a terminal for the passphrase of an encrypted key (and fails with
    'Invalid argument' without one): the start says what is wrong instead."""
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    with pytest.raises(ServerError, match=f"TLS key {locked} is encrypted with a passphrase"):
        TlsConfig.from_files(pki.server_cert, locked)
    import subprocess
    import sys
    done = subprocess.run(
        [sys.executable, "-m", "dcilab", "reservations", "--server", "127.0.0.1:1",
         "--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert), "--tls-key",
         str(locked)], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "encrypted with a passphrase" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_expired_or_not_yet_valid_certificate_is_refused_at_start(tmp_path, caplog):
    """A tester's expired certificate was served: every client then failed with
    CERTIFICATE_VERIFY_FAILED. Now the start says so, naming the file and the date."""
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    cases = (((now - 3 * day, now - 2 * day), "expired on"),
             ((now + 2 * day, now + 3 * day), "is not valid before"))
    for n, (valid, said) in enumerate(cases):
        (tmp_path / str(n)).mkdir()
        pki = make_pki(tmp_path / str(n), server_valid=valid)
        with pytest.raises(ServerError, match=f"TLS certificate {re.escape(str(pki.server_cert))} "
                                              f"{said} "):
            TlsConfig.from_files(pki.server_cert, pki.server_key)
    soon = tmp_path / "soon"
    soon.mkdir()
    pki = make_pki(soon, server_valid=(now - day, now + 3 * day))
    with caplog.at_level("WARNING", logger="dcilab.api"):
        TlsConfig.from_files(pki.server_cert, pki.server_key)       # serves, and says so
    assert "expires on" in caplog.text and "renew it" in caplog.text


def test_an_expired_client_ca_is_refused_at_start(tmp_path, caplog):
    """An outside tester's expired --tls-client-ca was taken without a word: every
    mutual-TLS client would have been refused. A bundle with a good CA only warns."""
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    old = tmp_path / "old"
    old.mkdir()
    pki = make_pki(old, ca_valid=(now - 60 * day, now - 30 * day))
    with pytest.raises(ServerError, match=f"TLS client CA {re.escape(str(pki.ca))}: CN=dcilab "
                                          f"test CA expired on .* every client certificate "
                                          f"would be refused; renew it"):
        TlsConfig.from_files(pki.server_cert, pki.server_key, pki.ca)
    good = tmp_path / "good"
    good.mkdir()
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.ca.read_bytes() + make_pki(good).ca.read_bytes())
    with caplog.at_level("WARNING", logger="dcilab.api"):
        TlsConfig.from_files(pki.server_cert, pki.server_key, bundle)
    assert "dcilab test CA expired on" in caplog.text


def test_an_expired_intermediate_in_the_chain_is_refused_too():
    """A valid server certificate sent with an expired intermediate: clients fail with
    "certificate has expired" as for the leaf (a reviewer's)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from dcilab.api.tls import certificate_dates_problem
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    def cert(subject, key, issuer_key, begins, ends, ca):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(begins).not_valid_after(ends)
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .sign(issuer_key, hashes.SHA256()))
    middle_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), \
        ec.generate_private_key(ec.SECP256R1())
    leaf = cert("localhost", leaf_key, middle_key, now - day, now + 90 * day, False)
    middle = cert("issuing CA", middle_key, middle_key, now - 9 * day, now - day, True)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, middle))
    said = certificate_dates_problem(chain, "server.pem")
    assert said.startswith("certificate 2 of the chain in server.pem (CN=issuing CA) expired on")
    assert certificate_dates_problem(chain[:len(leaf.public_bytes(
        serialization.Encoding.PEM))], "server.pem") is None


def test_a_certificate_that_expired_while_serving_is_named_by_the_client(serve, tmp_path):
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    pki = make_pki(tmp_path, server_valid=(now - datetime.timedelta(days=3),
                                           now - datetime.timedelta(days=1)))
    # Built as it was at start, before it expired (from_files refuses it now).
    port = serve(tls=TlsConfig(pki.server_cert.read_bytes(), pki.server_key.read_bytes()))
    with Client(f"127.0.0.1:{port}", ca=pki.ca.read_bytes(), timeout=3) as c:
        with pytest.raises(Unreachable) as err:
            c.reservations()
    assert "has expired: renew it" in str(err.value)
    assert "vouches for" not in str(err.value)


def test_a_server_certificate_that_does_not_name_the_address_gets_a_hint(serve, pki):
    """The certificate names 127.0.0.1 and localhost; 127.0.0.2 reaches the same server
    (bound to every address) and fails the hostname check: the hint says which name."""
    port = serve("0.0.0.0:0", tls=TlsConfig.from_files(pki.server_cert, pki.server_key))
    with Client(f"127.0.0.2:{port}", ca=pki.ca.read_bytes(), timeout=3) as c:
        with pytest.raises(Unreachable) as err:
            c.reservations()
    assert "the server's certificate does not name 127.0.0.2: connect by a name" in \
        str(err.value)
    assert f"openssl s_client -connect 127.0.0.2:{port}" in str(err.value)
    with Client(f"localhost:{port}", ca=pki.ca.read_bytes(), timeout=3) as c:
        assert c.reservations() == []                          # a name it lists


def test_mutual_tls_with_a_certificate_it_does_not_accept_says_so(serve, pki):
    port = serve(tls=TlsConfig.from_files(pki.server_cert, pki.server_key, pki.ca))
    with Client(f"127.0.0.1:{port}", ca=pki.ca.read_bytes(),
                cert=pki.other_client_cert.read_bytes(),
                key=pki.other_client_key.read_bytes(), timeout=3) as stranger:
        with pytest.raises(Unreachable) as err:
            stranger.reservations()
    assert "it may not accept this one (another CA's, or expired)" in str(err.value)
