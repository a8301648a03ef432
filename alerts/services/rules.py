"""Alert configuration and matching: saving channels and rules (checked against
the Application's profiles), which rules an event or certificate matches, and the
Delivery rows they make (stored idempotently, then sending is queued)."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from alerts import channels
from alerts.choices import AlertEvent
from alerts.models import AlertRule, Channel, Delivery
from alerts.services.sending import queue_send
from applications.models import Application
from certportal import generation
from certportal.event_types import EventType
from certportal.events import Actor, record

MAX_THRESHOLD_DAYS = 3650


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
    taken = application.alert_channels.filter(name=name)
    if channel is not None:
        taken = taken.exclude(pk=channel.pk)
    if taken.exists():
        raise ValidationError({"name": f"A channel named {name!r} already exists."})
    kept = channel.secret_values() if channel is not None else {}
    wanted = channels.ChannelSettings(kind, config, kept if secrets is None else secrets)
    errors = channels.validate(wanted)
    if errors:
        raise ValidationError(errors)
    channel = channel or Channel(application=application)
    channel.name, channel.kind, channel.config = name, kind, config
    try:
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
    except IntegrityError as exc:  # the same name saved concurrently, after the check above
        raise ValidationError({"name": f"A channel named {name!r} already exists."}) from exc
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
    taken = application.alert_rules.filter(name=rule.name).exclude(pk=rule.pk)
    if taken.exists():
        errors["name"] = f"A rule named {rule.name!r} already exists."
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
    try:
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
    except IntegrityError as exc:  # the same name saved concurrently, after clean_rule
        raise ValidationError({"name": f"A rule named {rule.name!r} already exists."}) from exc
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
