"""Alerting verbs: configure channels and rules, turn events and expiry into deliveries,
send deliveries with retries.

Deliveries are rows first, sends second. Turning an outbox event or a crossed expiry
threshold into Delivery rows is idempotent (unique constraint per rule, channel and
dedupe key; duplicates are ignored), and each send is claimed by a conditional update,
so any number of workers deliver each alert once.
"""

from __future__ import annotations

import fnmatch
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts import channels
from alerts.channels import text
from alerts.choices import AlertEvent, DeliveryStatus
from alerts.models import AlertRule, Channel, Delivery
from applications.choices import Role
from applications.models import Application
from certportal import generation, queue
from certportal.event_types import EventType
from certportal.events import Actor, record
from certportal.models import OutboxEvent
from issuance.choices import CertificateStatus

logger = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 8
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
MAX_THRESHOLD_DAYS = 3650
# A delivery log entry keeps a short reason, never a peer's answer.
MAX_ERROR_CHARS = 300

# Outbox event type -> alert event. certificate.issued becomes "renewed" when the new
# certificate replaces another.
EVENT_MAP: dict[str, AlertEvent] = {
    EventType.CERTIFICATE_ISSUED: AlertEvent.ISSUED,
    EventType.CERTIFICATE_REVOKED: AlertEvent.REVOKED,
    EventType.CERTIFICATE_RENEWAL_FAILED: AlertEvent.RENEWAL_FAILED,
    EventType.REQUEST_PENDING_APPROVAL: AlertEvent.APPROVAL_REQUESTED,
    # approvals records approval_given per step; a refusal ends in request.rejected.
    EventType.REQUEST_APPROVAL_GIVEN: AlertEvent.APPROVAL_DECIDED,
    EventType.REQUEST_REJECTED: AlertEvent.APPROVAL_DECIDED,
    EventType.REQUEST_EXPIRED: AlertEvent.APPROVAL_DECIDED,
    EventType.SYNC_FAILED: AlertEvent.SYNC_FAILED,
}
DECISIONS: dict[str, str] = {
    EventType.REQUEST_APPROVAL_GIVEN: "approved",
    EventType.REQUEST_REJECTED: "rejected",
    EventType.REQUEST_EXPIRED: "expired unanswered",
}
SEVERITY: dict[str, str] = {
    AlertEvent.REVOKED: "warning",
    AlertEvent.RENEWAL_FAILED: "error",
    AlertEvent.SYNC_FAILED: "error",
}


# --- Configuration -----------------------------------------------------------------------


def save_channel(
    application: Application,
    *,
    name: str,
    kind: str,
    config: dict[str, Any],
    secrets: dict[str, str] | None,
    actor: Actor,
    channel: Channel | None = None,
) -> Channel:
    """Create or update a channel; refuses settings it could not send with.

    secrets=None keeps the stored secrets (the form leaves them blank on edit)."""
    kept = channel.secret_values() if channel is not None else {}
    wanted = channels.ChannelSettings(kind, config, kept if secrets is None else secrets)
    errors = channels.validate(wanted)
    if errors:
        raise ValidationError(errors)
    channel = channel or Channel(application=application)
    channel.name, channel.kind, channel.config = name, kind, config
    with transaction.atomic():
        if channel.pk is None:
            channel.save()  # the sealed secrets bind the row's id: insert first
        channel.set_secret_values(wanted.secrets)
        channel.save()
        record(
            EventType.ALERTS_CHANNEL_SAVED,
            actor=actor,
            obj=channel,
            application=application,
            data={"name": name, "kind": kind},
            outbox=False,
        )
    return channel


def max_validity_days(application: Application) -> int:
    """The longest validity any of the Application's profiles allows."""
    longest = max(
        (p.validity_days_max for p in application.profiles.all()), default=MAX_THRESHOLD_DAYS
    )
    return min(longest, MAX_THRESHOLD_DAYS)


def clean_rule(application: Application, rule: AlertRule, channel_ids: Sequence[int]) -> None:
    errors: dict[str, str] = {}
    unknown = set(rule.events) - set(AlertEvent.values)
    if not rule.events or unknown:
        errors["events"] = "Choose at least one known event."
    longest = max_validity_days(application)
    thresholds = rule.thresholds_days or []
    if AlertEvent.EXPIRING in rule.events and not thresholds:
        errors["thresholds_days"] = "Expiry alerts need at least one threshold."
    for days in thresholds:
        if not isinstance(days, int) or days < 1:
            errors["thresholds_days"] = "Thresholds are whole days, 1 or more."
        elif days >= longest:
            errors["thresholds_days"] = (
                f"A threshold of {days} days is beyond the longest validity of this "
                f"Application's profiles ({longest} days): it would always fire."
            )
    if rule.profile_id and not application.profiles.filter(pk=rule.profile_id).exists():
        errors["profile"] = "That profile is not attached to this Application."
    if not channel_ids:
        errors["channels"] = "Choose at least one channel."
    elif Channel.objects.filter(pk__in=channel_ids, application=application).count() != len(
        set(channel_ids)
    ):
        errors["channels"] = "Unknown channel."
    if errors:
        raise ValidationError(errors)


def save_rule(
    application: Application, rule: AlertRule, channel_ids: Sequence[int], *, actor: Actor
) -> AlertRule:
    """Validate and store a rule with its channels."""
    rule.application = application
    rule.thresholds_days = sorted(set(rule.thresholds_days or []), reverse=True)
    clean_rule(application, rule, channel_ids)
    with transaction.atomic():
        rule.save()
        rule.channels.set(channel_ids)
        record(
            EventType.ALERTS_RULE_SAVED,
            actor=actor,
            obj=rule,
            application=application,
            data={"name": rule.name, "events": rule.events, "thresholds": rule.thresholds_days},
            outbox=False,
        )
    return rule


# --- Matching --------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What an alert is about, enough to filter and render it."""

    common_name: str
    sans: Sequence[str]
    profile_id: int | None


def matches(rule: AlertRule, subject: Subject) -> bool:
    if rule.profile_id and rule.profile_id != subject.profile_id:
        return False
    if rule.name_pattern:
        pattern = rule.name_pattern.lower()
        names = [subject.common_name, *subject.sans]
        return any(fnmatch.fnmatchcase(n.lower(), pattern) for n in names if n)
    return True


def _rules_by_application(application_ids: Iterable[Any], event: str) -> dict[int, list]:
    rules = (
        AlertRule.objects.filter(application_id__in=set(application_ids), is_active=True)
        .prefetch_related("channels")
        .order_by("pk")
    )
    found: dict[int, list[AlertRule]] = defaultdict(list)
    for rule in rules:
        if event in rule.events or event == "*":
            found[rule.application_id].append(rule)
    return found


def _active_rules(application_id: int) -> list[AlertRule]:
    """The Application's active rules with their channels (shared: read, never change),
    from a generation cache: every drain asks, rules change rarely and every change to a
    rule, a channel or their links moves the generation."""
    rules = _RULES.get(
        application_id,
        lambda: list(
            AlertRule.objects.filter(application_id=application_id, is_active=True)
            .prefetch_related("channels")
            .order_by("pk")
        ),
    )
    return rules or []


_RULES: generation.Cache[list[AlertRule]] = generation.Cache(
    depends_on=("alerts.AlertRule", "alerts.Channel", "alerts.AlertRule_channels")
)


def _deliveries_for(
    rule: AlertRule,
    event: str,
    dedupe_key: str,
    subject: str,
    payload: dict[str, Any],
    now: datetime,
) -> list[Delivery]:
    return [
        Delivery(
            application_id=rule.application_id,
            rule=rule,
            channel=channel,
            certificate_id=payload.get("certificate_id"),
            event=event,
            dedupe_key=dedupe_key,
            subject=subject[:300],
            payload=payload,
            next_attempt_at=now,
        )
        for channel in rule.channels.all()
        if channel.is_active
    ]


def _store(deliveries: list[Delivery]) -> int:
    """Insert, ignoring any that already exist (another worker, a re-run); then queue sends."""
    if not deliveries:
        return 0
    Delivery.objects.bulk_create(deliveries, batch_size=1000, ignore_conflicts=True)
    transaction.on_commit(queue_send)
    return len(deliveries)


SEND_TASK = "alerts.tasks.send_due_deliveries"


def queue_send() -> None:
    try:
        queue.enqueue_coalesced(SEND_TASK)
    except Exception:
        logger.warning("could not queue alert sending; the schedule will", exc_info=True)


# --- Outbox consumer ---------------------------------------------------------------------


def wants_event(event_type: str, application_id: int | None) -> bool:
    """Whether consume_events would act on such an event now: approver notices always,
    other mapped events only for an Application with an active rule for that kind (from
    the rules' cache; an issuance may turn out to be a renewal)."""
    kind = EVENT_MAP.get(event_type)
    if kind is None or not application_id:
        return False
    if kind == AlertEvent.APPROVAL_REQUESTED:
        return True
    kinds = {kind, AlertEvent.RENEWED} if kind == AlertEvent.ISSUED else {kind}
    return any(kinds.intersection(rule.events) for rule in _active_rules(application_id))


def consume_events(events: Sequence[OutboxEvent]) -> None:
    """Outbox consumer: deliveries for the rules that match each event, and approver
    notifications for pending requests. Idempotent (dedupe key = the event id)."""
    from issuance.models import Certificate

    relevant = [e for e in events if e.event_type in EVENT_MAP and e.application_id]
    if not relevant:
        return
    app_ids = {e.application_id for e in relevant if e.application_id is not None}
    rules = {app_id: _active_rules(app_id) for app_id in app_ids}
    # Only Applications with rules (and approver notices, which need none) cost more.
    relevant = [
        e
        for e in relevant
        if rules.get(e.application_id or 0)
        or EVENT_MAP[e.event_type] == AlertEvent.APPROVAL_REQUESTED
    ]
    if not relevant:
        return
    names = dict(
        Application.objects.filter(pk__in={e.application_id for e in relevant}).values_list(
            "pk", "name"
        )
    )
    issued_ids = [e.object_id for e in relevant if e.event_type == EventType.CERTIFICATE_ISSUED]
    replaced: dict[str, str] = {
        str(pk): serial
        for pk, serial in Certificate.objects.filter(
            pk__in=issued_ids, replaces__isnull=False
        ).values_list("pk", "replaces__serial_number")
    }
    requests = _request_names([e for e in relevant if e.event_type.startswith("request.")])
    now = timezone.now()
    deliveries: list[Delivery] = []
    for event in relevant:
        kind = EVENT_MAP[event.event_type]
        if event.object_id in replaced:
            kind = AlertEvent.RENEWED
        payload = {
            **requests.get(event.object_id, {}),
            **_event_payload(event, kind, names, replaced.get(event.object_id)),
        }
        subject = Subject(
            payload.get("common_name", ""), payload.get("sans", []), payload.get("profile_id")
        )
        title = render_subject(kind, payload)
        for rule in rules.get(event.application_id or 0, []):
            if kind in rule.events and matches(rule, subject):
                deliveries += _deliveries_for(rule, kind, f"event:{event.pk}", title, payload, now)
        if kind == AlertEvent.APPROVAL_REQUESTED:
            deliveries += _approver_notification(event, title, payload, now)
    _store(deliveries)


def _request_names(events: Sequence[OutboxEvent]) -> dict[str, dict[str, Any]]:
    """Names and profile of the requests behind request.* events (for filters and text;
    some events, like a step's approval, do not carry them)."""
    from issuance.models import CertificateRequest

    ids = [e.object_id for e in events if e.object_type == "issuance.certificaterequest"]
    rows = CertificateRequest.objects.filter(pk__in=ids).values_list(
        "pk", "common_name", "sans", "profile_id"
    )
    return {
        str(pk): {"common_name": cn, "sans": sans, "profile_id": profile_id}
        for pk, cn, sans, profile_id in rows
    }


def _event_payload(
    event: OutboxEvent, kind: str, names: dict[int, str], replaces_serial: str | None
) -> dict[str, Any]:
    data = dict(event.payload)
    data.update(
        event=kind,
        application=names.get(event.application_id or 0, ""),
        object_type=event.object_type,
        object_id=event.object_id,
        occurred_at=event.created_at.isoformat(),
    )
    if event.object_type == "issuance.certificate":
        data["certificate_id"] = event.object_id
    if event.event_type in DECISIONS:
        data["decision"] = DECISIONS[event.event_type]
    if replaces_serial:
        data["replaces_serial_number"] = replaces_serial
    return data


def approvers_for(application_id: int, payload: dict[str, Any]) -> list[str]:
    """Email addresses of who may decide a pending request.

    HOOK for the approvals policy model: until it exists, the Application's Admins.
    Replace the body with the policy's eligible approvers when it lands."""
    from applications.models import Membership

    return sorted(
        {
            m.user.email
            for m in Membership.objects.filter(
                application_id=application_id, role=Role.ADMIN, user__is_active=True
            ).select_related("user")
            if m.user.email
        }
    )


def _approver_notification(
    event: OutboxEvent, title: str, payload: dict[str, Any], now: datetime
) -> list[Delivery]:
    assert event.application_id is not None
    recipients = approvers_for(event.application_id, payload)
    if not recipients:
        return []
    return [
        Delivery(
            application_id=event.application_id,
            event=AlertEvent.APPROVAL_REQUESTED,
            dedupe_key=f"approvers:{event.pk}",
            subject=title[:300],
            payload=payload,
            recipients=recipients,
            next_attempt_at=now,
        )
    ]


def render_subject(kind: str, data: dict[str, Any]) -> str:
    name = data.get("common_name") or (data.get("sans") or [""])[0] or data.get("serial_number", "")
    app = data.get("application", "")
    titles: dict[str, str] = {
        AlertEvent.EXPIRING: f"{name} expires in {data.get('days_left')} days",
        AlertEvent.ISSUED: f"Certificate issued: {name}",
        AlertEvent.RENEWED: f"Certificate renewed: {name}",
        AlertEvent.REVOKED: f"Certificate revoked: {name} ({data.get('reason', '')})",
        AlertEvent.RENEWAL_FAILED: f"Renewal failed: {name}",
        AlertEvent.APPROVAL_REQUESTED: f"Approval requested: {name}",
        AlertEvent.APPROVAL_DECIDED: f"Request for {name} {data.get('decision', 'decided')}",
        AlertEvent.SYNC_FAILED: f"Sync {data.get('sync', '')} failed for {name}",
    }
    return text.plain(f"[certportal {app}] {titles.get(kind, kind)}")


# --- Expiry scan ---------------------------------------------------------------------------


def crossed_key(thresholds: Sequence[int], days_left: float, repeat_daily: bool) -> str | None:
    """The dedupe suffix of the alert due now: the smallest threshold crossed ("7d"), or
    with daily repeats, each whole day past the smallest one ("1d+3"); None if none."""
    crossed = [t for t in thresholds if days_left <= t]
    if not crossed:
        return None
    smallest = min(crossed)
    if repeat_daily and smallest == min(thresholds):
        extra = int(smallest - days_left)
        if extra >= 1:
            return f"{smallest}d+{extra}"
    return f"{smallest}d"


def scan_expiring(now: datetime | None = None) -> int:
    """Scheduled: an alert for each certificate that crossed a threshold of an expiry
    rule; at most one per certificate, threshold, rule and channel. Returns how many
    new deliveries were written."""
    now = now or timezone.now()
    rules = _rules_by_application(
        AlertRule.objects.filter(is_active=True).values_list("application_id", flat=True),
        AlertEvent.EXPIRING,
    )
    written = 0
    for application_id, app_rules in rules.items():
        # One transaction per Application: the rows stream from a server-side cursor, and
        # a concurrent scan on another worker waits on the unique index, then adds nothing.
        with transaction.atomic():
            written += _scan_application(application_id, app_rules, now)
    return written


def _scan_application(application_id: int, rules: list[AlertRule], now: datetime) -> int:
    from issuance.renewal import renews_itself, settings_for

    horizon = max(max(r.thresholds_days or [0]) for r in rules)
    app_settings = settings_for(application_id)
    application = Application.objects.get(pk=application_id)
    existing = set(
        Delivery.objects.filter(
            application_id=application_id,
            event=AlertEvent.EXPIRING,
            rule__in=rules,
            created_at__gte=now - timedelta(days=horizon + 2),
        ).values_list("rule_id", "channel_id", "dedupe_key")
    )
    rows = _expiring_certificates(application_id, now, horizon)
    new: list[Delivery] = []
    written = 0
    for row in rows:
        days_left = (row["not_after"] - now).total_seconds() / 86400
        auto = renews_itself(row, app_settings)
        subject = Subject(row["common_name"], row["sans"], row["profile_id"])
        for rule in rules:
            if auto and not rule.include_auto_renewed:
                continue
            suffix = crossed_key(rule.thresholds_days, days_left, rule.repeat_daily)
            if suffix is None or not matches(rule, subject):
                continue
            key = f"{row['pk']}:{suffix}"
            new += [
                d
                for d in _expiry_deliveries(rule, key, row, days_left, application, now)
                if (rule.pk, d.channel_id, key) not in existing
            ]
        if len(new) >= 1000:
            written += _store(new)
            new = []
    return written + _store(new)


def _expiring_certificates(application_id: int, now: datetime, horizon: int) -> Iterable[Any]:
    from issuance.models import Certificate

    return (
        Certificate.objects.filter(
            application_id=application_id,
            status=CertificateStatus.ACTIVE,
            not_after__gt=now,
            not_after__lte=now + timedelta(days=horizon),
        )
        .annotate(held_key=~Q(private_key=""))
        .values(
            "pk",
            "common_name",
            "sans",
            "profile_id",
            "not_after",
            "serial_number",
            "auto_renew",
            "held_key",
            "renewal_attempts",
        )
        .iterator(chunk_size=2000)
    )


def _expiry_deliveries(
    rule: AlertRule,
    key: str,
    row: dict[str, Any],
    days_left: float,
    application: Application,
    now: datetime,
) -> list[Delivery]:
    payload = {
        "event": AlertEvent.EXPIRING,
        "application": application.name,
        "certificate_id": str(row["pk"]),
        "common_name": row["common_name"],
        "sans": row["sans"],
        "serial_number": row["serial_number"],
        "not_after": row["not_after"].isoformat(),
        "days_left": max(int(days_left), 0),
        "profile_id": row["profile_id"],
    }
    title = render_subject(AlertEvent.EXPIRING, payload)
    return _deliveries_for(rule, AlertEvent.EXPIRING, key, title, payload, now)


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
