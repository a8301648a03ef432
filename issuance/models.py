"""Certificate requests, the certificate inventory, and each Application's renewal settings."""

from __future__ import annotations

import uuid

from cryptography import x509
from django.conf import settings
from django.db import models

from certportal.secrets import SealedField, unseal_for
from issuance.choices import (
    HELD_KEY_MODES,
    CertificateStatus,
    EnrollmentMethod,
    KeyMode,
    RequestState,
    RevocationReason,
)
from pki import export


class CertificateRequest(models.Model):
    """One ask for a certificate, from any front, and where it stands."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed through request_app_state_idx, which leads with application.
    application = models.ForeignKey(
        "applications.Application",
        on_delete=models.PROTECT,
        related_name="requests",
        db_index=False,
    )
    profile = models.ForeignKey(
        "profiles.CertificateProfile", on_delete=models.PROTECT, related_name="requests"
    )
    state = models.CharField(max_length=20, choices=RequestState.choices)
    method = models.CharField(max_length=16, choices=EnrollmentMethod.choices)
    # Users are deactivated, not deleted: no index for the rare SET_NULL sweep.
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    requester_label = models.CharField(max_length=200, blank=True)
    csr_pem = models.TextField(blank=True)
    key_algorithm = models.CharField(max_length=16, blank=True)  # server-side key generation
    common_name = models.CharField(max_length=255, blank=True)
    sans = models.JSONField(default=list, blank=True)
    subject_attrs = models.JSONField(default=dict, blank=True)
    validity_days = models.PositiveIntegerField(null=True, blank=True)
    replaces = models.ForeignKey(
        "issuance.Certificate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # certificates are never deleted (PROTECT), so nothing looks this up
    )
    reason = models.TextField(blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["application", "state", "-created_at"], name="request_app_state_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"request {self.id} ({self.state})"

    @property
    def server_keygen(self) -> bool:
        return not self.csr_pem


class Certificate(models.Model):
    """An issued (or imported) certificate in an Application's inventory."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # application and ca are indexed by the composite indexes below, which lead with them.
    application = models.ForeignKey(
        "applications.Application",
        on_delete=models.PROTECT,
        related_name="certificates",
        db_index=False,
    )
    profile = models.ForeignKey(
        "profiles.CertificateProfile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="certificates",
    )
    # The CA whose CRL and OCSP answers cover this certificate: set by the pipeline, and on
    # import only when the CA's key verifiably signed it (issuance.trust). None: external.
    ca = models.ForeignKey(
        "profiles.CertificateAuthority",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="certificates",
        db_index=False,
    )
    request = models.OneToOneField(
        CertificateRequest,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="certificate",
    )
    serial_number = models.CharField(max_length=64)
    common_name = models.CharField(max_length=255, blank=True)
    sans = models.JSONField(default=list, blank=True)
    # Lowercased CN and SANs, for the inventory's search.
    search_text = models.TextField(blank=True)
    subject = models.CharField(max_length=1000)
    issuer = models.CharField(max_length=1000)
    fingerprint_sha256 = models.CharField(max_length=64)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    key_algorithm = models.CharField(max_length=32)
    certificate_pem = models.TextField()
    # The issuer chain (nearest first) of imported certificates; issued ones use their CA's.
    chain_pem = models.TextField(blank=True)
    private_key = SealedField(blank=True)
    status = models.CharField(
        max_length=16, choices=CertificateStatus.choices, default=CertificateStatus.ACTIVE
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(
        max_length=24, choices=RevocationReason.choices, blank=True
    )
    method = models.CharField(max_length=16, choices=EnrollmentMethod.choices)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    requester_label = models.CharField(max_length=200, blank=True)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Automatic renewal (issuance.renewal). None inherits the Application's RenewalSettings, then
    # the profile's renewal_window_days. next_renewal_attempt_at is when the sweep next
    # looks at this certificate: notAfter minus the window, or a backoff after a failure.
    auto_renew = models.BooleanField(null=True, blank=True)
    renew_days_before = models.PositiveIntegerField(null=True, blank=True)
    next_renewal_attempt_at = models.DateTimeField(null=True, blank=True)
    renewal_attempts = models.PositiveIntegerField(default=0)
    last_renewal_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["ca", "serial_number"], name="unique_serial_per_ca"),
            # Per Application: one certificate may sit in several inventories, and an
            # import must not learn whether another Application holds it.
            models.UniqueConstraint(
                fields=["application", "fingerprint_sha256"], name="unique_fingerprint_per_app"
            ),
        ]
        indexes = [
            models.Index(
                fields=["application", "status", "not_after"], name="cert_app_status_exp_idx"
            ),
            models.Index(fields=["application", "not_after"], name="cert_app_expiry_idx"),
            models.Index(fields=["application", "-created_at"], name="cert_app_created_idx"),
            # The inventory's filters in its default order (newest first): the first page
            # is the first rows of one index range, however the filter correlates with age.
            # Sorted by expiry, a profile or method filter walks cert_app_expiry_idx.
            models.Index(
                fields=["application", "status", "-created_at"], name="cert_app_status_new_idx"
            ),
            models.Index(
                fields=["application", "profile", "-created_at"], name="cert_app_profile_new_idx"
            ),
            models.Index(
                fields=["application", "method", "-created_at"], name="cert_app_method_new_idx"
            ),
            models.Index(fields=["ca", "status"], name="cert_ca_status_idx"),
            models.Index(fields=["status", "not_after"], name="cert_status_expiry_idx"),
            models.Index(fields=["application", "serial_number"], name="cert_app_serial_idx"),
            # The renewal due-scan: only active certificates whose key the portal holds.
            models.Index(
                fields=["next_renewal_attempt_at"],
                name="cert_renewal_due_idx",
                condition=models.Q(status="active", profile__isnull=False)
                & ~models.Q(private_key=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.common_name or self.serial_number} ({self.status})"

    @property
    def has_private_key(self) -> bool:
        return bool(self.private_key)

    @property
    def revocation_published(self) -> bool:
        """Whether a portal CA's CRL and OCSP answers cover it; False for an external one."""
        return self.ca_id is not None

    def private_key_pem(self) -> bytes:
        """The held key in plaintext; callers audit every use (see services)."""
        return unseal_for(self, "private_key")

    def as_x509(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())

    def chain(self) -> list[x509.Certificate]:
        """The issuer certificates above this one, nearest first."""
        if self.chain_pem:
            return export.load_certificates(self.chain_pem)
        return self.ca.chain() if self.ca is not None else []


class BlockedKey(models.Model):
    """A public key reported compromised: the pipeline refuses it in any later request."""

    # SHA-256 of the SubjectPublicKeyInfo DER (hex); the primary key, so the pipeline's
    # one lookup per batch is an index scan.
    spki_sha256 = models.CharField(max_length=64, primary_key=True)
    reason = models.CharField(max_length=24, choices=RevocationReason.choices)
    # The revocation that reported it (kept if the certificate row ever goes).
    certificate = models.ForeignKey(
        Certificate,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    reported_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"blocked key {self.spki_sha256[:16]}…"


class RenewalSettings(models.Model):
    """An Application's renewal defaults; certificates may override auto-renew and window."""

    application = models.OneToOneField(
        "applications.Application", on_delete=models.CASCADE, related_name="renewal_settings"
    )
    auto_renew = models.BooleanField(default=True)
    # None: the profile's renewal_window_days.
    renew_days_before = models.PositiveIntegerField(null=True, blank=True)
    key_mode = models.CharField(
        max_length=8,
        choices=[(mode.value, mode.label) for mode in HELD_KEY_MODES],
        default=KeyMode.NEW,
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "renewal settings"

    def __str__(self) -> str:
        return f"renewal settings of {self.application_id}"
