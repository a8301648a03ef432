"""Connections, syncs, their items and actions under /applications/{slug}/ (Admins
write; Operators and Auditors read; no answer carries credentials)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from certportal import permissions as perms
from certportal import queue
from certportal.api.scoping import ApplicationScopedMixin, actor_for
from syncs import services
from syncs.api import serializers as s
from syncs.models import Connection, Sync, SyncItem

WRITE = {
    name: perms.MANAGE
    for name in (
        "create",
        "partial_update",
        "destroy",
        "test",
        "run",
        "drift",
        "repush",
        "remove",
        "preview",
    )
}
REMOVE_REMOTE = OpenApiParameter(
    "remove_remote", bool, description="Remove what it pushed from the destination first."
)


def invalid(error: ValidationError) -> exceptions.ValidationError:
    """A service's ValidationError in the API's error format."""
    if hasattr(error, "error_dict"):
        return exceptions.ValidationError(
            {field: [str(m) for m in messages] for field, messages in error.message_dict.items()}
        )
    return exceptions.ValidationError(error.messages)


def _current(sync: Sync) -> dict[str, Any]:
    """A sync's settings in the API's input shape (a PATCH changes only what it names)."""
    return {
        "name": sync.name,
        "destination": sync.destination,
        "connection": sync.connection_id,
        "selector": sync.selector,
        "profile": sync.profile.slug if sync.profile is not None else "",
        "certificate": sync.certificate_id,
        "name_pattern": sync.name_pattern,
        "name_template": sync.name_template,
        "options": dict(sync.options),
        "is_active": sync.is_active,
    }


def _flag(request: Request, name: str) -> bool:
    return str(request.query_params.get(name, "")).lower() in ("1", "true", "yes", "on")


class ConnectionViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Provider credentials, sealed at rest and never shown again."""

    serializer_class = s.ConnectionSerializer
    action_permissions = WRITE
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Connection]:
        if getattr(self, "swagger_fake_view", False):
            return Connection.objects.none()
        return Connection.objects.filter(application=self.get_application())

    @extend_schema(request=s.ConnectionWriteSerializer, responses={201: s.ConnectionSerializer})
    def create(self, request: Request, slug: str) -> Response:
        connection = self._save(request, None)
        return Response(self.get_serializer(connection).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ConnectionWriteSerializer, responses={200: s.ConnectionSerializer})
    def partial_update(self, request: Request, slug: str, pk: str) -> Response:
        connection = self._save(request, self.get_object())
        return Response(self.get_serializer(connection).data)

    def _save(self, request: Request, connection: Connection | None) -> Connection:
        ask = s.ConnectionWriteSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        data = ask.validated_data
        try:
            return services.save_connection(
                self.get_application(),
                name=data["name"],
                kind=data["kind"],
                credentials=data.get("credentials"),
                config=ask.config(),
                actor=actor_for(request),
                connection=connection,
            )
        except ValidationError as exc:
            raise invalid(exc) from exc

    @extend_schema(parameters=[REMOVE_REMOTE], responses={202: None, 204: None})
    def destroy(self, request: Request, slug: str, pk: str) -> Response:
        gone = services.delete_connection(
            self.get_object(),
            remove_remote=_flag(request, "remove_remote"),
            actor=actor_for(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT if gone else status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: s.ConnectionTestSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, slug: str, pk: str) -> Response:
        ok, message = services.test_connection(self.get_object(), actor=actor_for(request))
        return Response({"ok": ok, "message": message})


class SyncViewSet(
    ApplicationScopedMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Which certificates go to which destination; items, runs and manual actions."""

    serializer_class = s.SyncSerializer
    action_permissions = WRITE
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Sync]:
        if getattr(self, "swagger_fake_view", False):
            return Sync.objects.none()
        return Sync.objects.filter(application=self.get_application()).select_related("profile")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["counts"] = getattr(self, "_counts", {})
        return context

    def _count(self, syncs: list[Sync]) -> None:
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        rows = (
            SyncItem.objects.filter(sync__in=syncs)
            .values_list("sync_id", "status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for sync_id, item_status, n in rows:
            counts[str(sync_id)][item_status] = n
        self._counts = counts

    def list(self, request: Request, slug: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None
        self._count(page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, slug: str, pk: str) -> Response:
        sync = self.get_object()
        self._count([sync])
        return Response(self.get_serializer(sync).data)

    @extend_schema(request=s.SyncWriteSerializer, responses={201: s.SyncSerializer})
    def create(self, request: Request, slug: str) -> Response:
        sync = self._save(request, None)
        return Response(self.get_serializer(sync).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SyncWriteSerializer, responses={200: s.SyncSerializer})
    def partial_update(self, request: Request, slug: str, pk: str) -> Response:
        sync = self._save(request, self.get_object())
        return Response(self.get_serializer(sync).data)

    def _spec(self, request: Request, sync: Sync | None = None) -> services.SyncSpec:
        data = {**_current(sync), **request.data} if sync is not None else request.data
        ask = s.SyncWriteSerializer(data=data)
        ask.is_valid(raise_exception=True)
        data = ask.validated_data
        application = self.get_application()
        connection = Connection.objects.filter(
            application=application, pk=data["connection"], deleting=False
        ).first()
        if connection is None:
            raise exceptions.ValidationError({"connection": ["Unknown connection."]})
        profile = None
        if data.get("profile"):
            profile = application.profiles.filter(slug=data["profile"]).first()
            if profile is None:
                raise exceptions.ValidationError(
                    {"profile": ["That profile is not attached to this Application."]}
                )
        certificate = None
        if data.get("certificate"):
            certificate = application.certificates.filter(pk=data["certificate"]).first()
            if certificate is None:
                raise exceptions.ValidationError({"certificate": ["Unknown certificate."]})
        return services.SyncSpec(
            name=data["name"],
            destination=data["destination"],
            connection=connection,
            selector=ask.chosen_selector(),
            profile=profile,
            certificate=certificate,
            name_pattern=data.get("name_pattern", ""),
            name_template=data.get("name_template", ""),
            options=dict(data.get("options") or {}),
            is_active=data.get("is_active", True),
        )

    def _save(self, request: Request, sync: Sync | None) -> Sync:
        spec = self._spec(request, sync)
        try:
            saved = services.save_sync(
                self.get_application(), spec, actor=actor_for(request), sync=sync
            )
        except ValidationError as exc:
            raise invalid(exc) from exc
        self._count([saved])
        return saved

    @extend_schema(parameters=[REMOVE_REMOTE], responses={202: None, 204: None})
    def destroy(self, request: Request, slug: str, pk: str) -> Response:
        gone = services.delete_sync(
            self.get_object(),
            remove_remote=_flag(request, "remove_remote"),
            actor=actor_for(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT if gone else status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.SyncWriteSerializer, responses={200: s.PreviewSerializer(many=True)})
    @action(detail=False, methods=["post"])
    def preview(self, request: Request, slug: str) -> Response:
        """What a sync with these settings would push now (nothing is saved)."""
        try:
            rows = services.preview(self._spec(request), self.get_application())
        except ValidationError as exc:
            raise invalid(exc) from exc
        return Response(s.PreviewSerializer(rows, many=True).data)

    @extend_schema(request=None, responses={202: s.SyncRunSerializer})
    @action(detail=True, methods=["post"])
    def run(self, request: Request, slug: str, pk: str) -> Response:
        run = services.run_now(self.get_object(), actor=actor_for(request))
        return Response(s.SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.DriftRequestSerializer, responses={202: None})
    @action(detail=True, methods=["post"])
    def drift(self, request: Request, slug: str, pk: str) -> Response:
        """Queue a drift check (a worker reads the destination); its report is a run."""
        ask = s.DriftRequestSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        sync = self.get_object()
        label = actor_for(request).describe()
        queue.enqueue(
            "syncs.tasks.check_drift",
            sync.pk,
            ask.validated_data["repair"],
            label,
            task_name=f"sync-drift-{sync.pk}",
        )
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: s.SyncItemSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def items(self, request: Request, slug: str, pk: str) -> Response:
        items = (
            self.get_object()
            .items.select_related("certificate")
            .order_by("certificate__common_name", "pk")
        )
        wanted = request.query_params.get("status")
        if wanted:
            items = items.filter(status=wanted)
        page = self.paginate_queryset(items)
        assert page is not None
        return self.get_paginated_response(s.SyncItemSerializer(page, many=True).data)

    @extend_schema(responses={200: s.SyncRunSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def runs(self, request: Request, slug: str, pk: str) -> Response:
        page = self.paginate_queryset(self.get_object().runs.all())
        assert page is not None
        return self.get_paginated_response(s.SyncRunSerializer(page, many=True).data)

    def _item(self, certificate: str) -> SyncItem:
        return get_object_or_404(
            SyncItem.objects.select_related("sync", "sync__application", "certificate"),
            sync=self.get_object(),
            certificate_id=certificate,
        )

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"], url_path=r"items/(?P<certificate>[0-9a-f-]{36})/repush")
    def repush(self, request: Request, slug: str, pk: str, certificate: str) -> Response:
        try:
            services.repush(self._item(certificate), actor=actor_for(request))
        except ValidationError as exc:
            raise invalid(exc) from exc
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"], url_path=r"items/(?P<certificate>[0-9a-f-]{36})/remove")
    def remove(self, request: Request, slug: str, pk: str, certificate: str) -> Response:
        services.remove(self._item(certificate), actor=actor_for(request))
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)
