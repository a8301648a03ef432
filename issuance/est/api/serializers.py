"""EST enrollments and their Basic credentials over the API; passwords appear once."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from issuance.est.models import EstCredential, EstEnrollment


class EstEnrollmentSerializer(serializers.ModelSerializer):
    profile = serializers.SlugField(max_length=63)
    label = serializers.CharField(max_length=100, required=False, allow_blank=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = EstEnrollment
        fields = [
            "label",
            "profile",
            "url",
            "is_default",
            "basic_auth",
            "client_cert_auth",
            "trust_bundle_pem",
            "reenroll_allow_san_change",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["url", "created_at", "updated_at"]

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = dict(super().to_representation(instance))
        data["profile"] = instance.profile.slug
        return data

    def get_url(self, enrollment: EstEnrollment) -> str:
        return f"{settings.CERTPORTAL_BASE_URL}/.well-known/est/{enrollment.label}/"


class EstCredentialSerializer(serializers.ModelSerializer):
    password = serializers.SerializerMethodField()

    class Meta:
        model = EstCredential
        fields = [
            "id",
            "username",
            "password",
            "expires_at",
            "revoked_at",
            "created_by",
            "created_at",
            "last_used_at",
        ]
        read_only_fields = [
            "id",
            "password",
            "revoked_at",
            "created_by",
            "created_at",
            "last_used_at",
        ]

    def get_password(self, credential: EstCredential) -> str | None:
        """Only in the answer that created it: the portal keeps a hash."""
        return self.context.get("password")
