"""EST configuration of an Application: everyone who sees it reads; Admins change."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from certportal import permissions as perms
from certportal.api.errors import field_error
from certportal.api.scoping import ApplicationScopedMixin, actor_for, require
from issuance.est import services
from issuance.est.api import serializers as s
from issuance.est.models import EstCredential, EstEnrollment


class EstEnrollmentViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """EST per attached profile: label, authentication, trust bundle, re-enrollment."""

    serializer_class = s.EstEnrollmentSerializer
    lookup_field = "label"
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
    action_permissions = {
        "create": perms.MANAGE,
        "partial_update": perms.MANAGE,
        "destroy": perms.MANAGE,
        "credentials": perms.VIEW,
        "revoke_credential": perms.MANAGE,
    }

    def get_queryset(self) -> QuerySet[EstEnrollment]:
        if getattr(self, "swagger_fake_view", False):
            return EstEnrollment.objects.none()
        return EstEnrollment.objects.filter(application=self.get_application()).select_related(
            "profile"
        )

    def create(self, request: Request, slug: str) -> Response:
        saved = self._save(request, None)
        return Response(self.get_serializer(saved).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, slug: str, label: str) -> Response:
        saved = self._save(request, self.get_object())
        return Response(self.get_serializer(saved).data)

    def destroy(self, request: Request, slug: str, label: str) -> Response:
        services.delete_enrollment(self.get_object(), actor=actor_for(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _save(self, request: Request, current: EstEnrollment | None) -> EstEnrollment:
        ask = s.EstEnrollmentSerializer(current, data=request.data, partial=current is not None)
        ask.is_valid(raise_exception=True)
        data = ask.validated_data
        application = self.get_application()
        slug = data.get("profile") or (current.profile.slug if current else "")
        profile = application.profiles.filter(slug=slug).first()
        if profile is None:
            raise field_error(
                "profile", "profile_unavailable", "The profile is not attached to this Application."
            )

        def pick(name: str, default: object) -> object:
            return data.get(name, getattr(current, name) if current else default)

        spec = services.EnrollmentSpec(
            profile=profile,
            label=str(pick("label", "")),
            basic_auth=bool(pick("basic_auth", True)),
            client_cert_auth=bool(pick("client_cert_auth", False)),
            trust_bundle_pem=str(pick("trust_bundle_pem", "")),
            reenroll_allow_san_change=bool(pick("reenroll_allow_san_change", False)),
            is_default=bool(pick("is_default", False)),
        )
        return services.save_enrollment(
            application, spec, actor=actor_for(request), enrollment=current
        )

    @extend_schema(request=s.EstCredentialSerializer, responses={200: s.EstCredentialSerializer})
    @action(detail=True, methods=["get", "post"])
    def credentials(self, request: Request, slug: str, label: str) -> Response:
        """GET lists the Basic credentials; POST (Admins) makes one and shows its password
        once."""
        enrollment = self.get_object()
        if request.method == "GET":
            rows = enrollment.credentials.all()
            return Response(s.EstCredentialSerializer(rows, many=True).data)
        require(request, perms.MANAGE, self.get_application())
        ask = s.EstCredentialSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        credential, password = services.create_credential(
            enrollment,
            username=ask.validated_data["username"],
            expires_at=ask.validated_data.get("expires_at"),
            actor=actor_for(request),
        )
        body = s.EstCredentialSerializer(credential, context={"password": password}).data
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    @action(detail=True, methods=["delete"], url_path=r"credentials/(?P<credential_id>\d+)")
    def revoke_credential(
        self, request: Request, slug: str, label: str, credential_id: str
    ) -> Response:
        """Revoke one Basic credential (it stays listed, revoked)."""
        enrollment = self.get_object()
        credential = get_object_or_404(
            EstCredential.objects.filter(enrollment=enrollment), pk=credential_id
        )
        services.revoke_credential(credential, actor=actor_for(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
