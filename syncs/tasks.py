"""django-q2 entry points for syncs: thin, idempotent, safe on many workers."""

from __future__ import annotations

from certportal.events import Actor
from syncs import lifecycle, services
from syncs.models import Sync


def push_due() -> int:
    """Queued after items become due, and scheduled for retries and dead workers' claims."""
    return lifecycle.push_due()


def sweep_expired() -> int:
    """Scheduled: queue removal of expired certificates where a sync says so, then push."""
    queued = lifecycle.sweep_expired()
    lifecycle.push_due()
    return queued


def check_drift(sync_id: int, repair: bool, actor_label: str) -> int:
    """Queued by the drift-check action: read the destination in a worker, not a request."""
    sync = Sync.objects.select_related("connection", "application").filter(pk=sync_id).first()
    if sync is None:
        return 0
    run = services.check_drift(sync, repair=repair, actor=Actor(label=actor_label))
    if repair:
        lifecycle.push_due()
    return run.pk
