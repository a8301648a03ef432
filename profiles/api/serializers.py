"""Certificate authorities and profiles over the API."""

from __future__ import annotations

from rest_framework import serializers

from profiles.choices import CAStatus, KeyAlgorithm, Preset
from profiles.models import CertificateAuthority, CertificateProfile
from profiles.services import PROFILE_FIELDS


class CertificateAuthoritySerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    certificate = serializers.CharField(source="certificate_pem", read_only=True)
    csr = serializers.CharField(source="csr_pem", read_only=True)

    class Meta:
        model = CertificateAuthority
        fields = [
            "slug",
            "name",
            "kind",
            "status",
            "parent",
            "key_algorithm",
            "subject",
            "serial_number",
            "fingerprint_sha256",
            "not_before",
            "not_after",
            "path_length",
            "certificate",
            "csr",
            "created_at",
        ]
        read_only_fields = fields


class CACreateSerializer(serializers.Serializer):
    """An internal root (no parent) or intermediate CA."""

    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=63)
    common_name = serializers.CharField(max_length=64)
    organization = serializers.CharField(max_length=64, required=False, allow_blank=True)
    organizational_unit = serializers.CharField(max_length=64, required=False, allow_blank=True)
    country = serializers.CharField(min_length=2, max_length=2, required=False, allow_blank=True)
    key_algorithm = serializers.ChoiceField(
        choices=KeyAlgorithm.choices, default=KeyAlgorithm.EC_P256
    )
    validity_days = serializers.IntegerField(min_value=1, max_value=36500, default=3650)
    path_length = serializers.IntegerField(
        min_value=0, max_value=10, required=False, allow_null=True
    )
    parent = serializers.SlugField(max_length=63, required=False, allow_null=True)
    permitted_dns = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, max_length=100
    )
    excluded_dns = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, max_length=100
    )
    external = serializers.BooleanField(
        default=False,
        help_text="A CA another CA signs: the portal makes its key and CSR; install the "
        "signed certificate afterwards.",
    )


class CAImportSerializer(serializers.Serializer):
    """An existing CA: its certificate (then its chain, nearest first) and its key."""

    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=63)
    certificate_pem = serializers.CharField(max_length=200_000)
    private_key_pem = serializers.CharField(max_length=100_000, write_only=True)
    password = serializers.CharField(
        max_length=1024, required=False, allow_blank=True, write_only=True
    )


class CAInstallSerializer(serializers.Serializer):
    certificate_pem = serializers.CharField(max_length=200_000)


class CAStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[CAStatus.ACTIVE.value, CAStatus.DISABLED.value])


class CertificateProfileSerializer(serializers.ModelSerializer):
    issuing_ca = serializers.SlugRelatedField(
        slug_field="slug", queryset=CertificateAuthority.objects.all()
    )
    preset = serializers.ChoiceField(choices=Preset.choices, required=False)
    key_algorithms = serializers.ListField(
        child=serializers.ChoiceField(choices=["RSA", "EC", "ED25519"]), required=False
    )
    ec_curves = serializers.ListField(
        child=serializers.ChoiceField(choices=["P-256", "P-384"]), required=False
    )
    key_usages = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    extended_key_usages = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False
    )
    dns_rules = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=500
    )
    ip_cidrs = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=500
    )
    email_patterns = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=500
    )
    uri_patterns = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=500
    )
    subject_rules = serializers.DictField(child=serializers.DictField(), required=False)

    class Meta:
        model = CertificateProfile
        # The writable policy fields are the services' list, so the two cannot drift.
        fields = [*PROFILE_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "slug": {"validators": []},
            "name": {"validators": []},
            "rsa_min_bits": {"min_value": 1024, "max_value": 16384},
            "max_sans": {"max_value": 1000},
            "renewal_window_days": {"max_value": 36500},
        }
