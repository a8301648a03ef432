"""The Renewal tab over the API (Admins, like the page): the Application's renewal
defaults and one active certificate's overrides. PUT replaces, PATCH changes what it
names; the services refuse a window not shorter than the validity, as the page does."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from certportal import permissions as perms
from certportal.api.errors import json_object
from certportal.api.scoping import ApplicationScopedMixin, actor_for
from issuance.choices import CertificateStatus
from issuance.models import Certificate, RenewalSettings
from issuance.renewal import services
from issuance.renewal.api import serializers as s

ADMINS_ONLY = {name: perms.MANAGE for name in ("retrieve", "update", "partial_update")}


class RenewalSettingsViewSet(ApplicationScopedMixin, viewsets.GenericViewSet):
    """The Application's renewal defaults (one object per Application)."""

    serializer_class = s.RenewalSettingsSerializer
    action_permissions = ADMINS_ONLY

    def _current(self) -> RenewalSettings:
        found = RenewalSettings.objects.filter(application=self.get_application()).first()
        return found or RenewalSettings(application=self.get_application())

    def retrieve(self, request: Request, slug: str) -> Response:
        return Response(self.get_serializer(self._current()).data)

    def update(self, request: Request, slug: str) -> Response:
        return self._save(json_object(request.data))

    @extend_schema(request=s.RenewalSettingsSerializer)
    def partial_update(self, request: Request, slug: str) -> Response:
        return self._save(
            {**self.get_serializer(self._current()).data, **json_object(request.data)}
        )

    def _save(self, data: dict[str, Any]) -> Response:
        ask = self.get_serializer(data=data)
        ask.is_valid(raise_exception=True)
        row = services.configure_application(
            self.get_application(), **ask.validated_data, actor=actor_for(self.request)
        )
        return Response(self.get_serializer(row).data)


class CertificateRenewalViewSet(ApplicationScopedMixin, viewsets.GenericViewSet):
    """One active certificate's auto-renew switch and window."""

    serializer_class = s.CertificateRenewalSerializer
    action_permissions = ADMINS_ONLY

    def get_object(self) -> Certificate:
        active = Certificate.objects.filter(
            application=self.get_application(), status=CertificateStatus.ACTIVE
        )
        return get_object_or_404(active, pk=self.kwargs["pk"])

    def retrieve(self, request: Request, slug: str, pk: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def update(self, request: Request, slug: str, pk: str) -> Response:
        return self._save(self.get_object(), json_object(request.data))

    @extend_schema(request=s.CertificateRenewalSerializer)
    def partial_update(self, request: Request, slug: str, pk: str) -> Response:
        certificate = self.get_object()
        return self._save(
            certificate, {**self.get_serializer(certificate).data, **json_object(request.data)}
        )

    def _save(self, certificate: Certificate, data: dict[str, Any]) -> Response:
        ask = self.get_serializer(data=data)
        ask.is_valid(raise_exception=True)
        saved = services.configure_certificate(
            certificate, **ask.validated_data, actor=actor_for(self.request)
        )
        return Response(self.get_serializer(saved).data)
