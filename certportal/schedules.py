"""Background schedules, declared in code and installed idempotently by install_schedules."""

from __future__ import annotations

from dataclasses import dataclass

from django_q.models import Schedule


@dataclass(frozen=True)
class Declared:
    name: str
    func: str
    minutes: int


SCHEDULES = (Declared("crl-refresh", "issuance.tasks.refresh_due_crls", minutes=15),)


def install() -> list[str]:
    """Create or update each declared schedule by name; returns the names touched."""
    for item in SCHEDULES:
        Schedule.objects.update_or_create(
            name=item.name,
            defaults={
                "func": item.func,
                "schedule_type": Schedule.MINUTES,
                "minutes": item.minutes,
                "repeats": -1,
            },
        )
    return [item.name for item in SCHEDULES]
