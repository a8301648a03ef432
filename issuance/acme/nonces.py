"""Anti-replay nonces, single-use, shared by every web process: in the database, or in the
cache when REDIS_URL is set (the local-memory cache is per process, so it is never used).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from issuance.acme.models import Nonce

_PREFIX = "acme-nonce:"


def _use_cache() -> bool:
    return bool(settings.REDIS_URL)


def issue() -> str:
    """A fresh nonce, stored until it is used or expires."""
    value = secrets.token_urlsafe(24)
    lifetime = settings.CERTPORTAL_ACME_NONCE_LIFETIME_SECONDS
    if _use_cache():
        cache.set(_PREFIX + value, 1, timeout=lifetime)
    else:
        Nonce.objects.create(value=value, expires_at=timezone.now() + timedelta(seconds=lifetime))
    return value


def consume(value: str) -> bool:
    """Use a nonce: True once for a nonce we issued that has not expired, False otherwise.
    The delete is the claim, so two processes racing on one nonce cannot both win."""
    if not value or len(value) > 64:
        return False
    if _use_cache():
        return bool(cache.delete(_PREFIX + value))
    deleted, _ = Nonce.objects.filter(value=value, expires_at__gt=timezone.now()).delete()
    return deleted == 1


def purge_expired() -> int:
    """Scheduled: drop expired nonces from the database store."""
    deleted, _ = Nonce.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
