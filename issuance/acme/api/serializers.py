"""ACME's part of the Enrollment tab over the API: EAB credentials (the HMAC key appears
once, in the answer that created it) and the Application's ACME accounts."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from issuance.acme.models import Account, ExternalAccountKey


class ExternalAccountKeySerializer(serializers.ModelSerializer):
    hmac_key = serializers.SerializerMethodField()
    accounts = serializers.IntegerField(source="account_count", read_only=True, default=0)

    class Meta:
        model = ExternalAccountKey
        fields = [
            "name",
            "key_id",
            "hmac_key",
            "expires_at",
            "reusable",
            "revoked_at",
            "bound_at",
            "accounts",
            "created_by",
            "created_at",
        ]
        read_only_fields = [
            "key_id",
            "hmac_key",
            "revoked_at",
            "bound_at",
            "accounts",
            "created_by",
            "created_at",
        ]

    def get_hmac_key(self, eab: ExternalAccountKey) -> str | None:
        """Only in the answer that created it (base64url): never readable again."""
        value: str | None = self.context.get("hmac_key")
        return value

    def validate_expires_at(self, value: Any) -> Any:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Choose a time in the future.")
        return value


class RevokeExternalAccountKeySerializer(serializers.Serializer):
    deactivate_accounts = serializers.BooleanField(default=True)


class RevokedSerializer(serializers.Serializer):
    revoked_at = serializers.DateTimeField()
    deactivated_accounts = serializers.ListField(child=serializers.CharField())


class AccountSerializer(serializers.ModelSerializer):
    profile = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    eab_credential = serializers.CharField(source="eab_key.name", read_only=True, default=None)
    eab_key_id = serializers.CharField(source="eab_key.key_id", read_only=True, default=None)
    last_order_at = serializers.DateTimeField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Account
        fields = [
            "id",
            "status",
            "profile",
            "thumbprint",
            "contact",
            "eab_credential",
            "eab_key_id",
            "created_at",
            "last_order_at",
        ]
        read_only_fields = fields
