"""django-q2 entry points for SCEP: safe to run twice or in parallel (each RA rollover
happens under a row lock)."""

from __future__ import annotations

from issuance.scep import services


def roll_ra_certificates() -> int:
    """Scheduled: announce successor RA certificates before expiry, switch near it."""
    return services.roll_all_ras()
