"""Anti-replay nonces (RFC 8555 6.5): single-use, expiring, valid in every web process.

A nonce carries its own expiry and random part, authenticated with an HMAC under the
project's secret key, so issuing one writes nothing (every ACME response carries one).
Using one records its random part in a store shared by every process until the nonce
would have expired: the cache when REDIS_URL is set (an atomic add), otherwise the
database (a unique row, written only after the request's signature is checked: a
stranger's unsigned request writes nothing). The first use wins; a second, a forged or
an expired nonce is refused. Changing SECRET_KEY invalidates outstanding nonces: clients
get badNonce with a fresh one and retry, as RFC 8555 provides.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import struct
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from certportal.cache import is_shared
from issuance.acme.models import Nonce

_PREFIX = "acme-nonce:"
_SALT = "certportal.acme.nonce"
_RANDOM = 16
_MAC = 16
_LENGTH = 8 + _RANDOM + _MAC


def _mac(body: bytes) -> bytes:
    return salted_hmac(_SALT, body, algorithm="sha256").digest()[:_MAC]


def issue() -> str:
    """A fresh nonce: expiry, random part and MAC, base64url without padding."""
    expires = int(time.time()) + settings.CERTPORTAL_ACME_NONCE_LIFETIME_SECONDS
    body = struct.pack(">Q", expires) + secrets.token_bytes(_RANDOM)
    return base64.urlsafe_b64encode(body + _mac(body)).rstrip(b"=").decode()


@dataclass(frozen=True)
class Ticket:
    """A nonce we issued that has not expired; whether it was used before is not known
    yet. ``first_use()`` records the use."""

    key: str
    remaining: int

    def first_use(self) -> bool:
        """Record the use: True the first time, False for a replay. Without Redis this
        writes a row, so call it only once the request's signature has been checked."""
        if is_shared():
            return bool(cache.add(_PREFIX + self.key, 1, timeout=self.remaining))
        try:
            with transaction.atomic():
                Nonce.objects.create(
                    value=self.key, expires_at=timezone.now() + timedelta(seconds=self.remaining)
                )
        except IntegrityError:
            return False
        return True


def check(value: str) -> Ticket | None:
    """A nonce's MAC and expiry, without touching the store; None when it is not one of
    ours or has expired."""
    if not value or len(value) > 64:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _LENGTH:
        return None
    body, mac = raw[:-_MAC], raw[-_MAC:]
    if not hmac.compare_digest(mac, _mac(body)):
        return None
    (expires,) = struct.unpack(">Q", body[:8])
    remaining = expires - int(time.time())
    if remaining <= 0:
        return None
    return Ticket(body[8:].hex(), remaining)


def consume(value: str) -> bool:
    """Use a nonce: True once for an unexpired nonce we issued, False otherwise."""
    ticket = check(value)
    return ticket is not None and ticket.first_use()


def purge_expired() -> int:
    """Scheduled: drop the database store's records of nonces that have expired anyway."""
    deleted, _ = Nonce.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
