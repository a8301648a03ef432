"""The expiry scan: certificates crossing a rule's threshold become deliveries, once
per threshold (or once a day with repeat_daily)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from alerts.choices import AlertEvent
from alerts.models import AlertRule, Delivery
from alerts.services.consumer import render_subject
from alerts.services.rules import Subject, _deliveries_for, _rules_by_application, _store, matches
from applications.models import Application
from issuance.choices import CertificateStatus

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
    from issuance.renewal import settings_for

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
    scan = _Scan(
        rules=rules,
        # The active channels of each rule: a certificate whose alert every one of them
        # has already had (the steady state: most of them) costs no payload, no Delivery.
        channels={rule.pk: [c.pk for c in rule.channels.all() if c.is_active] for rule in rules},
        existing=existing,
        app_settings=app_settings,
        application=application,
        now=now,
    )
    new: list[Delivery] = []
    written = 0
    for row in _expiring_certificates(application_id, now, horizon):
        new += scan.due(row)
        if len(new) >= 1000:
            written += _store(new)
            new = []
    return written + _store(new)


@dataclass(frozen=True)
class _Scan:
    """One Application's scan: its rules, and the alerts they have already sent."""

    rules: list[AlertRule]
    channels: dict[int, list[int]]
    existing: set[tuple[int, int, str]]
    app_settings: Any
    application: Application
    now: datetime

    def due(self, row: dict[str, Any]) -> list[Delivery]:
        """The deliveries this certificate is due and has not had yet."""
        from issuance.renewal import renews_itself

        days_left = (row["not_after"] - self.now).total_seconds() / 86400
        auto = renews_itself(row, self.app_settings)
        found: list[Delivery] = []
        for rule in self.rules:
            if auto and not rule.include_auto_renewed:
                continue
            suffix = crossed_key(rule.thresholds_days, days_left, rule.repeat_daily)
            if suffix is None:
                continue
            key = f"{row['pk']}:{suffix}"
            if all((rule.pk, c, key) in self.existing for c in self.channels[rule.pk]):
                continue
            if "sans" not in row:  # decoded only for the few rows that get this far
                row["sans"] = json.loads(row["sans_text"])
            if not matches(rule, Subject(row["common_name"], row["sans"], row["profile_id"])):
                continue
            found += [
                d
                for d in _expiry_deliveries(rule, key, row, days_left, self.application, self.now)
                if (rule.pk, d.channel_id, key) not in self.existing
            ]
        return found


def _expiring_certificates(application_id: int, now: datetime, horizon: int) -> Iterable[Any]:
    from issuance.models import Certificate

    return (
        Certificate.objects.filter(
            application_id=application_id,
            status=CertificateStatus.ACTIVE,
            not_after__gt=now,
            not_after__lte=now + timedelta(days=horizon),
        )
        # No ORDER BY (the model's default sorts by created_at): a server-side cursor is
        # planned for its first rows, and with that sort it walked the whole inventory.
        .order_by()
        .annotate(held_key=~Q(private_key=""), sans_text=Cast("sans", TextField()))
        .values(
            "pk",
            "common_name",
            "sans_text",
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
