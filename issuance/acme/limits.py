"""ACME rate limits and the pending-authorization cap: each refusal is a rateLimited
problem document with Retry-After (RFC 8555 6.6).

newAccount and newOrder count in fixed windows in the cache (``certportal.cache``:
Redis with REDIS_URL, shared by every process; without it each web process counts on
its own). Failed validations happen in the worker, so they are read from the
challenges' ``failed_at`` over the last window instead: every process sees the same
count with or without Redis. Rates come from settings as (count, seconds), or None
for no limit.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone

from certportal import cache
from issuance.acme.choices import AuthorizationStatus, OrderStatus
from issuance.acme.messages import AcmeProblem
from issuance.acme.models import Account, Authorization, Challenge


def _refuse(detail: str, retry_after: float) -> AcmeProblem:
    return AcmeProblem("rateLimited", detail, 429, retry_after=max(1, math.ceil(retry_after)))


def _hit(setting: str, key: str, what: str) -> None:
    """Count one event against the rate named by ``setting``; refused over it."""
    rate: tuple[int, int] | None = getattr(settings, setting)
    if rate is None:
        return
    limit, seconds = rate
    window = cache.count_in_window(f"acme-limit:{key}", seconds)
    if window.count > limit:
        raise _refuse(f"Too many {what}: at most {limit} per {_period(seconds)}.", window.ends_in)


def _period(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"


def new_account(application_id: int, source_ip: str | None, *, verified: bool) -> None:
    """An account is about to be created: per source address before its EAB is checked
    (strangers included), per Application once it is (so strangers cannot use up an
    Application's allowance)."""
    if not verified:
        _hit(
            "CERTPORTAL_ACME_NEW_ACCOUNT_RATE_PER_SOURCE",
            f"account-source:{source_ip or '-'}",
            "new accounts from this address",
        )
    else:
        _hit(
            "CERTPORTAL_ACME_NEW_ACCOUNT_RATE_PER_APPLICATION",
            f"account-app:{application_id}",
            "new accounts for this Application",
        )


def new_order(account: Account, identifiers: int) -> None:
    """A newOrder for ``identifiers`` names: the account's and the Application's order
    rates, their failed validations, and the account's pending authorizations."""
    _hit("CERTPORTAL_ACME_NEW_ORDER_RATE_PER_ACCOUNT", f"order-acct:{account.pk}", "new orders")
    _hit(
        "CERTPORTAL_ACME_NEW_ORDER_RATE_PER_APPLICATION",
        f"order-app:{account.application_id}",
        "new orders for this Application",
    )
    _failed_validations(account)
    _pending_authorizations(account, identifiers)


def _failed_validations(account: Account) -> None:
    now = timezone.now()
    for setting, scope, what in (
        (
            "CERTPORTAL_ACME_FAILED_VALIDATION_RATE_PER_ACCOUNT",
            Q(authorization__order__account_id=account.pk),
            "failed validations for this account",
        ),
        (
            "CERTPORTAL_ACME_FAILED_VALIDATION_RATE_PER_APPLICATION",
            Q(authorization__order__account__application_id=account.application_id),
            "failed validations for this Application",
        ),
    ):
        rate: tuple[int, int] | None = getattr(settings, setting)
        if rate is None:
            continue
        limit, seconds = rate
        failures = Challenge.objects.filter(scope, failed_at__gt=now - timedelta(seconds=seconds))
        count = failures.count()
        if count >= limit:
            # Room for one more once the failure that brings the count under the limit
            # has left the window.
            ordered = failures.order_by("failed_at").values_list("failed_at", flat=True)
            leaving = ordered[count - limit] or now
            retry = (leaving + timedelta(seconds=seconds) - now).total_seconds()
            raise _refuse(f"Too many {what}: at most {limit} per {_period(seconds)}.", retry)


def _pending_authorizations(account: Account, adding: int) -> None:
    """Pending authorizations of the account's pending orders, at most the cap (RFC 8555
    leaves the limit to the server; orders that failed keep theirs, but they count no
    more)."""
    cap = settings.CERTPORTAL_ACME_MAX_PENDING_AUTHORIZATIONS
    now = timezone.now()
    pending = Authorization.objects.filter(
        order__account_id=account.pk,
        order__status=OrderStatus.PENDING,
        status=AuthorizationStatus.PENDING,
        expires_at__gt=now,
    ).aggregate(count=Count("pk"), first=Min("expires_at"))
    if pending["count"] + adding > cap:
        first = pending["first"] or now
        raise _refuse(
            f"This account has {pending['count']} pending authorizations; at most {cap}. "
            "Finish or deactivate some first.",
            (first - now).total_seconds(),
        )
