"""Read-only admin views of the inventory and requests (certportal.adminsite.ReadOnlyAdmin)."""

from django.contrib import admin

from certportal.adminsite import ReadOnlyAdmin
from issuance.models import BlockedKey, Certificate, CertificateRequest


@admin.register(Certificate)
class CertificateAdmin(ReadOnlyAdmin):
    list_display = ["common_name", "application", "status", "method", "not_after", "serial_number"]
    list_select_related = ["application"]
    # private_key is sealed and never shown; has_private_key says whether one is held.
    fields = readonly_fields = (
        "id", "application", "profile", "ca", "status", "method", "common_name", "sans",
        "subject", "issuer", "serial_number", "fingerprint_sha256", "key_algorithm",
        "not_before", "not_after", "revoked_at", "revocation_reason", "requester_label",
        "replaces", "created_at", "has_private_key", "certificate_pem", "chain_pem",
    )  # fmt: skip


@admin.register(CertificateRequest)
class CertificateRequestAdmin(ReadOnlyAdmin):
    list_display = ["common_name", "application", "profile", "state", "method", "created_at"]
    list_select_related = ["application", "profile"]


@admin.register(BlockedKey)
class BlockedKeyAdmin(ReadOnlyAdmin):
    list_display = ["spki_sha256", "reason", "reported_by", "created_at"]
