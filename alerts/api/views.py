"""The Alerting tab over the API (Admins, like the page): channels and rules by name, so
PUT re-applies the same configuration without duplicates; the delivery log to read."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from alerts import services
from alerts.api import serializers as s
from alerts.forms import channel_settings
from alerts.models import AlertRule, Channel, Delivery
from certportal import permissions as perms
from certportal.api.errors import field_error, json_object
from certportal.api.scoping import ApplicationScopedMixin, actor_for

# The Alerting page is for Admins only: so is every action here, reads included.
ADMINS_ONLY = {
    name: perms.MANAGE
    for name in ("list", "retrieve", "create", "update", "partial_update", "test")
}
NAME = r"[^/]+"
OPTIONAL_RULE_FIELDS = (
    "thresholds_days",
    "repeat_daily",
    "name_pattern",
    "include_auto_renewed",
    "is_active",
)


class ChannelViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Where alerts go; secrets are written, never read back."""

    serializer_class = s.ChannelSerializer
    lookup_field = "name"
    lookup_value_regex = NAME
    action_permissions = ADMINS_ONLY

    def get_queryset(self) -> QuerySet[Channel]:
        if getattr(self, "swagger_fake_view", False):
            return Channel.objects.none()
        return Channel.objects.filter(application=self.get_application())

    @extend_schema(request=s.ChannelWriteSerializer, responses={201: s.ChannelSerializer})
    def create(self, request: Request, slug: str) -> Response:
        channel = self._save(json_object(request.data), None)
        return Response(self.get_serializer(channel).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.ChannelWriteSerializer,
        responses={200: s.ChannelSerializer, 201: s.ChannelSerializer},
    )
    def update(self, request: Request, slug: str, name: str) -> Response:
        """Create or replace the channel of this name (a script may send it again)."""
        current = self.get_queryset().filter(name=name).first()
        channel = self._save({**json_object(request.data), "name": name}, current)
        code = status.HTTP_200_OK if current else status.HTTP_201_CREATED
        return Response(self.get_serializer(channel).data, status=code)

    @extend_schema(request=s.ChannelWriteSerializer, responses={200: s.ChannelSerializer})
    def partial_update(self, request: Request, slug: str, name: str) -> Response:
        current = self.get_object()
        known = {
            "name": current.name,
            "kind": current.kind,
            "recipients": current.config.get("recipients", []),
            "url": current.config.get("url", ""),
        }
        channel = self._save({**known, **json_object(request.data)}, current)
        return Response(self.get_serializer(channel).data)

    def _save(self, data: Any, current: Channel | None) -> Channel:
        ask = s.ChannelWriteSerializer(data=data)
        ask.is_valid(raise_exception=True)
        fields = ask.validated_data
        config, secrets = channel_settings(
            fields["kind"], fields["recipients"], fields["url"].strip(), fields["secret"]
        )
        return services.save_channel(
            self.get_application(),
            name=fields["name"],
            kind=fields["kind"],
            config=config,
            secrets=secrets,
            actor=actor_for(self.request),
            channel=current,
        )

    @extend_schema(request=None, responses={202: s.TestQueuedSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, slug: str, name: str) -> Response:
        """Queue a test message; the worker sends it and the delivery log shows how it went."""
        delivery = services.queue_test_message(self.get_object(), actor=actor_for(request))
        body = {"delivery": delivery.pk, "status": delivery.status}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class AlertRuleViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Which events alert which channels, with expiry thresholds and filters."""

    serializer_class = s.AlertRuleSerializer
    lookup_field = "name"
    lookup_value_regex = NAME
    action_permissions = ADMINS_ONLY

    def get_queryset(self) -> QuerySet[AlertRule]:
        if getattr(self, "swagger_fake_view", False):
            return AlertRule.objects.none()
        return (
            AlertRule.objects.filter(application=self.get_application())
            .select_related("profile")
            .prefetch_related("channels")
        )

    def create(self, request: Request, slug: str) -> Response:
        rule = self._save(json_object(request.data), AlertRule())
        return Response(self.get_serializer(rule).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: s.AlertRuleSerializer, 201: s.AlertRuleSerializer})
    def update(self, request: Request, slug: str, name: str) -> Response:
        """Create or replace the rule of this name (a script may send it again)."""
        current = self.get_queryset().filter(name=name).first()
        rule = self._save({**json_object(request.data), "name": name}, current or AlertRule())
        code = status.HTTP_200_OK if current else status.HTTP_201_CREATED
        return Response(self.get_serializer(rule).data, status=code)

    def partial_update(self, request: Request, slug: str, name: str) -> Response:
        current = self.get_object()
        known = self.get_serializer(current).data
        rule = self._save({**known, **json_object(request.data)}, current)
        return Response(self.get_serializer(rule).data)

    def _save(self, data: Any, rule: AlertRule) -> AlertRule:
        ask = s.AlertRuleSerializer(data=data)
        ask.is_valid(raise_exception=True)
        fields = dict(ask.validated_data)
        application = self.get_application()
        wanted = fields.pop("channels")
        channel_ids = list(
            application.alert_channels.filter(name__in=wanted).values_list("pk", flat=True)
        )
        if len(channel_ids) != len(set(wanted)):
            raise field_error("channels", "unknown_channel", "Unknown channel.")
        rule.profile = self._profile(fields.pop("profile", None))
        blank = AlertRule()
        for field in OPTIONAL_RULE_FIELDS:  # a PUT replaces: what it leaves out is default
            fields.setdefault(field, getattr(blank, field))
        for field, value in fields.items():
            setattr(rule, field, value)
        saved = services.save_rule(application, rule, channel_ids, actor=actor_for(self.request))
        return self.get_queryset().get(pk=saved.pk)

    def _profile(self, slug: str | None) -> Any:
        if not slug:
            return None
        profile = self.get_application().profiles.filter(slug=slug).first()
        if profile is None:
            raise field_error(
                "profile",
                "profile_unavailable",
                "That profile is not attached to this Application.",
            )
        return profile


class DeliveryViewSet(ApplicationScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The delivery log, newest first: what was sent where, and how it went."""

    serializer_class = s.DeliverySerializer
    action_permissions = ADMINS_ONLY

    def get_queryset(self) -> QuerySet[Delivery]:
        if getattr(self, "swagger_fake_view", False):
            return Delivery.objects.none()
        return (
            Delivery.objects.filter(application=self.get_application())
            .select_related("channel", "rule")
            .order_by("-created_at", "-pk")
        )
