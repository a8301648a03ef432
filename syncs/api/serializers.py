"""Connections, syncs and sync items over the API. Credentials are write-only: no answer
ever carries them, only whether they are set."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from syncs.choices import ConnectionKind, Destination, Selector
from syncs.models import Connection, Sync, SyncItem, SyncRun


class ConnectionSerializer(serializers.ModelSerializer):
    credentials_set = serializers.SerializerMethodField()

    class Meta:
        model = Connection
        fields = [
            "id",
            "name",
            "kind",
            "config",
            "credentials_set",
            "last_tested_at",
            "last_test_ok",
            "last_test_message",
            "deleting",
            "created_at",
        ]
        read_only_fields = fields

    def get_credentials_set(self, connection: Connection) -> bool:
        return bool(connection.credentials)


class ConnectionWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=ConnectionKind.choices)
    # Write-only: {"access_key_id", "secret_access_key"} (aws), {"tenant_id", "client_id",
    # "client_secret"} (azure), {"api_token"} (cloudflare). Omit on update to keep them.
    credentials = serializers.DictField(
        child=serializers.CharField(max_length=4096, trim_whitespace=True),
        required=False,
        write_only=True,
    )
    endpoint_url = serializers.CharField(max_length=500, required=False, allow_blank=True)
    role_arn = serializers.CharField(max_length=2048, required=False, allow_blank=True)
    authority_host = serializers.CharField(max_length=500, required=False, allow_blank=True)
    api_base_url = serializers.CharField(max_length=500, required=False, allow_blank=True)

    CONFIG = ("endpoint_url", "role_arn", "authority_host", "api_base_url")

    def config(self) -> dict[str, str]:
        return {k: v for k, v in self.validated_data.items() if k in self.CONFIG}


class ConnectionTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()


class SyncWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    destination = serializers.ChoiceField(choices=Destination.choices)
    connection = serializers.IntegerField()
    selector = serializers.ChoiceField(choices=Selector.choices, required=False)
    profile = serializers.SlugField(max_length=63, required=False, allow_blank=True)
    certificate = serializers.UUIDField(required=False, allow_null=True)
    name_pattern = serializers.CharField(max_length=255, required=False, allow_blank=True)
    name_template = serializers.CharField(max_length=255, required=False, allow_blank=True)
    options = serializers.DictField(required=False, default=dict)
    is_active = serializers.BooleanField(required=False, default=True)

    def chosen_selector(self) -> str:
        data = self.validated_data
        if data.get("selector"):
            return str(data["selector"])
        if data.get("certificate"):
            return Selector.LINEAGE
        if data.get("name_pattern"):
            return Selector.PATTERN
        return Selector.PROFILE


class SyncSerializer(serializers.ModelSerializer):
    profile = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Sync
        fields = [
            "id",
            "name",
            "destination",
            "connection",
            "selector",
            "profile",
            "certificate",
            "name_pattern",
            "name_template",
            "options",
            "is_active",
            "deleting",
            "counts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_counts(self, sync: Sync) -> dict[str, int]:
        counts: dict[str, dict[str, int]] = self.context.get("counts", {})
        return counts.get(str(sync.pk), {})


class SyncItemSerializer(serializers.ModelSerializer):
    common_name = serializers.CharField(source="certificate.common_name", read_only=True)
    serial_number = serializers.CharField(source="certificate.serial_number", read_only=True)

    class Meta:
        model = SyncItem
        fields = [
            "certificate",
            "common_name",
            "serial_number",
            "want",
            "external_id",
            "external_version",
            "status",
            "last_error",
            "attempts",
            "synced_at",
            "updated_at",
        ]
        read_only_fields = fields


class SyncRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncRun
        fields = ["id", "trigger", "actor_label", "queued", "report", "created_at"]
        read_only_fields = fields


class PreviewSerializer(serializers.Serializer):
    certificate = serializers.UUIDField()
    common_name = serializers.CharField()
    serial_number = serializers.CharField()
    not_after = serializers.DateTimeField()
    syncable = serializers.BooleanField()


class DriftRequestSerializer(serializers.Serializer):
    repair = serializers.BooleanField(default=False)


def as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}
