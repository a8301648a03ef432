"""Verbs on API credentials; the only writers of ApiToken and ServiceAccount."""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from certportal import generation
from certportal.api.models import ApiToken, ServiceAccount
from certportal.event_types import EventType
from certportal.events import Actor, record
from certportal.refusals import MessageRefused

if TYPE_CHECKING:
    from applications.models import Application

TOKEN_PREFIX = "cpt_"
KEY_ID_LENGTH = 12
# Last use is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class TokenError(MessageRefused):
    """A credential operation refused (bad name, unknown role, expiry in the past)."""

    default_code = "invalid"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    user: Any,
    *,
    name: str,
    actor: Actor,
    expires_at: datetime | None = None,
    parent: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """A new token for the user; returns the row and the plaintext, which is never stored.

    `parent` is the token the request creating this one was authenticated with: the new
    token expires no later than it, and no later than CERTPORTAL_API_TOKEN_MAX_DAYS from
    now. An expiry beyond either is refused; no expiry gets the nearer of them.
    """
    if not name.strip():
        raise TokenError("Give the token a name.", "name")
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError("The expiry must be in the future.", "expires_at")
    expires_at = _bounded_expiry(expires_at, parent)
    key_id = secrets.token_hex(KEY_ID_LENGTH // 2)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name.strip(),
            key_id=key_id,
            secret_hash=_hash(secret),
            expires_at=expires_at,
            created_by_id=actor.user_id,
        )
        record(
            EventType.API_TOKEN_CREATED,
            actor=actor,
            obj=token,
            application=_application_of(user),
            data={"user": user.get_username(), "name": token.name, "key_id": key_id},
            outbox=False,
        )
    return token, f"{TOKEN_PREFIX}{key_id}{secret}"


def _bounded_expiry(expires_at: datetime | None, parent: ApiToken | None) -> datetime | None:
    ceilings: list[tuple[datetime, str]] = []
    max_days = settings.CERTPORTAL_API_TOKEN_MAX_DAYS
    if max_days:
        ceilings.append(
            (timezone.now() + timedelta(days=max_days), f"A token lives at most {max_days} days.")
        )
    if parent is not None and parent.expires_at is not None:
        ceilings.append(
            (
                parent.expires_at,
                "A token cannot outlive the token that creates it "
                f"(which expires {parent.expires_at.isoformat()}).",
            )
        )
    for ceiling, message in ceilings:
        if expires_at is not None and expires_at > ceiling:
            raise TokenError(message, "expires_at")
    if expires_at is None and ceilings:
        return min(ceiling for ceiling, _message in ceilings)
    return expires_at


def revoke_token(token: ApiToken, *, actor: Actor) -> None:
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            generation.changed()  # every process drops its cached copy at commit
            record(
                EventType.API_TOKEN_REVOKED,
                actor=actor,
                obj=token,
                application=_application_of(token.user),
                data={"user": token.user.get_username(), "key_id": token.key_id},
                outbox=False,
            )


def authenticate(raw: str, *, source_ip: str | None = None) -> ApiToken | None:
    """The usable token for a presented bearer value, or None. Compares in constant time."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    body = raw[len(TOKEN_PREFIX) :]
    key_id, secret = body[:KEY_ID_LENGTH], body[KEY_ID_LENGTH:]
    cached = _TOKENS.get(key_id, lambda: _load_token(key_id))
    if cached is None or not hmac.compare_digest(cached.secret_hash, _hash(secret)):
        return None
    if not cached.is_usable or not cached.user.is_active:
        return None
    token = copy.copy(cached)
    token.user = copy.copy(cached.user)
    _touch(token, source_ip)
    return token


def _load_token(key_id: str) -> ApiToken | None:
    try:
        return ApiToken.objects.select_related("user").get(key_id=key_id)
    except ApiToken.DoesNotExist:
        return None


# Every API request looks its token up. With Redis the token and its user are kept per
# process until the configuration generation moves: on revocation, on any save of a
# token or a user (deactivation) and on permission changes. Without Redis, always from
# the database. Expiry is checked on every request.
_TOKENS: generation.Cache[ApiToken] = generation.Cache(
    depends_on=("api.ApiToken", settings.AUTH_USER_MODEL), shared_only=True
)
# When this process last wrote each token's last use (the cached copy's is stale).
_TOUCHED: dict[str, datetime] = {}


def _touch(token: ApiToken, source_ip: str | None) -> None:
    now = timezone.now()
    last = max((t for t in (_TOUCHED.get(token.key_id), token.last_used_at) if t), default=None)
    if last is not None and now - last < LAST_USED_RESOLUTION:
        return
    # Conditional update: concurrent requests in the same minute write once between them.
    stale = now - LAST_USED_RESOLUTION
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=token.pk
    ).update(last_used_at=now, last_used_ip=source_ip)
    if len(_TOUCHED) >= 10_000:
        _TOUCHED.clear()
    _TOUCHED[token.key_id] = token.last_used_at = now


def people_behind(user_id: int) -> set[int]:
    """The people who hold a user's machine credentials: who created the service account
    and who minted its tokens (the user itself excluded). Approvals treat them as the
    requester of what those credentials request."""
    people = set(
        ServiceAccount.objects.filter(user_id=user_id).values_list("created_by_id", flat=True)
    )
    people |= set(ApiToken.objects.filter(user_id=user_id).values_list("created_by_id", flat=True))
    people.discard(None)
    people.discard(user_id)
    return people


def is_service_account(user: Any) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return ServiceAccount.objects.filter(user_id=user.pk).exists()


def _application_of(user: Any) -> Application | None:
    account = ServiceAccount.objects.filter(user_id=user.pk).select_related("application").first()
    return account.application if account else None
