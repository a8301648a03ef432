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


# --- Automatic renewal (issuance.renewal) ------------------------------------------------

RENEWAL_FANOUT = 8


def renew_due_certificates() -> int:
    """Scheduled: plan new certificates, then spread the due ones over the workers: one
    task per batch, up to RENEWAL_FANOUT; each task claims its own rows, so running
    this twice, or on two clusters, renews nothing twice. Returns the due count."""
    from django.conf import settings

    from certportal import queue
    from issuance import renewal

    while renewal.plan():
        pass
    count = renewal.due(timezone.now()).count()
    tasks = min(-(-count // settings.CERTPORTAL_RENEWAL_BATCH), RENEWAL_FANOUT)
    for index in range(tasks):
        queue.enqueue("issuance.tasks.renew_certificates", task_name=f"renewal-{index}")
    return count


def renew_certificates() -> int:
    """Renew due certificates until none is left; returns how many were renewed here.
    When the cluster is stopping it returns after the batch in hand and queues itself
    again, so the stop is not held until every due certificate is renewed."""
    from certportal import cluster, queue
    from issuance import renewal

    renewed = renewal.renew_due(stop=cluster.stop_requested).renewed
    if cluster.stop_requested():
        queue.enqueue("issuance.tasks.renew_certificates", task_name="renewal-resumed")
    return renewed


def expire_pending_requests() -> int:
    """Scheduled: end requests held for approval past their expiry."""
    from issuance import services

    return services.expire_pending_requests()
