"""ACME state: external account keys, accounts, orders, authorizations, challenges,
nonces. Every object belongs to exactly one Application; lookups always filter by it."""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.db import models

from certportal.secrets import SealedField, unseal_for
from issuance.acme.choices import (
    AccountStatus,
    AuthorizationStatus,
    ChallengeStatus,
    ChallengeType,
    IdentifierType,
    OrderStatus,
)


def new_token() -> str:
    """A URL-safe random id for URLs and challenge tokens (128+ bits)."""
    return secrets.token_urlsafe(18)


_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def could_be_token(value: str) -> bool:
    """Whether a client-sent id could be one of ours (new_token's alphabet). Anything
    else is not found without asking the database: PostgreSQL refuses NUL bytes in
    text, which would otherwise end the request in a 500."""
    return _TOKEN.fullmatch(value) is not None


class ExternalAccountKey(models.Model):
    """An EAB credential: binds ACME accounts to one Application; the HMAC key is sealed."""

    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="acme_eab_keys"
    )
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=64, unique=True, default=new_token)
    hmac_key = SealedField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # A single-use credential binds the first account that presents it and no other.
    reusable = models.BooleanField(default=False)
    bound_at = models.DateTimeField(null=True, blank=True)  # when it first bound an account
    created_by = models.CharField(max_length=200, blank=True)
    # The person behind the credential: they may not approve what its accounts request.
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"EAB {self.name} ({self.key_id})"

    def hmac_key_bytes(self) -> bytes:
        return unseal_for(self, "hmac_key")


class Account(models.Model):
    """An ACME account: one public key, bound to an Application through an EAB key."""

    id = models.CharField(primary_key=True, max_length=32, default=new_token, editable=False)
    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="acme_accounts"
    )
    # The directory the account registered through; its Link rel="index".
    profile = models.ForeignKey(
        "profiles.CertificateProfile", on_delete=models.PROTECT, related_name="+"
    )
    eab_key = models.ForeignKey(
        ExternalAccountKey, null=True, on_delete=models.SET_NULL, related_name="accounts"
    )
    jwk = models.JSONField()
    thumbprint = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=16, choices=AccountStatus.choices, default=AccountStatus.VALID
    )
    contact = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"ACME account {self.id} ({self.status})"


class Order(models.Model):
    """An ACME order for one certificate of one profile."""

    id = models.CharField(primary_key=True, max_length=32, default=new_token, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="orders")
    profile = models.ForeignKey(
        "profiles.CertificateProfile", on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    identifiers = models.JSONField()
    expires_at = models.DateTimeField()
    error = models.JSONField(null=True, blank=True)
    replaces = models.ForeignKey(
        "issuance.Certificate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    replaces_ari = models.CharField(max_length=200, blank=True)  # as the client named it
    request = models.ForeignKey(
        "issuance.CertificateRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    certificate = models.ForeignKey(
        "issuance.Certificate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["account", "status"], name="acme_order_account_idx")]

    def __str__(self) -> str:
        return f"ACME order {self.id} ({self.status})"


class Authorization(models.Model):
    """Proof of control of one identifier, for one order."""

    id = models.CharField(primary_key=True, max_length=32, default=new_token, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="authorizations")
    identifier_type = models.CharField(max_length=8, choices=IdentifierType.choices)
    identifier_value = models.CharField(max_length=255)
    wildcard = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=AuthorizationStatus.choices, default=AuthorizationStatus.PENDING
    )
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"ACME authorization {self.identifier_value} ({self.status})"


class Challenge(models.Model):
    """One way to satisfy an authorization."""

    id = models.CharField(primary_key=True, max_length=32, default=new_token, editable=False)
    authorization = models.ForeignKey(
        Authorization, on_delete=models.CASCADE, related_name="challenges"
    )
    type = models.CharField(max_length=16, choices=ChallengeType.choices)
    token = models.CharField(max_length=64, default=new_token)
    status = models.CharField(
        max_length=16, choices=ChallengeStatus.choices, default=ChallengeStatus.PENDING
    )
    validated_at = models.DateTimeField(null=True, blank=True)
    # When the check failed: failed validations are rate limited per account and per
    # Application over a recent window, which this column's index reads.
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["failed_at"],
                name="acme_challenge_failed_idx",
                condition=models.Q(failed_at__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"ACME {self.type} challenge ({self.status})"


class Nonce(models.Model):
    """An issued, unused anti-replay nonce (database store, shared by all web processes)."""

    value = models.CharField(primary_key=True, max_length=64)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return "ACME nonce"
