"""django-q2 entry points for issuance: take ids, call services, safe to run twice."""

from __future__ import annotations

from django.utils import timezone

from issuance import revocation
from profiles.choices import CAStatus
from profiles.models import CertificateAuthority


def refresh_crl(ca_id: int) -> None:
    """Rebuild one CA's CRL if it is stale or close to nextUpdate (no-op otherwise)."""
    revocation.rebuild_crl(ca_id)


def refresh_due_crls() -> int:
    """Scheduled: rebuild every CRL that is stale or due; returns how many were rebuilt."""
    rebuilt = 0
    for ca in CertificateAuthority.objects.exclude(status=CAStatus.PENDING_CERTIFICATE).only(
        "pk", "crl_stale", "crl_der", "crl_next_update"
    ):
        if not revocation.crl_is_fresh(ca, timezone.now()):
            revocation.rebuild_crl(ca.pk)
            rebuilt += 1
    return rebuilt


def mark_expired() -> int:
    """Scheduled: active certificates past notAfter become expired."""
    from issuance.services import expire_certificates

    return expire_certificates()


def expire_pending_requests() -> int:
    """Scheduled: end requests held for approval past their expiry."""
    from issuance import services

    return services.expire_pending_requests()
