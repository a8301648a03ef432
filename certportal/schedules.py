"""Background schedules, declared in code and installed idempotently by install_schedules.

Each points at a ``tasks`` module: entry points that take ids, load, and call a service."""

from __future__ import annotations

from dataclasses import dataclass

from django_q.models import Schedule


@dataclass(frozen=True)
class Declared:
    name: str
    func: str
    minutes: int


SCHEDULES = (
    Declared("crl-refresh", "issuance.tasks.refresh_due_crls", minutes=15),
    # Re-sign pre-signed OCSP answers well before their nextUpdate.
    Declared("ocsp-refresh", "issuance.ocsp.tasks.refresh_responses", minutes=15),
    Declared("certificate-expiry", "issuance.tasks.mark_expired", minutes=10),
    Declared("outbox-sweep", "certportal.tasks.sweep_outbox", minutes=1),
    Declared("renewal-sweep", "issuance.renewal.tasks.renew_due_certificates", minutes=10),
    Declared("expiry-alerts", "alerts.tasks.scan_expiring_certificates", minutes=15),
    Declared("alert-retries", "alerts.tasks.send_due_deliveries", minutes=1),
    # Expire stale ACME orders and authorizations, purge used nonces.
    Declared("acme-expiry", "issuance.acme.tasks.expire_objects", minutes=15),
    # Announce and switch SCEP RA certificates before they expire.
    Declared("scep-ra-rollover", "issuance.scep.tasks.roll_ra_certificates", minutes=60),
    # Sync retries and dead workers' claims; removal of expired certificates.
    Declared("sync-pushes", "syncs.tasks.push_due", minutes=1),
    Declared("sync-expiry", "syncs.tasks.sweep_expired", minutes=15),
    # End requests whose approval was not given in time.
    Declared("approval-expiry", "issuance.tasks.expire_pending_requests", minutes=15),
)


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
