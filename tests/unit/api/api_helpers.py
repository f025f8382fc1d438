"""Glue for the API tests: a fabric file whose one wavelength has room for exactly ten
reservations, and certificates made on the spot."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

# Two sites joined by ONE 400ZR wavelength (400 Gb/s at 80 km): with the default
# reservable fraction 0.9, 360 Gb/s can be reserved across it, so exactly ten requests of
# 36 Gb/s fit. Host and fabric links run at 10 Tb/s (9000 Gb/s reservable), so they are
# never the bottleneck, and 8 hosts per site give 64 distinct host pairs.
RACE_FABRIC = """\
name: race
scale: 1.0e-5
sites:
  - {name: dc1, spines: 1, leaves: 2, hosts_per_leaf: 4, gateways: 1, fabric_gbps: 10000}
  - {name: dc2, spines: 1, leaves: 2, hosts_per_leaf: 4, gateways: 1, fabric_gbps: 10000}
dci_links:
  - {name: dc1-dc2, a: dc1, b: dc2, fiber_km: 80, module: 400ZR, wavelengths: 1}
"""
WAVELENGTH = "dc1-dc2.w1"
RESERVABLE_GBPS = 360.0
SLICE_GBPS = 36.0
HOST_PAIRS = [(f"dc1-h{i}", f"dc2-h{j}") for i in range(1, 9) for j in range(1, 9)]


def write_race_fabric(directory: Path) -> Path:
    path = directory / "race.yaml"
    path.write_text(RACE_FABRIC)
    return path


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_client_cert: Path      # signed by a CA the server does not trust
    other_client_key: Path


def make_pki(directory: Path, server_valid: tuple | None = None,
             client_valid: tuple | None = None, ca_valid: tuple | None = None) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate signed
    by it, and a client certificate from an unrelated CA (cryptography package).
    `server_valid`, `client_valid`, `ca_valid`: that certificate's (not before, not after),
    if not 30 days from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject, key, issuer, issuer_key, ca=False, san=None, usage=None, valid=None):
        # 30 days: past the start's warning of a certificate near its end
        begins, ends = valid or (now - datetime.timedelta(minutes=5),
                                 now + datetime.timedelta(days=30))
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(begins).not_valid_after(ends)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def write(stem, certificate, key):
        c, k = directory / f"{stem}.pem", directory / f"{stem}.key"
        c.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        return c, k

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = cert("dcilab test CA", ca_key, "dcilab test CA", ca_key, ca=True, valid=ca_valid)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = cert("localhost", server_key, "dcilab test CA", ca_key,
                  san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                  usage=ExtendedKeyUsageOID.SERVER_AUTH, valid=server_valid)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = cert("operator", client_key, "dcilab test CA", ca_key,
                  usage=ExtendedKeyUsageOID.CLIENT_AUTH, valid=client_valid)
    other_ca_key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = cert("intruder", other_key, "some other CA", other_ca_key,
                 usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    ca_path, _ = write("ca", ca_cert, ca_key)
    sc, sk = write("server", server, server_key)
    cc, ck = write("client", client, client_key)
    oc, ok = write("other-client", other, other_key)
    return Pki(ca_path, sc, sk, cc, ck, oc, ok)
