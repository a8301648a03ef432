"""Revocation status published: per-CA CRLs (OCSP answers are issuance.ocsp).

They select a CA's certificates by ``Certificate.ca``, which is set only on certificates
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
from pki import crl
from profiles.models import CertificateAuthority

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
