"""The profiles an Application may issue from: every member reads them; product admins
attach (PUT, idempotent) and detach (DELETE), as on the Application's edit page."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from applications import services
from certportal import permissions as perms
from certportal.api.errors import field_error
from certportal.api.scoping import ApplicationScopedMixin, actor_for
from profiles.models import CertificateProfile


class AttachedProfileSerializer(serializers.ModelSerializer):
    issuing_ca = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = CertificateProfile
        fields = ["slug", "name", "issuing_ca", "is_active"]
        read_only_fields = fields


class AttachedProfileViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = AttachedProfileSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "profile"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    pagination_class = None

    def get_queryset(self) -> QuerySet[CertificateProfile]:
        if getattr(self, "swagger_fake_view", False):
            return CertificateProfile.objects.none()
        return self.get_application().profiles.select_related("issuing_ca").order_by("slug")

    @extend_schema(request=None, responses={200: AttachedProfileSerializer})
    def update(self, request: Request, slug: str, profile: str) -> Response:
        """Attach the profile (already attached: nothing changes)."""
        _product_admins_only(request)
        wanted = CertificateProfile.objects.filter(slug=profile).first()
        if wanted is None:
            raise field_error("profile", "unknown_profile", "Unknown profile slug.")
        attached = self.get_queryset()
        if not attached.filter(pk=wanted.pk).exists():
            if not wanted.is_active:
                raise field_error("profile", "profile_inactive", "The profile is disabled.")
            self._set([*attached, wanted])
        return Response(self.get_serializer(self.get_queryset().get(pk=wanted.pk)).data)

    def destroy(self, request: Request, slug: str, profile: str) -> Response:
        """Detach the profile: no new issuance from it; issued certificates stay."""
        _product_admins_only(request)
        gone = self.get_object()
        self._set([p for p in self.get_queryset() if p.pk != gone.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _set(self, profiles: list[Any]) -> None:
        application = self.get_application()
        services.update_application(
            application,
            actor=actor_for(self.request),
            description=application.description,
            profiles=profiles,
        )


def _product_admins_only(request: Request) -> None:
    if not perms.is_product_admin(request.user):
        raise exceptions.PermissionDenied(
            "Only product admins change an Application's profiles.", code="permission_denied"
        )
