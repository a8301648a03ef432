"""ACME challenges and authorizations: answering a challenge, its validation off
the request path (the task), settling the authorization and order, deactivation."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from certportal import queue, wakeups
from certportal.cache import is_shared
from certportal.event_types import EventType
from certportal.events import record
from issuance.acme import messages, validation
from issuance.acme.choices import (
    AuthorizationStatus,
    ChallengeStatus,
    ChallengeType,
    OrderStatus,
)
from issuance.acme.messages import AcmeProblem
from issuance.acme.models import (
    Authorization,
    Challenge,
    Order,
)
from issuance.acme.services.authentication import Authenticated

logger = logging.getLogger(__name__)


# --- Challenges -------------------------------------------------------------------------


def answer_challenge(challenge: Challenge, auth: Authenticated) -> Challenge:
    """The client says the challenge is ready: validate it off the request path."""
    if auth.post_as_get:
        return challenge
    authz = challenge.authorization
    if authz.status != AuthorizationStatus.PENDING or challenge.status != ChallengeStatus.PENDING:
        return challenge
    if authz.expires_at <= timezone.now():
        raise AcmeProblem("malformed", "The authorization has expired.")
    updated = Challenge.objects.filter(pk=challenge.pk, status=ChallengeStatus.PENDING).update(
        status=ChallengeStatus.PROCESSING
    )
    if updated:
        challenge.status = ChallengeStatus.PROCESSING
        challenge_id = challenge.pk
        transaction.on_commit(lambda: _queue_validation(challenge_id))
    return challenge


def _queue_validation(challenge_id: str) -> None:
    queue.enqueue(
        "issuance.acme.tasks.validate_challenge",
        challenge_id,
        task_name=f"acme-{challenge_id}",
        cluster=settings.CERTPORTAL_ACME_VALIDATION_CLUSTER,
    )


def await_validation(challenge: Challenge) -> Challenge:
    """Wait briefly (CERTPORTAL_ACME_VALIDATION_WAIT_MS, with Redis) for the worker to
    settle a processing challenge; the validation itself stays off the request path.
    Returns the challenge as it then stands."""
    wait = settings.CERTPORTAL_ACME_VALIDATION_WAIT_MS / 1000
    if challenge.status != ChallengeStatus.PROCESSING or not wait or not is_shared():
        return challenge
    notice = wakeups.wait(_settled_key(challenge.pk), wait)
    if notice is not None:
        # The worker's committed verdict travels in the notice: no need to read it back.
        settled = json.loads(notice)
        challenge.status, challenge.error = settled["status"], settled["error"]
        challenge.validated_at = parse_datetime(settled["validated_at"] or "")
    return challenge


def _settled_key(challenge_id: str) -> str:
    return f"acme-challenge-settled:{challenge_id}"


def _processing_challenge(challenge_id: str) -> list[Challenge]:
    return list(
        Challenge.objects.select_related("authorization__order__account").filter(
            pk=challenge_id, status=ChallengeStatus.PROCESSING
        )
    )


def _lock_order(order_id: str) -> None:
    """Lock the order's row until the transaction ends."""
    list(Order.objects.select_for_update().filter(pk=order_id).order_by().values_list("pk"))


def validate_challenge(challenge_id: str) -> str | None:
    """The task: check one processing challenge and settle its authorization and order.
    Safe to run twice: only a challenge still processing is decided."""
    found = _processing_challenge(challenge_id=challenge_id)
    if not found:
        return None
    challenge = found[0]
    authz = challenge.authorization
    account = authz.order.account
    key_auth = messages.key_authorization(challenge.token, account.thumbprint)
    failure = _run_check(challenge.type, authz.identifier_value, challenge.token, key_auth)
    with transaction.atomic():
        if failure is None:
            _challenge_valid(challenge)
        else:
            _challenge_invalid(challenge, messages.problem(*failure))
    if is_shared():
        verdict = {
            "status": challenge.status,
            "validated_at": challenge.validated_at.isoformat() if challenge.validated_at else None,
            "error": challenge.error,
        }
        wakeups.notify(_settled_key(challenge_id), json.dumps(verdict))
    return challenge.status


def _run_check(kind: str, identifier: str, token: str, key_auth: str) -> validation.Failure:
    """The check's verdict. What the other side sends is untrusted input: a check that
    breaks on it fails the challenge instead of the task (which would leave it
    processing, retried, for good)."""
    try:
        return _check(kind, identifier, token, key_auth)
    except Exception:
        logger.exception("ACME %s check of %s broke", kind, identifier)
        return ("serverInternal", f"The {kind} check could not be completed.")


def _check(kind: str, identifier: str, token: str, key_auth: str) -> validation.Failure:
    if kind == ChallengeType.HTTP_01:
        return validation.http01(identifier, token, key_auth)
    if kind == ChallengeType.DNS_01:
        return validation.dns01(identifier, key_auth)
    return validation.tls_alpn01(identifier, key_auth)


def _challenge_valid(challenge: Challenge) -> None:
    now = timezone.now()
    authz = challenge.authorization
    # Lock the order first. Validations of its other authorizations wait here until this
    # one commits, and each statement after the lock sees what committed before it, so
    # the last authorization to become valid always sees the others valid too. (Without
    # the lock, two committing at once could each still see the other pending, and the
    # order would never become ready.) SQLite's IMMEDIATE transactions serialize anyway.
    _lock_order(order_id=authz.order_id)
    if not Challenge.objects.filter(pk=challenge.pk, status=ChallengeStatus.PROCESSING).update(
        status=ChallengeStatus.VALID, validated_at=now
    ):
        return
    challenge.status, challenge.validated_at = ChallengeStatus.VALID, now
    Authorization.objects.filter(pk=authz.pk, status=AuthorizationStatus.PENDING).update(
        status=AuthorizationStatus.VALID
    )
    _ready_if_all_valid(authz.order_id)


def _ready_if_all_valid(order_id: str) -> None:
    """The order is ready once none of its authorizations is anything but valid (one
    statement: the check is the UPDATE's own condition)."""
    unsettled = Authorization.objects.filter(order_id=OuterRef("pk")).exclude(
        status=AuthorizationStatus.VALID
    )
    Order.objects.filter(pk=order_id, status=OrderStatus.PENDING).exclude(Exists(unsettled)).update(
        status=OrderStatus.READY
    )


def _challenge_invalid(challenge: Challenge, error: dict[str, Any]) -> None:
    authz = challenge.authorization
    _lock_order(order_id=authz.order_id)  # as _challenge_valid: one verdict at a time
    if not Challenge.objects.filter(pk=challenge.pk, status=ChallengeStatus.PROCESSING).update(
        status=ChallengeStatus.INVALID, error=error, failed_at=timezone.now()
    ):
        return
    challenge.status, challenge.error = ChallengeStatus.INVALID, error
    # Only a pending authorization fails: another of its challenges may have made it
    # valid while this one was still being checked, and a late failure must not undo that.
    if Authorization.objects.filter(pk=authz.pk, status=AuthorizationStatus.PENDING).update(
        status=AuthorizationStatus.INVALID
    ):
        _invalidate_order(authz.order_id, error)


def _invalidate_order(order_id: str, error: dict[str, Any]) -> None:
    """An authorization of the order ended other than valid (RFC 8555 7.1.6): an order
    not yet finalized becomes invalid."""
    Order.objects.filter(pk=order_id, status__in=[OrderStatus.PENDING, OrderStatus.READY]).update(
        status=OrderStatus.INVALID, error=error
    )


def deactivate_authorization(authz: Authorization, auth: Authenticated) -> Authorization:
    """POST to an authorization: {"status": "deactivated"} deactivates a pending or
    valid one (RFC 8555 7.5.2) and with it its order; POST-as-GET reads it."""
    payload = auth.json() if not auth.post_as_get else {}
    if "status" not in payload:
        return authz
    if payload["status"] != AuthorizationStatus.DEACTIVATED:
        raise AcmeProblem("malformed", 'An authorization may only be set to "deactivated".')
    with transaction.atomic():
        _lock_order(order_id=authz.order_id)
        if not Authorization.objects.filter(
            pk=authz.pk, status__in=[AuthorizationStatus.PENDING, AuthorizationStatus.VALID]
        ).update(status=AuthorizationStatus.DEACTIVATED):
            authz.refresh_from_db(fields=["status"])
            if authz.status == AuthorizationStatus.DEACTIVATED:
                return authz
            raise AcmeProblem(
                "malformed", f"The authorization is {authz.status}; it cannot be deactivated."
            )
        authz.status = AuthorizationStatus.DEACTIVATED
        _invalidate_order(
            authz.order_id,
            messages.problem("unauthorized", "An authorization of this order was deactivated."),
        )
        record(
            EventType.ACME_AUTHORIZATION_DEACTIVATED,
            actor=auth.actor(),
            obj=authz,
            application=auth.account.application if auth.account else None,
            data={"identifier": authz.identifier_value},
            outbox=False,
        )
    return authz
