"""Alert channels, rules and the delivery log over the API. A channel's secrets (Slack
and Teams URLs, the PagerDuty routing key, the webhook signing secret) are write-only."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from alerts.choices import AlertEvent, ChannelKind
from alerts.models import AlertRule, Channel, Delivery


class ChannelSerializer(serializers.ModelSerializer):
    recipients = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = ["id", "name", "kind", "recipients", "url", "has_secret", "created_at"]
        read_only_fields = fields

    def get_recipients(self, channel: Channel) -> list[str]:
        return list(channel.config.get("recipients", []))

    def get_url(self, channel: Channel) -> str:
        """The generic webhook's and PagerDuty's URL; Slack and Teams URLs are secrets."""
        return str(channel.config.get("url", ""))

    def get_has_secret(self, channel: Channel) -> bool:
        return bool(channel.secrets)


class ChannelWriteSerializer(serializers.Serializer):
    """The channel form's fields. A blank secret (or Slack/Teams url) keeps the stored one."""

    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    recipients = serializers.ListField(
        child=serializers.CharField(max_length=254), required=False, default=list
    )
    url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    secret = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", write_only=True
    )


class TestQueuedSerializer(serializers.Serializer):
    delivery = serializers.IntegerField()
    status = serializers.CharField()


class ChannelNamesField(serializers.ListField):
    """Channels by name: names in, the rule's channels' names out."""

    child = serializers.CharField(max_length=100)

    def to_representation(self, data: Any) -> list[str]:
        return [channel.name for channel in data.all()]


class AlertRuleSerializer(serializers.ModelSerializer):
    """Channels by name, the profile by slug (null: every profile)."""

    events = serializers.ListField(child=serializers.ChoiceField(choices=AlertEvent.choices))
    thresholds_days = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=3650), required=False
    )
    profile = serializers.SlugField(max_length=63, required=False, allow_null=True)
    channels = ChannelNamesField()

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "name",
            "events",
            "thresholds_days",
            "repeat_daily",
            "profile",
            "name_pattern",
            "include_auto_renewed",
            "channels",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        # Uniqueness of the name is the service's to check (same message as the page).
        validators: list[Any] = []

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = dict(super().to_representation(instance))
        data["profile"] = instance.profile.slug if instance.profile_id else None
        return data


class DeliverySerializer(serializers.ModelSerializer):
    channel = serializers.SlugRelatedField(slug_field="name", read_only=True)
    rule = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "created_at",
            "event",
            "subject",
            "channel",
            "rule",
            "recipients",
            "status",
            "attempts",
            "next_attempt_at",
            "sent_at",
            "last_error",
        ]
        read_only_fields = fields
