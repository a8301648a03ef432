"""Applications, members, service accounts, tokens and audit events over the API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from applications.choices import Role
from applications.models import Application, AuditEvent, Membership
from certportal.api.models import ApiToken, ServiceAccount


class ApplicationSerializer(serializers.ModelSerializer):
    slug = serializers.CharField(source="name", read_only=True)
    profiles = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta:
        model = Application
        fields = ["slug", "name", "description", "profiles", "created_at"]
        read_only_fields = fields


class ApplicationCreateSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", max_length=63)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    profiles = serializers.ListField(
        child=serializers.SlugField(max_length=63), required=False, max_length=100
    )
    first_admin = serializers.CharField(required=False, max_length=150)


class ApplicationEditSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    profiles = serializers.ListField(
        child=serializers.SlugField(max_length=63), required=False, max_length=100
    )


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    is_service_account = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["username", "role", "is_service_account", "created_at"]
        read_only_fields = fields

    def get_is_service_account(self, obj: Membership) -> bool:
        return hasattr(obj.user, "service_account")


class MemberInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ServiceAccountSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ServiceAccount
        fields = ["name", "description", "role", "username", "created_at"]
        read_only_fields = ["username", "created_at"]
        extra_kwargs: dict[str, Any] = {"name": {"validators": []}}

    def validate_name(self, value: str) -> str:
        if not value.replace("-", "").isalnum() or value != value.lower():
            raise serializers.ValidationError(
                "Use lowercase letters, digits and hyphens.", code="invalid"
            )
        return value


class TokenSerializer(serializers.ModelSerializer):
    prefix = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]
        read_only_fields = fields

    def get_prefix(self, obj: ApiToken) -> str:
        return f"cpt_{obj.key_id}"


class TokenInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class NewTokenSerializer(TokenSerializer):
    """The answer to creating a token: the only time the plaintext is shown."""

    token = serializers.SerializerMethodField()

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields

    def get_token(self, obj: ApiToken) -> str:
        return str(self.context["token"])


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    application = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "application",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "data",
            "source_ip",
        ]
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer):
    application = serializers.CharField(
        required=False, max_length=63, help_text="Only this Application's events."
    )
    action = serializers.CharField(required=False, max_length=64)
    actor = serializers.CharField(required=False, max_length=200)
    object_id = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
