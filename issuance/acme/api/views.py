"""ACME's part of the Enrollment tab over the API. Admins see and change EAB credentials
(by name: PUT makes one only when no usable credential has that name); every member reads
the accounts, Admins deactivate them."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from certportal import permissions as perms
from certportal.api.errors import json_object
from certportal.api.scoping import ApplicationScopedMixin, actor_for
from issuance.acme import services, ui
from issuance.acme.api import serializers as s
from issuance.acme.models import Account, ExternalAccountKey


def _created(eab: ExternalAccountKey, hmac_key: str) -> Response:
    body = s.ExternalAccountKeySerializer(eab, context={"hmac_key": hmac_key}).data
    response = Response(body, status=status.HTTP_201_CREATED)
    response["Cache-Control"] = "no-store"
    return response


class ExternalAccountKeyViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """EAB credentials, newest first; a name may repeat once the older one is revoked."""

    serializer_class = s.ExternalAccountKeySerializer
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    # The page lists credentials to Admins only.
    action_permissions = {
        name: perms.MANAGE for name in ("list", "retrieve", "create", "update", "revoke")
    }

    def get_queryset(self) -> QuerySet[ExternalAccountKey]:
        if getattr(self, "swagger_fake_view", False):
            return ExternalAccountKey.objects.none()
        return (
            ExternalAccountKey.objects.filter(application=self.get_application())
            .annotate(account_count=Count("accounts"))
            .order_by("-created_at", "-pk")
        )

    def _usable(self, name: str) -> ExternalAccountKey | None:
        """The newest credential of this name an ACME client could still bind with."""
        unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        return self.get_queryset().filter(unexpired, name=name, revoked_at__isnull=True).first()

    def get_object(self) -> ExternalAccountKey:
        name = self.kwargs["name"]
        found = self._usable(name) or self.get_queryset().filter(name=name).first()
        if found is None:
            get_object_or_404(ExternalAccountKey.objects.none())
        assert found is not None
        return found

    def retrieve(self, request: Request, slug: str, name: str) -> Response:
        """The usable credential of this name, else the newest (revoked or expired)."""
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request: Request, slug: str) -> Response:
        """A new credential; its HMAC key is in this answer only."""
        return _created(*self._create(json_object(request.data)))

    @extend_schema(
        responses={200: s.ExternalAccountKeySerializer, 201: s.ExternalAccountKeySerializer}
    )
    def update(self, request: Request, slug: str, name: str) -> Response:
        """Idempotent: 200 with the usable credential of this name (no key), else 201
        with a new one and its key. Settings of an existing credential do not change."""
        current = self._usable(name)
        if current is not None:
            return Response(self.get_serializer(current).data)
        return _created(*self._create({**json_object(request.data), "name": name}))

    def _create(self, data: dict[str, Any]) -> tuple[ExternalAccountKey, str]:
        ask = s.ExternalAccountKeySerializer(data=data)
        ask.is_valid(raise_exception=True)
        eab, hmac_key = services.create_eab_key(
            self.get_application(),
            name=ask.validated_data["name"],
            expires_at=ask.validated_data.get("expires_at"),
            reusable=ask.validated_data.get("reusable", False),
            actor=actor_for(self.request),
        )
        return self.get_queryset().get(pk=eab.pk), hmac_key

    @extend_schema(
        request=s.RevokeExternalAccountKeySerializer, responses={200: s.RevokedSerializer}
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, slug: str, name: str) -> Response:
        """Revoke the usable credential of this name: no new account binds with it; its
        accounts are deactivated too unless deactivate_accounts is false."""
        eab = self._usable(name)
        if eab is None:
            get_object_or_404(ExternalAccountKey.objects.none())
        assert eab is not None
        ask = s.RevokeExternalAccountKeySerializer(data=json_object(request.data))
        ask.is_valid(raise_exception=True)
        deactivated = services.revoke_eab_key(
            eab,
            actor=actor_for(request),
            deactivate_accounts=ask.validated_data["deactivate_accounts"],
        )
        eab.refresh_from_db(fields=["revoked_at"])
        body = {"revoked_at": eab.revoked_at, "deactivated_accounts": [a.pk for a in deactivated]}
        return Response(s.RevokedSerializer(body).data)


class AccountViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The Application's ACME accounts, newest first, with their last order's time."""

    serializer_class = s.AccountSerializer
    lookup_value_regex = r"[A-Za-z0-9_-]+"
    action_permissions = {"deactivate": perms.MANAGE}

    def get_queryset(self) -> QuerySet[Account]:
        if getattr(self, "swagger_fake_view", False):
            return Account.objects.none()
        return ui.account_rows(self.get_application()).select_related("profile")

    @extend_schema(request=None, responses={200: s.AccountSerializer})
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, slug: str, pk: str) -> Response:
        """Deactivate the account (its later ACME requests are refused); an account no
        longer valid stays as it is."""
        account = self.get_object()
        services.deactivate_account(account, actor=actor_for(request))
        return Response(self.get_serializer(self.get_queryset().get(pk=account.pk)).data)
