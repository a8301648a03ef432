"""django-q2 entry points for alerting: thin, idempotent, safe on many workers."""

from __future__ import annotations

from alerts import services
from certportal import queue


def scan_expiring_certificates() -> int:
    """Scheduled: write the expiry alerts whose thresholds were crossed, then send."""
    written = services.scan_expiring()
    services.send_due()
    return written


def send_due_deliveries() -> int:
    """Queued after new deliveries, and scheduled for retries and dead workers' claims."""
    queue.started(services.SEND_TASK)
    return services.send_due()
