"""Certificates and certificate requests over the API."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from issuance.choices import (
    CertificateStatus,
    EnrollmentMethod,
    KeyMode,
    RequestState,
    RevocationReason,
)
from issuance.inventory import DEFAULT_SORT, MAX_QUERY_LENGTH, SORTS
from issuance.models import Certificate, CertificateRequest
from pki.csr import MAX_CSR_BYTES
from profiles.choices import KeyAlgorithm


class CertificateSerializer(serializers.Serializer):
    """A certificate, read-only."""

    id = serializers.UUIDField(read_only=True)
    serial_number = serializers.CharField(read_only=True)
    common_name = serializers.CharField(read_only=True)
    sans = serializers.ListField(child=serializers.CharField(), read_only=True)
    subject = serializers.CharField(read_only=True)
    issuer = serializers.CharField(read_only=True)
    not_before = serializers.DateTimeField(read_only=True)
    not_after = serializers.DateTimeField(read_only=True)
    status = serializers.ChoiceField(choices=CertificateStatus.choices, read_only=True)
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)
    revocation_reason = serializers.ChoiceField(
        choices=[("", ""), *RevocationReason.choices], read_only=True
    )
    profile = serializers.SlugField(source="profile.slug", read_only=True, allow_null=True)
    method = serializers.ChoiceField(choices=EnrollmentMethod.choices, read_only=True)
    key_algorithm = serializers.CharField(read_only=True)
    fingerprint_sha256 = serializers.CharField(read_only=True)
    has_private_key = serializers.BooleanField(read_only=True)
    revocation_published = serializers.BooleanField(
        read_only=True,
        help_text="False for an external certificate: revoking it marks the inventory only; "
        "no portal CRL or OCSP answer covers it.",
    )
    replaces = serializers.UUIDField(source="replaces_id", read_only=True, allow_null=True)
    request_id = serializers.UUIDField(read_only=True, allow_null=True)
    requester_label = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    certificate = serializers.CharField(source="certificate_pem", read_only=True)
    chain = serializers.SerializerMethodField()

    def get_chain(self, obj: Certificate) -> str:
        return certificate_chain(obj)


def certificate_chain(certificate: Certificate) -> str:
    """The issuers above a certificate, PEM: its own chain, or its CA's with the CA."""
    if certificate.chain_pem:
        return certificate.chain_pem
    ca = certificate.ca
    return ca.chain_pem_with_self() if ca is not None else ""


class IssuedCertificateSerializer(CertificateSerializer):
    """The 201 answer to an issue or renewal: the key only when the server generated it."""

    private_key = serializers.SerializerMethodField()

    def get_private_key(self, obj: Certificate) -> str | None:
        return self.context.get("private_key_pem")


class RenewalWindowSerializer(serializers.Serializer):
    """When to renew: a client picks a moment inside [start, end] (spread, not at start).
    The renewal sweep and ACME ARI use the same window; a revoked certificate's window
    is now."""

    certificate = serializers.UUIDField()
    status = serializers.ChoiceField(choices=CertificateStatus.choices)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class PendingSerializer(serializers.Serializer):
    """The 202 answer: the request waits for approval; poll it at ``request_url``."""

    request_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=[RequestState.PENDING_APPROVAL.value])
    expires_at = serializers.DateTimeField(allow_null=True)
    request_url = serializers.CharField()


class IssueSerializer(serializers.Serializer):
    """A CSR, or the names and key algorithm of a server-generated key."""

    profile = serializers.SlugField(max_length=63)
    csr = serializers.CharField(
        required=False, max_length=MAX_CSR_BYTES, trim_whitespace=False, write_only=True
    )
    common_name = serializers.CharField(required=False, max_length=255, allow_blank=True)
    sans = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=100
    )
    key_algorithm = serializers.ChoiceField(choices=KeyAlgorithm.choices, required=False)
    validity_days = serializers.IntegerField(required=False, min_value=1, max_value=36500)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_csr = bool(attrs.get("csr"))
        if has_csr == ("key_algorithm" in attrs):
            raise serializers.ValidationError(
                "Give either a csr, or a key_algorithm with common_name and/or sans.",
                code="csr_or_key_algorithm",
            )
        if has_csr and (attrs.get("common_name") or attrs.get("sans")):
            raise serializers.ValidationError(
                "With a csr, the names come from the CSR: drop common_name and sans.",
                code="names_with_csr",
            )
        return attrs


class Base64Field(serializers.CharField):
    """Binary input (a PKCS#12 file) as base64 in JSON."""

    def to_internal_value(self, data: Any) -> bytes:
        text = super().to_internal_value(data)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise serializers.ValidationError("Send the file as base64.") from exc


class ImportSerializer(serializers.Serializer):
    """An existing certificate: a PEM bundle (with its key, optionally) or a PKCS#12 file."""

    certificate_pem = serializers.CharField(required=False, allow_blank=True, max_length=200_000)
    private_key_pem = serializers.CharField(
        required=False, allow_blank=True, max_length=100_000, write_only=True
    )
    pkcs12 = Base64Field(required=False, allow_blank=True, max_length=300_000, write_only=True)
    password = serializers.CharField(
        required=False, allow_blank=True, max_length=1024, write_only=True
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("certificate_pem")) == bool(attrs.get("pkcs12")):
            raise serializers.ValidationError(
                "Paste a PEM certificate or upload a PKCS#12 file (one)."
            )
        return attrs


class RenewSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=KeyMode.choices, default=KeyMode.NEW)
    csr = serializers.CharField(
        required=False, max_length=MAX_CSR_BYTES, trim_whitespace=False, write_only=True
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["key"] == KeyMode.CSR and not attrs.get("csr"):
            raise serializers.ValidationError(
                {"csr": [serializers.ErrorDetail("Key mode 'csr' needs a CSR.", code="required")]}
            )
        if attrs["key"] != KeyMode.CSR and attrs.get("csr"):
            raise serializers.ValidationError(
                {"csr": [serializers.ErrorDetail("Only key mode 'csr' takes a CSR.", "unexpected")]}
            )
        return attrs


class RevokeSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(
        choices=RevocationReason.choices, default=RevocationReason.UNSPECIFIED
    )


class Pkcs12Serializer(serializers.Serializer):
    password = serializers.CharField(min_length=8, max_length=256, write_only=True)


class CertificateFilterSerializer(serializers.Serializer):
    """Query parameters of the certificate list (the inventory's filters)."""

    q = serializers.CharField(required=False, max_length=MAX_QUERY_LENGTH, allow_blank=True)
    status = serializers.ChoiceField(choices=CertificateStatus.choices, required=False)
    profile = serializers.SlugField(required=False, max_length=63)
    method = serializers.ChoiceField(choices=EnrollmentMethod.choices, required=False)
    expiring_within_days = serializers.IntegerField(required=False, min_value=0, max_value=36500)
    sort = serializers.ChoiceField(choices=list(SORTS), required=False, default=DEFAULT_SORT)


class RequestFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=RequestState.choices, required=False)


class CertificateRequestSerializer(serializers.ModelSerializer):
    profile = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    status = serializers.CharField(source="state", read_only=True)
    certificate = serializers.SerializerMethodField()
    sans = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = CertificateRequest
        fields = [
            "id",
            "status",
            "method",
            "profile",
            "common_name",
            "sans",
            "key_algorithm",
            "validity_days",
            "requester_label",
            "reason",
            "replaces",
            "created_at",
            "updated_at",
            "expires_at",
            "certificate",
        ]
        read_only_fields = fields

    @extend_schema_field(CertificateSerializer(allow_null=True))
    def get_certificate(self, obj: CertificateRequest) -> dict[str, Any] | None:
        certificate = Certificate.objects.filter(request=obj).select_related("ca", "profile")
        found = certificate.first()
        return CertificateSerializer(found).data if found is not None else None
