"""Renewal settings over the API: the Application's defaults and one certificate's own."""

from __future__ import annotations

from rest_framework import serializers

from issuance.choices import HELD_KEY_MODES, KeyMode


class RenewalSettingsSerializer(serializers.Serializer):
    """The Renewal tab's defaults; renew_days_before null is each profile's window."""

    auto_renew = serializers.BooleanField(default=True)
    renew_days_before = serializers.IntegerField(
        min_value=0, max_value=3650, allow_null=True, default=None
    )
    key_mode = serializers.ChoiceField(
        choices=[(mode.value, mode.label) for mode in HELD_KEY_MODES], default=KeyMode.NEW
    )
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)


class CertificateRenewalSerializer(serializers.Serializer):
    """A certificate's own settings; null inherits the Application's."""

    certificate = serializers.UUIDField(source="pk", read_only=True)
    auto_renew = serializers.BooleanField(allow_null=True, default=None)
    renew_days_before = serializers.IntegerField(
        min_value=1, max_value=3650, allow_null=True, default=None
    )
    next_renewal_attempt_at = serializers.DateTimeField(read_only=True, allow_null=True)
