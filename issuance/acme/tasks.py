"""django-q2 entry points for ACME: take ids, call services, safe to run twice."""

from __future__ import annotations

from issuance.acme import services


def validate_challenge(challenge_id: str) -> str | None:
    """Check one challenge the client has answered; settles its authorization and order."""
    return services.validate_challenge(challenge_id)


def expire_objects() -> int:
    """Scheduled: expire stale orders and authorizations, purge used-up nonces."""
    return services.expire_objects()
