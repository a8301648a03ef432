"""Certificates the pipeline would never make, for import and sweep tests: forged ones
that name a portal CA, ones the CA key signed outside the pipeline, and malformed DER
(duplicate extensions, bad serials) that cryptography's builder refuses to write."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki import keys
from profiles.models import CertificateAuthority

Key = ec.EllipticCurvePrivateKey


def new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def build(
    issuer: x509.Name,
    signing_key: keys.PrivateKey,
    *,
    serial: int | None = None,
    common_name: str = "imported.example.test",
    subject_key: Key | None = None,
    ca: bool = False,
    eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
) -> tuple[x509.Certificate, Key]:
    """A certificate with this issuer name, signed by signing_key; and its own key."""
    own = subject_key or new_key()
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name, _validate=False)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(own.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    hash_algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signing_key, hash_algorithm), own


def forged_under(ca: CertificateAuthority, **kwargs: object) -> tuple[x509.Certificate, Key]:
    """Names the CA as issuer but is signed by a stranger's key."""
    return build(ca.certificate().subject, new_key(), **kwargs)  # type: ignore[arg-type]


def signed_by(ca: CertificateAuthority, **kwargs: object) -> tuple[x509.Certificate, Key]:
    """Signed with the CA's own key, outside the pipeline."""
    return build(ca.certificate().subject, ca.load_private_key(), **kwargs)  # type: ignore[arg-type]


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def key_pem(key: keys.PrivateKey) -> str:
    return keys.private_key_to_pem(key).decode()


def resigned(
    cert: x509.Certificate, key: Key, change: Callable[[asn1_x509.TbsCertificate], None]
) -> bytes:
    """The certificate's DER with its TBS changed by ``change`` and signed again with key."""
    original = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    tbs = original["tbs_certificate"]
    change(tbs)
    tbs_der = tbs.dump(force=True)
    signature = key.sign(tbs_der, ec.ECDSA(hashes.SHA256()))
    return asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
            "signature_algorithm": original["signature_algorithm"],
            "signature_value": signature,
        }
    ).dump(force=True)


def der_to_pem(der: bytes, label: str = "CERTIFICATE") -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def self_signed(**kwargs: object) -> tuple[x509.Certificate, Key]:
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self.example.test")])
    return build(name, key, subject_key=key, **kwargs)  # type: ignore[arg-type]


def duplicate_extension() -> str:
    """A self-signed certificate carrying its SAN extension twice (RFC 5280 forbids it)."""
    cert, key = self_signed()

    def twice(tbs: asn1_x509.TbsCertificate) -> None:
        extensions = tbs["extensions"]
        extensions.append(extensions[-1].copy())
        tbs["extensions"] = extensions

    return der_to_pem(resigned(cert, key, twice))


def with_serial(serial: int) -> str:
    """A self-signed certificate with a serial cryptography's builder refuses to write."""
    cert, key = self_signed()

    def set_serial(tbs: asn1_x509.TbsCertificate) -> None:
        tbs["serial_number"] = serial

    return der_to_pem(resigned(cert, key, set_serial))
