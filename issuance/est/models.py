"""EST enrollments (one per attached profile), their HTTP Basic credentials, and the CSRs
held for approval so that a client re-sending one is recognised."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class EstEnrollment(models.Model):
    """EST for one of an Application's profiles, served at /.well-known/est/<label>/."""

    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="est_enrollments"
    )
    profile = models.ForeignKey(
        "profiles.CertificateProfile", on_delete=models.CASCADE, related_name="+"
    )
    label = models.CharField(max_length=100, unique=True)
    # The one enrollment that also answers at /.well-known/est/ itself.
    is_default = models.BooleanField(default=False)
    basic_auth = models.BooleanField(default=True)
    client_cert_auth = models.BooleanField(default=False)
    # PEM certificates a simpleenroll client certificate may chain to, besides the
    # profile's CA (for example a manufacturer's device CA).
    trust_bundle_pem = models.TextField(blank=True)
    # simplereenroll: let the SANs change (within the profile's policy); the subject
    # must still match.
    reenroll_allow_san_change = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "profile"], name="est_one_enrollment_per_profile"
            ),
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="est_one_default_enrollment",
            ),
        ]

    def __str__(self) -> str:
        return f"EST {self.label}"


class EstCredential(models.Model):
    """An HTTP Basic credential of one enrollment: shown once, stored as a SHA-256 hash."""

    enrollment = models.ForeignKey(
        EstEnrollment, on_delete=models.CASCADE, related_name="credentials"
    )
    username = models.SlugField(max_length=100)
    secret_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "username"], name="est_unique_username_per_enrollment"
            ),
        ]

    def __str__(self) -> str:
        return f"EST credential {self.username}"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class EstHeldRequest(models.Model):
    """A CSR the pipeline held for approval, found again by its hash when re-sent."""

    enrollment = models.ForeignKey(
        EstEnrollment, on_delete=models.CASCADE, related_name="held_requests"
    )
    csr_sha256 = models.CharField(max_length=64)
    server_keygen = models.BooleanField(default=False)
    request = models.OneToOneField(
        "issuance.CertificateRequest", on_delete=models.CASCADE, related_name="+"
    )
    # The Basic credential it came with: whoever created that may not approve it.
    credential = models.ForeignKey(
        EstCredential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "csr_sha256", "server_keygen"],
                name="est_held_csr_once",
            ),
        ]

    def __str__(self) -> str:
        return f"EST held request {self.csr_sha256[:12]}"
