"""django-q2 entry points for OCSP: safe to run twice, and on several workers at once."""

from __future__ import annotations

from issuance.ocsp import signing


def refresh_responses() -> int:
    """Scheduled: re-sign stored answers past half their validity; returns how many."""
    return signing.refresh_due()
