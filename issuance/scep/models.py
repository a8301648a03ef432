"""SCEP state: which attached profiles speak SCEP (with their RA certificate and
challenge), the one-time challenges minted for devices, and the transactions that
answer retries and CertPoll. Everything belongs to one Application."""

from __future__ import annotations

from django.db import models

from certportal.secrets import SealedField


class ScepEnrollment(models.Model):
    """SCEP switched on for one profile attached to one Application."""

    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="scep_enrollments"
    )
    profile = models.ForeignKey(
        "profiles.CertificateProfile", on_delete=models.CASCADE, related_name="+"
    )
    enabled = models.BooleanField(default=True)
    # Django password hash of the static challenge; empty when there is none.
    challenge_hash = models.CharField(max_length=200, blank=True)
    challenge_set_at = models.DateTimeField(null=True, blank=True)
    allow_renewal = models.BooleanField(default=True)
    # 3DES / single DES content ciphers and SHA-1 digests, for old routers.
    allow_legacy = models.BooleanField(default=False)
    max_outstanding_challenges = models.PositiveIntegerField(default=100)
    ra_certificate_pem = models.TextField()
    ra_private_key = SealedField()
    # The successor RA, announced through GetNextCACert until the switch.
    next_ra_certificate_pem = models.TextField(blank=True)
    next_ra_private_key = SealedField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "profile"], name="scep_one_per_profile")
        ]

    def __str__(self) -> str:
        return f"SCEP {self.application_id}/{self.profile_id}"


class ScepChallenge(models.Model):
    """A one-time challenge password minted for one device; only its SHA-256 is kept."""

    enrollment = models.ForeignKey(
        ScepEnrollment, on_delete=models.CASCADE, related_name="challenges"
    )
    digest = models.CharField(max_length=64, unique=True)
    expected_cn = models.CharField(max_length=255, blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["enrollment", "used_at", "expires_at"])]

    def __str__(self) -> str:
        return f"SCEP challenge {self.pk}"


class ScepTransaction(models.Model):
    """One SCEP transaction: the request it made, so a retry or a CertPoll gets the
    same answer. A transaction is its id as sent by one signer."""

    enrollment = models.ForeignKey(
        ScepEnrollment, on_delete=models.CASCADE, related_name="transactions"
    )
    transaction_id = models.CharField(max_length=255)
    signer_sha256 = models.CharField(max_length=64)
    csr_sha256 = models.CharField(max_length=64)
    request = models.OneToOneField(
        "issuance.CertificateRequest", on_delete=models.CASCADE, related_name="scep_transaction"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "transaction_id", "signer_sha256"],
                name="scep_transaction_unique",
            )
        ]

    def __str__(self) -> str:
        return self.transaction_id
