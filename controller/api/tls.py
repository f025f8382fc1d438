"""The files a TLS or token set-up reads, and what would make them unusable, said before
gRPC would only fail: certificates, keys, CAs and bearer token files. Without gRPC, so a
client command loads quickly (a CLI call took 0.9 s of CPU, most of it imports: polling
`dcilab switches` on a 2-core lab starved Open vSwitch's BFD: an outside tester's)."""

from __future__ import annotations

import datetime
import logging
import os
import ssl
from pathlib import Path

from ..files import not_regular

log = logging.getLogger("dcilab.api")

# A server certificate this close to its end is said at start (it still serves).
EXPIRY_WARNING_DAYS = 14
MAX_PEM_BYTES = 1 << 20
MAX_TOKEN_BYTES = 4096


class ServerError(Exception):
    """The server cannot start (address in use, unreadable certificate ...), or a client's
    TLS or token file cannot be used."""


def read_small_file(path: str | Path, what: str, limit: int) -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes; ServerError naming
    it otherwise. Opened without blocking, so a FIFO cannot hang the start, and read
    no further than the limit, so /dev/zero cannot fill memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ServerError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        kind = not_regular(os.fstat(fd).st_mode)
        if kind is not None:
            raise ServerError(f"{what} {path} is {kind}, not a file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ServerError(f"cannot read {what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise ServerError(f"{what} {path} is over {limit} bytes: not a {what}")
    return b"".join(chunks)


def read_token_file(path: str | Path) -> str:
    """The bearer token in `path` (surrounding whitespace ignored); ServerError if unusable.
    The client side reads the same file the same way."""
    try:
        token = read_small_file(path, "token file", MAX_TOKEN_BYTES).decode().strip()
    except UnicodeDecodeError:
        raise ServerError(f"token file {path} is not UTF-8 text") from None
    if not token or any(c.isspace() for c in token):
        raise ServerError(f"token file {path} must hold one token without spaces")
    return token


def read_pem(path: str | Path, what: str) -> bytes:
    """A PEM file's bytes; ServerError for what OpenSSL would stall on: an encrypted key
    makes it prompt for a passphrase on the terminal (or fail with 'Invalid argument')."""
    data = read_small_file(path, what, MAX_PEM_BYTES)
    if b"ENCRYPTED" in data:
        raise ServerError(f"{what} {path} is encrypted with a passphrase: give an "
                          f"unencrypted key (openssl pkey -in {path} -out PLAIN.key)")
    return data


def no_passphrase() -> bytes:
    """For ssl's load_cert_chain: never prompt (a key encrypted in a form read_pem did
    not spot then fails as a bad key)."""
    return b""


def client_tls_problem(ca: str | None, cert: str | None, key: str | None,
                       ca_is: str, pair_is: str) -> str | None:
    """Which of a client's TLS files is not what it should be, with OpenSSL's reason
    (gRPC would log lines of its own and then only fail to connect): `ca_is` or
    `pair_is` (how to name the CA, and the certificate and key) and the reason; None if
    they are usable."""
    checks = []
    if ca:
        checks.append((lambda: ssl.create_default_context(cafile=ca), ca_is))
    if cert:
        checks.append((lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            cert, key, password=no_passphrase), pair_is))
    for check, what in checks:
        try:
            check()
        except (ssl.SSLError, ValueError, OSError) as exc:
            return f"{what} ({getattr(exc, 'reason', None) or exc})"
    return None


def client_ca_problem(pem: bytes, path, now: datetime.datetime | None = None) -> str | None:
    """Why no client certificate would pass: every CA of the file expired, or not valid
    yet (an outside tester's expired CA was taken without a word, every mutual-TLS client
    then refused). A bundle with some CAs still good only warns of the others."""
    from cryptography import x509
    try:
        cas = x509.load_pem_x509_certificates(pem)
    except ValueError:                  # OpenSSL took it: nothing more to say here
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    bad = []
    for ca in cas:
        name = ca.subject.rfc4514_string()[:64]
        if ca.not_valid_after_utc < now:
            bad.append(f"{name} expired on {ca.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        elif ca.not_valid_before_utc > now:
            bad.append(f"{name} is not valid before {ca.not_valid_before_utc:%Y-%m-%d %H:%M} "
                       f"UTC (check this machine's clock)")
    if bad and len(bad) == len(cas):
        return (f"TLS client CA {path}: {'; '.join(bad[:3])}: every client certificate "
                f"would be refused; renew it")
    for why in bad:
        log.warning("TLS client CA %s: %s; client certificates it signed are refused", path,
                    why)
    return None


def certificate_dates_problem(chain: bytes, path, now: datetime.datetime | None = None,
                              refused_by: str = "every client") -> str | None:
    """Why clients would refuse a certificate of the chain (the server's, or an
    intermediate it sends) by its dates: expired, or not valid yet (a clock, or a
    certificate made for later). A tester's expired certificate was served, every client
    failing with CERTIFICATE_VERIFY_FAILED. One that ends within EXPIRY_WARNING_DAYS is
    logged. `now`: aware, UTC by default. `refused_by`: who checks it (a client's own
    certificate: "the server")."""
    from cryptography import x509       # what gRPC's OpenSSL reads the dates of, too
    try:
        certificates = x509.load_pem_x509_certificates(chain)
    except ValueError:                  # OpenSSL took it: nothing more to say here
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    for n, cert in enumerate(certificates):
        which = (f"TLS certificate {path}" if n == 0 else
                 f"certificate {n + 1} of the chain in {path} "
                 f"({cert.subject.rfc4514_string()[:64]})")
        after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
        if after < now:
            return (f"{which} expired on {after:%Y-%m-%d %H:%M} UTC: {refused_by} would "
                    f"refuse it (certificate has expired); renew it")
        if before > now:
            return (f"{which} is not valid before {before:%Y-%m-%d %H:%M} UTC: {refused_by} "
                    f"would refuse it until then (check this machine's clock)")
        if after - now < datetime.timedelta(days=EXPIRY_WARNING_DAYS):
            log.warning("%s expires on %s UTC, in %.1f days: renew it", which,
                        f"{after:%Y-%m-%d %H:%M}", (after - now).total_seconds() / 86400)
    return None
