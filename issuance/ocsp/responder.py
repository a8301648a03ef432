"""Answering OCSP requests (RFC 6960, RFC 5019 for the pre-signed, cacheable ones).

A nonce-free request with a SHA-1 CertID is answered from the stored answer, in one
query that matches the CA, the serial, the CertID's issuer hashes and the configured
responder kind together; nothing is signed. Anything else (a nonce, another hash, a
certificate with no current stored answer, an unknown serial) is signed live, and a
live answer about a known certificate is stored for the next question.

Both CA selection and answers use ``Certificate.ca``, which is set only on certificates
the CA verifiably signed: an external certificate is ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from issuance.models import Certificate
from issuance.ocsp import signing
from issuance.ocsp.models import OCSPResponse
from pki import certs, ocsp
from pki.errors import DecodeError
from profiles.choices import CAStatus
from profiles.models import CertificateAuthority


@dataclass(frozen=True)
class Answer:
    """A DER OCSP response; the validity period is set on answers a cache may keep."""

    der: bytes
    this_update: datetime | None = None
    next_update: datetime | None = None


def error(kind: str) -> Answer:
    return Answer(ocsp.ocsp_error_response(kind))


def answer(slug: str, request_der: bytes) -> Answer | None:
    """The answer to one DER OCSPRequest sent to CA ``slug``; None if there is no such
    published CA (the caller answers 404)."""
    try:
        query = ocsp.parse_ocsp_request(request_der)
    except DecodeError:
        return error("malformed_request") if _published(slug) else None
    now = timezone.now()
    if query.nonce is None and isinstance(query.hash_algorithm, type(signing.SHA1)):
        stored = _stored(slug, query, now)
        if stored is not None:
            return stored
    ca = _published(slug).defer("crl_der").first()
    if ca is None:
        return None
    return _live(ca, query, now)


def _published(slug: str) -> QuerySet[CertificateAuthority]:
    return CertificateAuthority.objects.exclude(status=CAStatus.PENDING_CERTIFICATE).filter(
        slug=slug
    )


def _stored(slug: str, query: ocsp.OCSPQuery, now: datetime) -> Answer | None:
    row = (
        OCSPResponse.objects.filter(
            ca__slug=slug,
            serial_number=certs.serial_hex(query.serial),
            issuer_hash=query.issuer_name_hash + query.issuer_key_hash,
            responder=settings.CERTPORTAL_OCSP_RESPONDER,
            next_update__gt=now,
        )
        .values_list("response_der", "this_update", "next_update")
        .first()
    )
    if row is None:
        return None
    der, this_update, next_update = row
    return Answer(bytes(der), this_update, next_update)


def _live(ca: CertificateAuthority, query: ocsp.OCSPQuery, now: datetime) -> Answer:
    if not ca.certificate_pem:
        return error("unauthorized")
    signer = signing.signer_for(ca)
    if not ocsp.query_matches_issuer(query, signer.issuer):
        # Not one of ours: RFC 6960 2.3 says "unauthorized", not "unknown".
        return error("unauthorized")
    serial_hex = certs.serial_hex(query.serial)
    row = (
        Certificate.objects.filter(ca_id=ca.pk, serial_number=serial_hex)
        .values_list("status", "revoked_at", "revocation_reason")
        .first()
    )
    status = signing.Status("unknown") if row is None else signing.Status.of(*row)
    der, this_update, next_update = signing.sign(signer, query, status, now)
    if query.nonce is not None:
        return Answer(der)
    if row is not None and isinstance(query.hash_algorithm, type(signing.SHA1)):
        signing.keep(
            OCSPResponse(
                ca_id=ca.pk,
                serial_number=serial_hex,
                issuer_hash=query.issuer_name_hash + query.issuer_key_hash,
                responder=settings.CERTPORTAL_OCSP_RESPONDER,
                response_der=der,
                this_update=this_update,
                next_update=next_update,
            ),
            now,
        )
    return Answer(der, this_update, next_update)
