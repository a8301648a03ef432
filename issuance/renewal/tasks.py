"""django-q2 entry points of the renewal sweep: safe to run twice, or on two clusters."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from certportal import cluster, queue
from issuance.renewal import sweep

RENEWAL_FANOUT = 8


def renew_due_certificates() -> int:
    """Scheduled: plan new certificates, then spread the due ones over the workers: one
    task per batch, up to RENEWAL_FANOUT; each task claims its own rows, so running
    this twice, or on two clusters, renews nothing twice. Returns the due count."""
    while sweep.plan():
        pass
    count = sweep.due(timezone.now()).count()
    tasks = min(-(-count // settings.CERTPORTAL_RENEWAL_BATCH), RENEWAL_FANOUT)
    for index in range(tasks):
        queue.enqueue("issuance.renewal.tasks.renew_certificates", task_name=f"renewal-{index}")
    return count


def renew_certificates() -> int:
    """Renew due certificates until none is left; returns how many were renewed here.
    When the cluster is stopping it returns after the batch in hand and queues itself
    again, so the stop is not held until every due certificate is renewed."""
    renewed = sweep.renew_due(stop=cluster.stop_requested).renewed
    if cluster.stop_requested():
        queue.enqueue("issuance.renewal.tasks.renew_certificates", task_name="renewal-resumed")
    return renewed
