"""CAs and profiles: members read what their Applications use; product admins manage."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from certportal import permissions as perms
from certportal.api.errors import field_error
from certportal.api.renderers import PemRenderer
from certportal.api.scoping import IsProductAdminOrReadOnly
from certportal.web import actor_for, attachment
from profiles import services
from profiles.api import serializers as s
from profiles.models import CertificateAuthority, CertificateProfile


def visible_profiles(user: Any) -> QuerySet[CertificateProfile]:
    if perms.is_product_admin(user):
        return CertificateProfile.objects.all()
    apps = perms.applications_for(user, perms.VIEW)
    return CertificateProfile.objects.filter(applications__in=apps).distinct()


def visible_cas(user: Any) -> QuerySet[CertificateAuthority]:
    """Issuing CAs of visible profiles and the CAs above them (a chain is public anyway)."""
    if perms.is_product_admin(user):
        return CertificateAuthority.objects.all()
    ids = set(visible_profiles(user).values_list("issuing_ca_id", flat=True))
    frontier = set(ids)
    while frontier:
        parents = set(
            CertificateAuthority.objects.filter(pk__in=frontier, parent__isnull=False).values_list(
                "parent_id", flat=True
            )
        )
        frontier = parents - ids
        ids |= parents
    return CertificateAuthority.objects.filter(pk__in=ids)


def _django_errors(exc: DjangoValidationError) -> exceptions.ValidationError:
    detail = {
        field: [exceptions.ErrorDetail(str(m), code="invalid") for m in messages]
        for field, messages in exc.message_dict.items()
    }
    return exceptions.ValidationError(detail)


class CertificateAuthorityViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = s.CertificateAuthoritySerializer
    permission_classes = [IsProductAdminOrReadOnly]
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[CertificateAuthority]:
        return visible_cas(self.request.user).select_related("parent")

    @extend_schema(request=s.CACreateSerializer, responses={201: s.CertificateAuthoritySerializer})
    def create(self, request: Request) -> Response:
        ask = s.CACreateSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        data = ask.validated_data
        if CertificateAuthority.objects.filter(slug=data["slug"]).exists():
            raise field_error("slug", "duplicate", "A CA with this slug exists.")
        spec = services.CASpec(
            name=data["name"],
            slug=data["slug"],
            subject=services.CASubject(
                data["common_name"],
                data.get("organization", ""),
                data.get("organizational_unit", ""),
                data.get("country", "").upper(),
            ),
            key_algorithm=data["key_algorithm"],
            validity_days=data["validity_days"],
            path_length=data.get("path_length"),
            permitted_dns=tuple(data.get("permitted_dns", ())),
            excluded_dns=tuple(data.get("excluded_dns", ())),
        )
        try:
            if data["external"]:
                ca = services.create_external_ca(spec, actor=actor_for(request))
            else:
                ca = self._create(spec, data.get("parent"), request)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(s.CertificateAuthoritySerializer(ca).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.CAImportSerializer, responses={201: s.CertificateAuthoritySerializer})
    @action(detail=False, methods=["post"], url_path="import")
    def import_ca(self, request: Request) -> Response:
        """Import an existing CA with its key, as the portal's import page does."""
        ask = s.CAImportSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        data = ask.validated_data
        if CertificateAuthority.objects.filter(slug=data["slug"]).exists():
            raise field_error("slug", "duplicate", "A CA with this slug exists.")
        try:
            ca = services.import_ca(
                name=data["name"],
                slug=data["slug"],
                certificate_pem=data["certificate_pem"],
                private_key_pem=data["private_key_pem"],
                password=data["password"].encode() if data.get("password") else None,
                actor=actor_for(request),
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(s.CertificateAuthoritySerializer(ca).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.CAInstallSerializer, responses={200: s.CertificateAuthoritySerializer})
    @action(detail=True, methods=["post"])
    def install(self, request: Request, slug: str) -> Response:
        """Install the certificate another CA signed for this external CA's CSR."""
        ca = self.get_object()
        ask = s.CAInstallSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        installed = services.install_external_certificate(
            ca, ask.validated_data["certificate_pem"], actor=actor_for(request)
        )
        return Response(s.CertificateAuthoritySerializer(installed).data)

    def _create(
        self, spec: services.CASpec, parent_slug: str | None, request: Request
    ) -> CertificateAuthority:
        if not parent_slug:
            return services.create_root_ca(spec, actor=actor_for(request))
        parent = CertificateAuthority.objects.filter(slug=parent_slug).first()
        if parent is None:
            raise field_error("parent", "unknown_ca", "No such CA.")
        return services.create_intermediate_ca(spec, parent=parent, actor=actor_for(request))

    @extend_schema(request=s.CAStatusSerializer, responses={200: s.CertificateAuthoritySerializer})
    def partial_update(self, request: Request, slug: str) -> Response:
        ca = self.get_object()
        ask = s.CAStatusSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        try:
            services.set_ca_status(ca, ask.validated_data["status"], actor=actor_for(request))
        except services.CAError as exc:
            raise exc.on_field("status") from exc  # the status asked for is what was refused
        return Response(s.CertificateAuthoritySerializer(ca).data)

    @extend_schema(responses={(200, PemRenderer.media_type): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], renderer_classes=[PemRenderer])
    def chain(self, request: Request, slug: str) -> HttpResponse:
        ca = self.get_object()
        if not ca.certificate_pem:
            raise exceptions.NotFound("This CA has no certificate yet.")
        response = HttpResponse(ca.chain_pem_with_self(), content_type=PemRenderer.media_type)
        return attachment(response, f"{ca.slug}-chain", "pem")


class CertificateProfileViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = s.CertificateProfileSerializer
    permission_classes = [IsProductAdminOrReadOnly]
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[CertificateProfile]:
        return visible_profiles(self.request.user).select_related("issuing_ca")

    @extend_schema(responses={201: s.CertificateProfileSerializer})
    def create(self, request: Request) -> Response:
        ask = s.CertificateProfileSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        fields = dict(ask.validated_data)
        if CertificateProfile.objects.filter(slug=fields["slug"]).exists():
            raise field_error("slug", "duplicate", "A profile with this slug exists.")
        if CertificateProfile.objects.filter(name=fields["name"]).exists():
            raise field_error("name", "duplicate", "A profile with this name exists.")
        preset = fields.pop("preset", None)
        try:
            profile = services.create_profile(actor=actor_for(request), preset=preset, **fields)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(
            s.CertificateProfileSerializer(profile).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=s.CertificateProfileSerializer(partial=True))
    def partial_update(self, request: Request, slug: str) -> Response:
        profile = self.get_object()
        ask = s.CertificateProfileSerializer(profile, data=request.data, partial=True)
        ask.is_valid(raise_exception=True)
        fields = dict(ask.validated_data)
        for unique in ("slug", "name"):
            value = fields.get(unique)
            clash = CertificateProfile.objects.filter(**{unique: value}).exclude(pk=profile.pk)
            if value is not None and clash.exists():
                raise field_error(unique, "duplicate", f"A profile with this {unique} exists.")
        try:
            profile = services.update_profile(profile, actor=actor_for(request), **fields)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(s.CertificateProfileSerializer(profile).data)
