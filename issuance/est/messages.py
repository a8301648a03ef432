"""EST wire formats (RFC 7030, RFC 8951): base64 bodies, PKCS#7 certs-only, the CSR
attributes DER and the serverkeygen multipart answer. No Django here."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from pki import csr as pki_csr
from pki import keys

CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"
CSRATTRS = "application/csrattrs"
# Content types a CSR may come with: RFC 7030's, and PEM for clients that send files as is.
CSR_CONTENT_TYPES = frozenset(
    {"application/pkcs10", "application/x-pkcs10", "application/x-pem-file", "text/plain"}
)

OID_CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"
OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
OID_SUBJECT_ALT_NAME = "2.5.29.17"
OID_RSA = "1.2.840.113549.1.1.1"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_ED25519 = "1.3.101.112"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_SHA256_RSA = "1.2.840.113549.1.1.11"
CURVE_OIDS = {"P-256": "1.2.840.10045.3.1.7", "P-384": "1.3.132.0.34", "P-521": "1.3.132.0.35"}


class _Values(core.SetOf):
    _child_spec = core.Any


class _Attribute(core.Sequence):
    _fields = [("type", core.ObjectIdentifier), ("values", _Values)]


class _AttrOrOID(core.Choice):
    _alternatives = [("oid", core.ObjectIdentifier), ("attribute", _Attribute)]


class CsrAttrs(core.SequenceOf):
    """RFC 7030 4.5.2: CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID."""

    _child_spec = _AttrOrOID


def b64(der: bytes) -> bytes:
    """Base64 with line breaks every 76 characters (RFC 2045), as EST answers are sent."""
    return base64.encodebytes(der)


def parse_csr(body: bytes) -> pki_csr.ParsedCSR:
    """A CSR from an EST body: base64 DER with or without line breaks, or PEM.

    Content-Transfer-Encoding is ignored (RFC 8951): the body is base64 whatever it says.
    Raises pki.errors.PKIError with a plain reason."""
    return pki_csr.parse_csr(body)


def csr_digest(parsed: pki_csr.ParsedCSR) -> str:
    """The CSR's identity for recognising a re-sent request: SHA-256 of its DER."""
    der = parsed.csr.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def certs_only(certificates: Sequence[x509.Certificate]) -> bytes:
    """A degenerate PKCS#7 SignedData holding the certificates, base64."""
    der = pkcs7.serialize_certificates(list(certificates), serialization.Encoding.DER)
    return b64(der)


def csr_attributes(
    *,
    key_algorithms: Sequence[str],
    ec_curves: Sequence[str],
    challenge_password: bool,
    require_san: bool,
) -> bytes:
    """The CSR attributes DER (not base64) a profile asks for; empty when it asks nothing."""
    items: list[_AttrOrOID] = []
    if challenge_password:
        items.append(_AttrOrOID(name="oid", value=OID_CHALLENGE_PASSWORD))
    families = {a.upper() for a in key_algorithms}
    if "EC" in families:
        curves = [
            core.ObjectIdentifier(CURVE_OIDS[c]) for c in sorted(ec_curves) if c in CURVE_OIDS
        ]
        items.append(_attribute(OID_EC_PUBLIC_KEY, curves))
        items.append(_AttrOrOID(name="oid", value=OID_ECDSA_SHA256))
    if "RSA" in families:
        items.append(_AttrOrOID(name="oid", value=OID_RSA))
        items.append(_AttrOrOID(name="oid", value=OID_SHA256_RSA))
    if "ED25519" in families:
        items.append(_AttrOrOID(name="oid", value=OID_ED25519))
    if require_san:
        items.append(
            _attribute(OID_EXTENSION_REQUEST, [core.ObjectIdentifier(OID_SUBJECT_ALT_NAME)])
        )
    if not items:
        return b""
    return CsrAttrs(items).dump()


def _attribute(oid: str, values: Sequence[core.Asn1Value]) -> _AttrOrOID:
    return _AttrOrOID(
        name="attribute",
        value=_Attribute(
            {"type": oid, "values": _Values([core.Any.load(v.dump()) for v in values])}
        ),
    )


def algorithm_like(parsed: pki_csr.ParsedCSR) -> str:
    """The key algorithm a serverkeygen CSR asks for: the type of the key it carries."""
    algorithm = parsed.key_info.algorithm
    if algorithm is None:
        return keys.KeyAlgorithm.EC_P256.value
    return algorithm.value


def serverkeygen_body(private_key_pem: str, certificate: x509.Certificate) -> tuple[bytes, str]:
    """RFC 7030 4.4.2: multipart/mixed with the PKCS#8 key and the certificate, each
    base64. Returns the body and its Content-Type."""
    key = keys.load_private_key(private_key_pem.encode())
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    boundary = "est-" + secrets.token_hex(12)
    parts = [
        ("application/pkcs8", b64(pkcs8)),
        (CERTS_ONLY, certs_only([certificate])),
    ]
    body = b""
    for content_type, payload in parts:
        body += (
            (
                f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n"
            ).encode()
            + payload
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/mixed; boundary="{boundary}"'
