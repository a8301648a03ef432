"""OCSP (RFC 6960) request parsing and response signing."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from pki.crl import reason_flag
from pki.errors import DecodeError
from pki.keys import PrivateKey, signing_hash

MAX_OCSP_REQUEST_BYTES = 8192
_T = TypeVar("_T")

_STATUSES = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}
_ERROR_STATUSES = {
    "malformed_request": ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
    "internal_error": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
    "try_later": ocsp.OCSPResponseStatus.TRY_LATER,
    "unauthorized": ocsp.OCSPResponseStatus.UNAUTHORIZED,
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class OCSPQuery:
    serial: int
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    hash_algorithm: hashes.HashAlgorithm
    nonce: bytes | None


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def parse_ocsp_request(data: bytes) -> OCSPQuery:
    """Decode a DER OCSPRequest holding exactly one single request."""
    if not data:
        raise DecodeError("OCSP request is empty")
    if len(data) > MAX_OCSP_REQUEST_BYTES:
        raise DecodeError(f"OCSP request is larger than {MAX_OCSP_REQUEST_BYTES} bytes")
    try:
        request = ocsp.load_der_ocsp_request(data)
        return OCSPQuery(
            serial=request.serial_number,
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            hash_algorithm=request.hash_algorithm,
            nonce=_nonce(request),
        )
    except NotImplementedError:
        # cryptography only models single-request messages; so do we.
        raise DecodeError("OCSP requests must contain exactly one certificate") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DecodeError(f"OCSP request is malformed: {exc}") from None


@functools.lru_cache(maxsize=64)
def _cert_id_hashes(cert_der: bytes, algorithm_name: str) -> tuple[bytes, bytes]:
    cert = x509.load_der_x509_certificate(cert_der)
    algorithm = _HASHES[algorithm_name]()
    # A request "about the CA itself" makes cryptography hash the exact subjectPublicKey
    # bits. Its name hash is of the CA's *issuer*, though, so the subject is hashed here,
    # from the original encoding (asn1crypto keeps it) rather than a re-encoding.
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, cert, algorithm).build()
    subject_der = asn1_x509.Certificate.load(cert_der)["tbs_certificate"]["subject"].dump()
    name_hash = hashes.Hash(algorithm)
    name_hash.update(subject_der)
    return name_hash.finalize(), request.issuer_key_hash


def _hashes_for(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    if algorithm.name not in _HASHES:
        raise ValueError(f"Unsupported OCSP hash algorithm {algorithm.name}")
    return _cert_id_hashes(cert.public_bytes(serialization.Encoding.DER), algorithm.name)


def issuer_name_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """Hash of the DER subject name of ``cert`` (the issuer in a CertID)."""
    return _hashes_for(cert, algorithm)[0]


def issuer_key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """Hash of the subjectPublicKey BIT STRING contents of ``cert``."""
    return _hashes_for(cert, algorithm)[1]


def query_matches_issuer(query: OCSPQuery, cert: x509.Certificate) -> bool:
    """Whether the query's CertID names ``cert`` as the issuer."""
    try:
        name_hash, key_hash = _hashes_for(cert, query.hash_algorithm)
    except ValueError:
        return False
    return name_hash == query.issuer_name_hash and key_hash == query.issuer_key_hash


def build_ocsp_response(
    query: OCSPQuery,
    *,
    issuer_cert: x509.Certificate,
    responder_cert: x509.Certificate,
    responder_key: PrivateKey,
    status: str,
    revoked_at: datetime | None = None,
    reason: str | None = None,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """Signed, DER-encoded successful OCSP response for ``query``.

    ``issuer_cert`` is the CA that issued the certificate in question; when the responder is
    a delegated signer its certificate is embedded so clients can validate the chain.
    """
    cert_status = _lookup(_STATUSES, status, "certificate status")
    revoked = cert_status is ocsp.OCSPCertStatus.REVOKED
    if revoked and revoked_at is None:
        raise ValueError("A revoked status needs revoked_at")
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=query.issuer_name_hash,
        issuer_key_hash=query.issuer_key_hash,
        serial_number=query.serial,
        algorithm=query.hash_algorithm,
        cert_status=cert_status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=revoked_at if revoked else None,
        revocation_reason=reason_flag(reason) if revoked else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder_cert)
    if responder_cert != issuer_cert:
        builder = builder.certificates([responder_cert])
    if query.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(query.nonce), critical=False)
    response = builder.sign(responder_key, signing_hash(responder_key))
    return response.public_bytes(serialization.Encoding.DER)


def response_validity(der: bytes) -> tuple[datetime, datetime | None]:
    """thisUpdate and nextUpdate of a successful DER response (ValueError otherwise)."""
    response = ocsp.load_der_ocsp_response(der)
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ValueError("not a successful OCSP response")
    return response.this_update_utc, response.next_update_utc


def _lookup(table: dict[str, _T], key: str, what: str) -> _T:
    try:
        return table[key]
    except KeyError:
        raise ValueError(f"Unknown {what} {key!r} (expected one of {sorted(table)})") from None


def ocsp_error_response(kind: str) -> bytes:
    """Unsigned error response for "malformed_request", "internal_error", "try_later" or
    "unauthorized" (ValueError otherwise)."""
    status = _lookup(_ERROR_STATUSES, kind, "OCSP error kind")
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(status)
    return response.public_bytes(serialization.Encoding.DER)
