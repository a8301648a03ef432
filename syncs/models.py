"""Connections (sealed provider credentials), syncs (what goes where) and sync items
(one certificate at one destination)."""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from certportal.secrets import SealedField, seal_for, unseal_for
from syncs.choices import (
    ConnectionKind,
    Destination,
    ItemStatus,
    RunTrigger,
    Selector,
    Want,
)


class Connection(models.Model):
    """Credentials for one provider account, owned by an Application; sealed at rest."""

    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="sync_connections"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=ConnectionKind.choices)
    # Non-secret settings: endpoint_url / role_arn (aws), authority_host (azure),
    # api_base_url (cloudflare).
    config = models.JSONField(default=dict, blank=True)
    # The credentials as sealed JSON; never shown again after saving.
    credentials = SealedField(blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.CharField(max_length=300, blank=True)
    # Being deleted: its syncs remove what they pushed first.
    deleting = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "name"], name="unique_sync_connection_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def credential_values(self) -> dict[str, str]:
        if not self.credentials:
            return {}
        data: dict[str, str] = json.loads(unseal_for(self, "credentials"))
        return data

    def set_credential_values(self, values: dict[str, str]) -> None:
        self.credentials = seal_for(self, "credentials", json.dumps(values).encode())


class Sync(models.Model):
    """Which certificates of an Application go to one destination, and how."""

    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="syncs"
    )
    name = models.CharField(max_length=100)
    destination = models.CharField(max_length=24, choices=Destination.choices)
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="syncs")
    selector = models.CharField(max_length=16, choices=Selector.choices)
    profile = models.ForeignKey(
        "profiles.CertificateProfile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The first certificate of a followed lineage (its renewals follow through items).
    certificate = models.ForeignKey(
        "issuance.Certificate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # fnmatch pattern over the CN and every SAN, e.g. "*.payments.example.test".
    name_pattern = models.CharField(max_length=255, blank=True)
    name_template = models.CharField(max_length=255)
    # Destination options, validated by the destination's backend.
    options = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    # Being deleted: workers remove what it pushed, then the record goes.
    deleting = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["application", "name"], name="unique_sync_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_destination_display()})"

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)


class SyncItem(models.Model):
    """One certificate at one sync's destination: what was pushed and how it went."""

    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="items")
    certificate = models.ForeignKey(
        "issuance.Certificate", on_delete=models.CASCADE, related_name="sync_items"
    )
    want = models.CharField(max_length=8, choices=Want.choices, default=Want.PRESENT)
    # ARN, secret ARN, Key Vault certificate name or Cloudflare id; carried to a renewal.
    external_id = models.CharField(max_length=500, blank=True)
    external_version = models.CharField(max_length=200, blank=True)
    # What the destination should hold (certificate, options, name) and what it holds.
    desired_fingerprint = models.CharField(max_length=64, blank=True)
    pushed_fingerprint = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    last_error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["sync", "certificate"], name="unique_sync_item"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="syncitem_due_idx"),
            models.Index(fields=["sync", "status"], name="syncitem_sync_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sync_id}:{self.certificate_id}"


class SyncRun(models.Model):
    """One action on a sync (sync now, re-push, remove, drift check) and what it found."""

    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices)
    actor_label = models.CharField(max_length=200, blank=True)
    queued = models.PositiveIntegerField(default=0)
    # Drift check: {"missing": [...], "changed": [...], "unknown": [...], "repaired": n}.
    report = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["sync", "-created_at"], name="syncrun_sync_time_idx")]

    def __str__(self) -> str:
        return f"{self.sync_id} {self.trigger} {self.created_at:%Y-%m-%d %H:%M}"
