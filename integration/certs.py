"""Throw-away TLS material for the test clusters (``integration/cassandra``) and tests.

``write_node_material(dir, addresses)`` writes, into ``dir``:

* ``ca.pem``: a self-signed CA certificate that clients trust (``tls_ca=``);
* ``node.p12``: a PKCS12 keystore with the node key and a certificate signed by
  that CA, valid for every address in ``addresses`` (IP subjectAltNames), which is
  what Cassandra's ``client_encryption_options`` reads on Java 17;
* ``node.pem``: the node certificate alone, for inspection;
* ``keystore.password``: the keystore's password (random).

``make_ca`` / ``make_leaf`` are also used by tests, for example to make a second,
untrusted CA. Keys are EC P-256: quick to make, and every TLS stack here takes them.
Nothing here is meant to protect anything but a test node.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Long enough for a work dir that lives for weeks; a test CA need not expire sooner.
VALIDITY = datetime.timedelta(days=365)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "timak tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA key and certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    addresses: list[str],
    dns_names: tuple[str, ...] = (),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server key and certificate for ``addresses`` (IPs) and ``dns_names``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(a)) for a in addresses
    ]
    names += [x509.DNSName(d) for d in dns_names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(addresses[0] if addresses else dns_names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_node_material(directory: Path, addresses: list[str]) -> None:
    """CA, node keystore and password for a node serving ``addresses`` (see the module doc)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = make_ca("timak test CA")
    key, cert = make_leaf(ca_key, ca_cert, addresses)
    password = secrets.token_urlsafe(18)
    # PBES2/AES-256 with an HMAC-SHA256 MAC: read by Java 11.0.12+/17 (Cassandra's JVMs).
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(10_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    keystore = pkcs12.serialize_key_and_certificates(
        b"node", key, cert, [ca_cert], encryption
    )
    (directory / "keystore.password").write_text(password + "\n")
    (directory / "node.p12").write_bytes(keystore)
    (directory / "node.pem").write_bytes(pem(cert))
    (directory / "ca.pem").write_bytes(pem(ca_cert))
