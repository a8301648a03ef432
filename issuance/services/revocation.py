"""A certificate's status after issue: revocation (keyCompromise blocks the key),
hold and its release, the CRL marked stale and rebuilt, expiry."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import DateTimeField, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from certportal import queue
from certportal.event_types import EventType
from certportal.events import Actor, record
from certportal.refusals import MessageRefused
from issuance.choices import (
    CertificateStatus,
    RevocationReason,
)
from issuance.models import BlockedKey, Certificate
from issuance.ocsp import signing as ocsp_signing
from issuance.services._common import certificate_event_data
from pki import keys
from profiles.models import CertificateAuthority

logger = logging.getLogger(__name__)


class RevocationError(MessageRefused):
    """A revocation refused (already revoked, unknown reason), or a hold release refused."""

    default_code = "revocation_refused"
    conflict_codes = frozenset({"already_revoked", "not_on_hold"})


def revoke(
    certificate: Certificate, *, reason: str, actor: Actor, revoked_at: datetime | None = None
) -> Certificate:
    """Revoke with an RFC 5280 reason; the CA's CRL is marked stale and rebuilt.

    A certificate on hold (certificateHold) may still be revoked for good with another
    reason; it keeps the date of its hold. keyCompromise also blocks the key in the same
    transaction, so no later request (renewal with the same key included) can use it.
    """
    if reason not in RevocationReason.values:
        allowed = ", ".join(RevocationReason.values)
        raise RevocationError(
            f"Unknown revocation reason {reason!r}; use one of {allowed}.",
            "reason",
            code="bad_reason",
        )
    when = revoked_at or timezone.now()
    revocable = ~Q(status=CertificateStatus.REVOKED)
    if reason != RevocationReason.CERTIFICATE_HOLD:
        revocable |= Q(revocation_reason=RevocationReason.CERTIFICATE_HOLD)
    with transaction.atomic():
        updated = Certificate.objects.filter(revocable, pk=certificate.pk).update(
            status=CertificateStatus.REVOKED,
            revoked_at=Coalesce("revoked_at", Value(when, output_field=DateTimeField())),
            revocation_reason=reason,
        )
        if updated != 1:
            raise RevocationError("This certificate is already revoked.", code="already_revoked")
        was_on_hold = certificate.revocation_reason == RevocationReason.CERTIFICATE_HOLD
        certificate.status = CertificateStatus.REVOKED
        certificate.revocation_reason = reason
        if was_on_hold:
            certificate.refresh_from_db(fields=["revoked_at"])
        else:
            certificate.revoked_at = when
        _status_changed(certificate)
        data = {**certificate_event_data(certificate), "reason": reason}
        if reason == RevocationReason.KEY_COMPROMISE:
            data["blocked_key_spki_sha256"] = _block_key(certificate, actor)
        record(
            EventType.CERTIFICATE_REVOKED,
            actor=actor,
            obj=certificate,
            application=certificate.application,
            data=data,
        )
    return certificate


def _block_key(certificate: Certificate, actor: Actor) -> str:
    """Put the certificate's key on the blocked list (once: a second report is a no-op)."""
    digest = keys.spki_sha256(certificate.as_x509())
    BlockedKey.objects.bulk_create(
        [
            BlockedKey(
                spki_sha256=digest,
                reason=RevocationReason.KEY_COMPROMISE,
                certificate_id=certificate.pk,
                reported_by=actor.describe(),
            )
        ],
        ignore_conflicts=True,
    )
    return digest


def release_hold(certificate: Certificate, *, actor: Actor) -> Certificate:
    """Take a certificate off hold (revoked with certificateHold): it is valid again.

    The next CRL no longer lists it: RFC 5280 5.3.1 allows removeFromCRL only in delta
    CRLs, and the portal publishes full CRLs, where a released certificate is simply
    absent. OCSP answers good from the next request. The CA's CRL is marked stale and
    rebuilt, as for a revocation.
    """
    with transaction.atomic():
        status = _status_off_hold(certificate)
        updated = Certificate.objects.filter(
            pk=certificate.pk,
            status=CertificateStatus.REVOKED,
            revocation_reason=RevocationReason.CERTIFICATE_HOLD,
        ).update(status=status, revoked_at=None, revocation_reason="")
        if updated != 1:
            raise RevocationError(
                "This certificate is not on hold: only a certificateHold can be released.",
                code="not_on_hold",
            )
        certificate.status, certificate.revoked_at, certificate.revocation_reason = status, None, ""
        _status_changed(certificate)
        record(
            EventType.CERTIFICATE_HOLD_RELEASED,
            actor=actor,
            obj=certificate,
            application=certificate.application,
            data={**certificate_event_data(certificate), "status": status},
        )
    return certificate


def _status_off_hold(certificate: Certificate) -> str:
    """What a released certificate is now: expired, replaced while held, or active."""
    if certificate.not_after <= timezone.now():
        return CertificateStatus.EXPIRED
    if Certificate.objects.filter(replaces_id=certificate.pk).exists():
        return CertificateStatus.SUPERSEDED
    return CertificateStatus.ACTIVE


def _status_changed(certificate: Certificate) -> None:
    """The certificate's revocation status changed (its row is updated, and so is the
    instance): its OCSP answer is signed anew in this transaction, and its CA's CRL is
    marked stale, rebuilt after commit."""
    ocsp_signing.rewrite([certificate])
    if certificate.ca_id:
        CertificateAuthority.objects.filter(pk=certificate.ca_id).update(crl_stale=True)
        ca_id = certificate.ca_id
        transaction.on_commit(lambda: _queue_crl_refresh(ca_id))


def _queue_crl_refresh(ca_id: int) -> None:
    """After commit: rebuild the CRL early. The revocation is committed and the CA marked
    stale, so a broker that is down only delays the rebuild (the next fetch or the
    schedule does it); it must not turn the committed revocation into an error."""
    try:
        queue.enqueue("issuance.tasks.refresh_crl", ca_id, task_name=f"crl-refresh-{ca_id}")
    except Exception:
        logger.warning("could not queue the CRL rebuild; the next fetch will", exc_info=True)


def expire_certificates(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Mark active certificates past their notAfter as expired; returns how many.

    A conditional UPDATE per batch: two workers running this at once never double-count,
    because a row already expired no longer matches.
    """
    now = now or timezone.now()
    total = 0
    while True:
        ids = list(
            Certificate.objects.filter(
                status=CertificateStatus.ACTIVE, not_after__lte=now
            ).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return total
        with transaction.atomic():
            total += Certificate.objects.filter(pk__in=ids, status=CertificateStatus.ACTIVE).update(
                status=CertificateStatus.EXPIRED
            )
