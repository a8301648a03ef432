"""API credentials: personal tokens and service accounts (machine identities)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from certportal.roles import Role


class ServiceAccount(models.Model):
    """A machine identity of one Application with one role, backed by a login-less user.

    The backing user holds the role through the ordinary Membership and guardian
    permissions, so every permission check treats it exactly like a member.
    """

    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="service_accounts"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_account"
    )
    name = models.CharField(max_length=63)
    description = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices)
    # The person behind the account: they may not approve what it requests.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["application", "name"], name="unique_sa_per_app"),
        ]

    def __str__(self) -> str:
        return f"service account {self.name} of {self.application_id}"


class ApiToken(models.Model):
    """A bearer token: shown once, stored as the SHA-256 of its secret part."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # Public lookup part of the token (after the "cpt_" prefix); the secret follows it.
    key_id = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    # Who minted it (for a service account's token, an Admin): they may not approve what
    # is requested with it.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"token {self.name} ({self.key_id})"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()
