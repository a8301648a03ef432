"""Revocation status published: per-CA CRLs and OCSP answers.

Both select a CA's certificates by ``Certificate.ca``, which is set only on certificates
that CA verifiably signed (the pipeline's, and imports checked by ``issuance.trust``): an
external certificate never reaches a CRL, and OCSP answers ``unknown`` for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from issuance.choices import CertificateStatus
from issuance.models import Certificate
from pki import certs, crl, ocsp
from pki.errors import DecodeError
from profiles.models import CertificateAuthority, ocsp_responder
from profiles.services import ensure_ocsp_signer

# Revoked certificates stay on the CRL this long after they expire, so a relying party
# that checks just after expiry still sees the revocation.
CRL_EXPIRED_GRACE = timedelta(days=1)


def crl_is_fresh(ca: CertificateAuthority, now: datetime) -> bool:
    if ca.crl_stale or ca.crl_der is None or ca.crl_next_update is None:
        return False
    margin = timedelta(hours=settings.CERTPORTAL_CRL_REFRESH_MARGIN_HOURS)
    return ca.crl_next_update - margin > now


def current_crl(ca: CertificateAuthority) -> bytes:
    """The CA's CRL in DER, rebuilt first if a revocation or nextUpdate calls for it."""
    if crl_is_fresh(ca, timezone.now()):
        return bytes(ca.crl_der)  # type: ignore[arg-type]
    return rebuild_crl(ca.pk)


def rebuild_crl(ca_id: int, *, force: bool = False) -> bytes:
    """Build, sign and store a new CRL with the next CRL number.

    The CA row is locked for the rebuild; a revocation marks the CA stale by updating
    the same row, so it waits and its mark survives, and no revocation is ever lost.
    """
    with transaction.atomic():
        ca = CertificateAuthority.objects.select_for_update().get(pk=ca_id)
        now = timezone.now()
        if not force and crl_is_fresh(ca, now):
            return bytes(ca.crl_der)  # type: ignore[arg-type]
        revoked = (
            Certificate.objects.filter(
                ca_id=ca_id,
                status=CertificateStatus.REVOKED,
                not_after__gt=now - CRL_EXPIRED_GRACE,
            )
            .values_list("serial_number", "revoked_at", "revocation_reason")
            .iterator(chunk_size=5000)
        )
        entries = (
            crl.RevokedEntry(serial=int(serial, 16), revoked_at=at or now, reason=reason or None)
            for serial, at, reason in revoked
        )
        number = ca.crl_number + 1
        next_update = now + timedelta(hours=settings.CERTPORTAL_CRL_VALIDITY_HOURS)
        der = crl.build_crl(
            ca.issuer(), entries, crl_number=number, this_update=now, next_update=next_update
        ).public_bytes(Encoding.DER)
        CertificateAuthority.objects.filter(pk=ca_id).update(
            crl_number=F("crl_number") + 1,
            crl_der=der,
            crl_this_update=now,
            crl_next_update=next_update,
            crl_stale=False,
        )
    return der


def ocsp_response(ca: CertificateAuthority, request_der: bytes) -> bytes:
    """Answer one OCSP request for a certificate of this CA (RFC 6960)."""
    try:
        query = ocsp.parse_ocsp_request(request_der)
    except DecodeError:
        return ocsp.ocsp_error_response("malformed_request")
    if not ca.certificate_pem:
        return ocsp.ocsp_error_response("unauthorized")
    issuer = ca.issuer()
    if query.issuer_key_hash != ocsp.issuer_key_hash(issuer.certificate, query.hash_algorithm):
        # Not one of ours: RFC 6960 2.3 says "unauthorized", not "unknown".
        return ocsp.ocsp_error_response("unauthorized")
    row = (
        Certificate.objects.filter(ca_id=ca.pk, serial_number=certs.serial_hex(query.serial))
        .values("status", "revoked_at", "revocation_reason")
        .first()
    )
    now = timezone.now()
    if row is None:
        status, revoked_at, reason = "unknown", None, None
    elif row["status"] == CertificateStatus.REVOKED:
        status, revoked_at, reason = "revoked", row["revoked_at"], row["revocation_reason"] or None
    else:
        status, revoked_at, reason = "good", None, None
    responder_cert, responder_key = issuer.certificate, issuer.private_key
    if settings.CERTPORTAL_OCSP_RESPONDER == "delegated":
        responder_cert, responder_key = ocsp_responder(ensure_ocsp_signer(ca))
    return ocsp.build_ocsp_response(
        query,
        issuer_cert=issuer.certificate,
        responder_cert=responder_cert,
        responder_key=responder_key,
        status=status,
        revoked_at=revoked_at,
        reason=reason,
        this_update=now,
        next_update=now + timedelta(hours=settings.CERTPORTAL_OCSP_VALIDITY_HOURS),
    )
