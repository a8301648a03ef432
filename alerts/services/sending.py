"""Sending deliveries: claimed by a conditional update so each is sent once, retried
with backoff, the error kept short; and the channel page's test message."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts import channels
from alerts.channels import text
from alerts.choices import AlertEvent, DeliveryStatus
from alerts.models import Channel, Delivery
from certportal import queue
from certportal.event_types import EventType
from certportal.events import Actor, record

logger = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 8
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
# A delivery log entry keeps a short reason, never a peer's answer.
MAX_ERROR_CHARS = 300
SEVERITY: dict[str, str] = {
    AlertEvent.REVOKED: "warning",
    AlertEvent.RENEWAL_FAILED: "error",
    AlertEvent.SYNC_FAILED: "error",
}


SEND_TASK = "alerts.tasks.send_due_deliveries"


def queue_send() -> None:
    try:
        queue.enqueue_coalesced(SEND_TASK)
    except Exception:
        logger.warning("could not queue alert sending; the schedule will", exc_info=True)


# --- Sending -------------------------------------------------------------------------------


def retry_delay(attempts: int) -> timedelta:
    return min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_CAP)


def _lease() -> timedelta:
    return timedelta(seconds=settings.CERTPORTAL_ALERT_SEND_LEASE_SECONDS)


def due_deliveries(now: datetime, limit: int) -> list[int]:
    """Pending deliveries whose time has come, and sends a dead worker left claimed."""
    due = Delivery.objects.filter(
        Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.SENDING, claimed_until__lt=now)
    ).order_by("next_attempt_at")
    return list(due.values_list("pk", flat=True)[:limit])


def claim(pk: int, now: datetime) -> bool:
    """Take one delivery: the conditional update's row count says whether we won."""
    won = (
        Delivery.objects.filter(pk=pk)
        .filter(
            Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=DeliveryStatus.SENDING, claimed_until__lt=now)
        )
        .update(
            status=DeliveryStatus.SENDING,
            claimed_until=now + _lease(),
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    )
    return won == 1


def send_due(limit: int = 500) -> int:
    """Send what is due, each delivery claimed first; returns how many were sent here."""
    sent = 0
    for pk in due_deliveries(timezone.now(), limit):
        if claim(pk, timezone.now()):
            sent += deliver(Delivery.objects.select_related("channel").get(pk=pk))
    return sent


def message_for(delivery: Delivery) -> channels.Message:
    data = dict(delivery.payload)
    subject = text.plain(delivery.subject)
    facts = tuple(
        (k, text.plain(v)) for k, v in data.items() if k != "event" and v not in ("", None, [])
    )
    return channels.Message(
        event=delivery.event,
        subject=subject,
        text="\n".join([subject, ""] + [f"{k}: {v}" for k, v in facts]),
        facts=facts,
        severity=_severity(delivery),
        delivery_id=str(delivery.pk),
        dedupe_key=f"certportal-{delivery.dedupe_key}"[:255],
        data=data,
    )


def _severity(delivery: Delivery) -> str:
    if delivery.event == AlertEvent.EXPIRING:
        days = delivery.payload.get("days_left", 99)
        return "critical" if days < 1 else "error" if days <= 7 else "warning"
    return SEVERITY.get(delivery.event, "info")


def deliver(delivery: Delivery) -> int:
    """Send one claimed delivery and record how it went. Returns 1 if sent."""
    try:
        _send(delivery)
    except Exception as exc:
        _failed(delivery, exc)
        return 0
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.SENT,
        sent_at=timezone.now(),
        claimed_until=None,
        last_error="",
        updated_at=timezone.now(),
    )
    return 1


def _send(delivery: Delivery) -> None:
    message = message_for(delivery)
    if delivery.channel is None:
        channels.email.send_to(list(delivery.recipients), message)
        return
    channel = delivery.channel
    settings_ = channels.ChannelSettings(channel.kind, channel.config, channel.secret_values())
    channels.send(settings_, message)


def _failed(delivery: Delivery, exc: Exception) -> None:
    if isinstance(exc, channels.DeliveryError):
        error = str(exc)
    else:
        # The log keeps a short reason; the details (which may quote a peer) go to the
        # worker's log only.
        logger.exception("alert delivery %s failed unexpectedly", delivery.pk)
        error = f"Unexpected error ({type(exc).__name__}); see the worker log."
    attempts = Delivery.objects.values_list("attempts", flat=True).get(pk=delivery.pk)
    # A test message is not retried: whoever pressed the button reads the outcome now.
    gave_up = attempts >= MAX_SEND_ATTEMPTS or delivery.dedupe_key.startswith(TEST_PREFIX)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED if gave_up else DeliveryStatus.PENDING,
        next_attempt_at=timezone.now() + retry_delay(attempts),
        claimed_until=None,
        last_error=error[:MAX_ERROR_CHARS],
        updated_at=timezone.now(),
    )


TEST_PREFIX = "test:"


def queue_test_message(channel: Channel, *, actor: Actor) -> Delivery:
    """The channel page's test button: a delivery queued like any other (the worker sends
    it, never the web request); its outcome appears in the delivery log."""
    now = timezone.now()
    application = channel.application
    with transaction.atomic():
        delivery = Delivery.objects.create(
            application=application,
            channel=channel,
            event=AlertEvent.ISSUED,
            dedupe_key=f"{TEST_PREFIX}{uuid.uuid4()}",
            subject=f"[certportal {application.name}] Test message from certportal",
            payload={
                "application": application.name,
                "channel": channel.name,
                "test": True,
                "requested_by": actor.describe(),
            },
            next_attempt_at=now,
        )
        record(
            EventType.ALERTS_CHANNEL_TEST_QUEUED,
            actor=actor,
            obj=channel,
            application=application,
            data={"name": channel.name, "delivery": delivery.pk},
            outbox=False,
        )
        transaction.on_commit(queue_send)
    return delivery
