"""Alert channels, rules and deliveries."""

from __future__ import annotations

import json

from django.db import models

from alerts.choices import AlertEvent, ChannelKind, DeliveryStatus
from certportal.secrets import SealedField, seal_for, unseal_for


def default_thresholds() -> list[int]:
    return [30, 14, 7, 1]


def default_events() -> list[str]:
    return [AlertEvent.EXPIRING]


class Channel(models.Model):
    """Where alerts go: an email list, a chat webhook, PagerDuty or a signed webhook."""

    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="alert_channels"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    # Non-secret settings: email recipients, the generic webhook's URL.
    config = models.JSONField(default=dict, blank=True)
    # Secret settings as sealed JSON: Slack/Teams URLs, PagerDuty routing key, HMAC secret.
    secrets = SealedField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["application", "name"], name="unique_channel_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def secret_values(self) -> dict[str, str]:
        if not self.secrets:
            return {}
        data: dict[str, str] = json.loads(unseal_for(self, "secrets"))
        return data

    def set_secret_values(self, values: dict[str, str]) -> None:
        self.secrets = seal_for(self, "secrets", json.dumps(values).encode()) if values else ""


class AlertRule(models.Model):
    """Which events of an Application alert which channels, with thresholds and filters."""

    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="alert_rules"
    )
    name = models.CharField(max_length=100)
    events = models.JSONField(default=default_events)
    thresholds_days = models.JSONField(default=default_thresholds, blank=True)
    # After the smallest threshold, alert once a day until renewed, revoked or expired.
    repeat_daily = models.BooleanField(default=False)
    profile = models.ForeignKey(
        "profiles.CertificateProfile",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    # fnmatch pattern over the CN and every SAN, e.g. "*.payments.example.test".
    name_pattern = models.CharField(max_length=255, blank=True)
    # Expiry alerts skip certificates the portal renews itself unless this is set.
    include_auto_renewed = models.BooleanField(default=False)
    channels = models.ManyToManyField(Channel, related_name="rules")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["application", "name"], name="unique_rule_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Delivery(models.Model):
    """One alert to one channel (or to the approvers), and how sending it went."""

    application = models.ForeignKey(
        "applications.Application",
        on_delete=models.CASCADE,
        related_name="alert_deliveries",
        db_index=False,  # delivery_app_time_idx leads with it
    )
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    certificate = models.ForeignKey(
        "issuance.Certificate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    event = models.CharField(max_length=24, choices=AlertEvent.choices)
    # What makes this alert unique for its rule and channel: the outbox event, or the
    # certificate and the threshold crossed ("<cert>:7d", "<cert>:daily:2025-01-31").
    dedupe_key = models.CharField(max_length=160)
    subject = models.CharField(max_length=300)
    payload = models.JSONField(default=dict)
    # Direct recipients (approver notifications, which have no channel).
    recipients = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            # At most one alert per certificate per threshold (or per event) per rule
            # and channel: duplicates from a second worker or a re-run are ignored.
            models.UniqueConstraint(
                fields=["rule", "channel", "dedupe_key"],
                name="unique_alert_per_rule_channel",
                condition=models.Q(rule__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["dedupe_key"],
                name="unique_direct_notification",
                condition=models.Q(rule__isnull=True, channel__isnull=True),
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due_idx",
                condition=models.Q(status__in=["pending", "sending"]),
            ),
            models.Index(fields=["application", "-created_at"], name="delivery_app_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.channel or 'approvers'} ({self.status})"
