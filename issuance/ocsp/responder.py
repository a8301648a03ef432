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

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.http import http_date

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
    stored = _stored(slug, query, now)
    if stored is not None:
        return stored
    ca = _published(slug).defer("crl_der").first()
    if ca is None:
        return None
    return _live(ca, query, now)


def stored_answer(slug: str, request_der: bytes) -> Answer | None:
    """The stored answer to a nonce-free SHA-1 request, if there is a current one; None
    for everything else (which ``answer`` handles)."""
    try:
        query = ocsp.parse_ocsp_request(request_der)
    except DecodeError:
        return None
    return _stored(slug, query, timezone.now())


def _published(slug: str) -> QuerySet[CertificateAuthority]:
    return CertificateAuthority.objects.exclude(status=CAStatus.PENDING_CERTIFICATE).filter(
        slug=slug
    )


def _stored(slug: str, query: ocsp.OCSPQuery, now: datetime) -> Answer | None:
    """One query on the answer's unique key: SQL on Django's connection rather than a
    queryset, whose construction cost twice the query itself on this, the busiest path
    (docs/performance.md, "OCSP"). Its validity is read from the signed answer."""
    if query.nonce is not None or not isinstance(query.hash_algorithm, type(signing.SHA1)):
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            _stored_sql(),
            [
                slug,
                certs.serial_hex(query.serial),
                query.issuer_name_hash + query.issuer_key_hash,
                settings.CERTPORTAL_OCSP_RESPONDER,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    der = bytes(row[0])
    this_update, next_update = ocsp.response_validity(der)
    if next_update is None or next_update <= now:
        return None
    return Answer(der, this_update, next_update)


@functools.cache
def _stored_sql() -> str:
    def name(model: type[Model], field: str) -> str:
        column = {f.name: f.column or f.name for f in model._meta.concrete_fields}[field]
        return connection.ops.quote_name(column)

    def table(model: type[Model]) -> str:
        return connection.ops.quote_name(model._meta.db_table)

    answers, cas = OCSPResponse, CertificateAuthority
    # Identifiers from the models' metadata, quoted; every value is a parameter.
    return (
        f"SELECT a.{name(answers, 'response_der')} FROM {table(answers)} a "  # noqa: S608
        f"JOIN {table(cas)} c ON c.{name(cas, 'id')} = a.{name(answers, 'ca')} "
        f"WHERE c.{name(cas, 'slug')} = %s AND a.{name(answers, 'serial_number')} = %s "
        f"AND a.{name(answers, 'issuer_hash')} = %s AND a.{name(answers, 'responder')} = %s"
    )


def caching_headers(answer: Answer) -> list[tuple[str, str]]:
    """RFC 5019 6.2: how long a cache may keep this answer, and its validators."""
    if answer.this_update is None or answer.next_update is None:
        return [("Cache-Control", "no-store")]
    left = max(int((answer.next_update - timezone.now()).total_seconds()), 0)
    return [
        ("Cache-Control", f"max-age={left}, public, no-transform, must-revalidate"),
        ("ETag", etag(answer)),
        ("Last-Modified", http_date(answer.this_update.timestamp())),
        ("Expires", http_date(answer.next_update.timestamp())),
    ]


def etag(answer: Answer) -> str:
    return '"' + hashlib.sha256(answer.der).hexdigest()[:32] + '"'


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
