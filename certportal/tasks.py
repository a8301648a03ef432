"""django-q2 entry points for the project-wide background work."""

from __future__ import annotations

from certportal import outbox


def sweep_outbox() -> int:
    """Scheduled: dispatch outbox events a crashed or busy worker left behind."""
    return outbox.sweep()
