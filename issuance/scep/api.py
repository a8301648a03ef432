"""REST API for SCEP under /api/v1/applications/{slug}/scep/: the enrollments of an
Application's profiles (every member reads; Admins configure and set the static
challenge) and one-time challenges, which Admins and Operators (and their service
accounts' tokens: what an MDM uses) mint."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from certportal import permissions as perms
from certportal.api.errors import Conflict, field_error
from certportal.api.scoping import ApplicationScopedMixin, actor_for
from issuance.scep import services
from issuance.scep.models import ScepEnrollment
from issuance.scep.ui import endpoint_url


class ScepEnrollmentSerializer(serializers.ModelSerializer[ScepEnrollment]):
    profile = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    url = serializers.SerializerMethodField()
    has_static_challenge = serializers.SerializerMethodField()
    ra_certificate = serializers.CharField(source="ra_certificate_pem", read_only=True)
    next_ra_certificate = serializers.CharField(source="next_ra_certificate_pem", read_only=True)

    class Meta:
        model = ScepEnrollment
        fields = [
            "profile",
            "url",
            "enabled",
            "allow_renewal",
            "allow_legacy",
            "max_outstanding_challenges",
            "has_static_challenge",
            "challenge_set_at",
            "ra_certificate",
            "next_ra_certificate",
            "created_at",
        ]
        read_only_fields = ["challenge_set_at", "created_at"]

    def get_url(self, enrollment: ScepEnrollment) -> str:
        return endpoint_url(self.context.get("request"), enrollment)

    def get_has_static_challenge(self, enrollment: ScepEnrollment) -> bool:
        return bool(enrollment.challenge_hash)


class ScepEnableSerializer(serializers.Serializer[Any]):
    profile = serializers.SlugField()
    allow_renewal = serializers.BooleanField(default=True)
    allow_legacy = serializers.BooleanField(default=False)
    max_outstanding_challenges = serializers.IntegerField(
        min_value=1, max_value=100000, default=100
    )


class ScepSettingsSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField(required=False)
    allow_renewal = serializers.BooleanField(required=False)
    allow_legacy = serializers.BooleanField(required=False)
    max_outstanding_challenges = serializers.IntegerField(
        min_value=1, max_value=100000, required=False
    )


class StaticChallengeSerializer(serializers.Serializer[Any]):
    challenge = serializers.CharField(
        required=False, allow_blank=True, write_only=True, max_length=255,
        help_text="At least 16 characters; omit to generate one; empty removes it.",
    )  # fmt: skip


class ChallengeInputSerializer(serializers.Serializer[Any]):
    expected_cn = serializers.CharField(
        required=False, allow_blank=True, max_length=255, default=""
    )
    ttl_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60, default=60)


class SecretSerializer(serializers.Serializer[Any]):
    challenge = serializers.CharField(read_only=True)
    url = serializers.CharField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True, required=False)
    expected_cn = serializers.CharField(read_only=True, required=False)


class ScepEnrollmentViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """SCEP enrollments of the Application, by profile slug."""

    serializer_class = ScepEnrollmentSerializer
    lookup_field = "profile__slug"
    lookup_url_kwarg = "profile"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    action_permissions = {
        "create": perms.MANAGE,
        "partial_update": perms.MANAGE,
        "static_challenge": perms.MANAGE,
        "challenges": perms.ISSUE,
    }

    def get_queryset(self) -> QuerySet[ScepEnrollment]:
        if getattr(self, "swagger_fake_view", False):
            return ScepEnrollment.objects.none()
        return (
            ScepEnrollment.objects.filter(application=self.get_application())
            .select_related("application", "profile")
            .order_by("profile__slug")
        )

    @extend_schema(request=ScepEnableSerializer, responses={201: ScepEnrollmentSerializer})
    def create(self, request: Request, slug: str) -> Response:
        ask = ScepEnableSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        data = dict(ask.validated_data)
        application = self.get_application()
        profile = application.profiles.filter(slug=data.pop("profile")).first()
        if profile is None:
            raise field_error("profile", "invalid", "No such profile attached to this Application.")
        try:
            enrollment = services.enable(application, profile, actor=actor_for(request), **data)
        except services.ScepConfigError as exc:
            raise Conflict(str(exc), code="scep_config") from exc
        body = ScepEnrollmentSerializer(enrollment, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=ScepSettingsSerializer, responses={200: ScepEnrollmentSerializer})
    def partial_update(self, request: Request, slug: str, profile: str) -> Response:
        enrollment = self.get_object()
        ask = ScepSettingsSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        services.update(enrollment, actor=actor_for(request), **ask.validated_data)
        return Response(ScepEnrollmentSerializer(enrollment, context={"request": request}).data)

    @extend_schema(request=StaticChallengeSerializer, responses={200: SecretSerializer})
    @action(detail=True, methods=["post"], url_path="static-challenge")
    def static_challenge(self, request: Request, slug: str, profile: str) -> Response:
        """Set or rotate the static challenge (returned once), or remove it ("")."""
        enrollment = self.get_object()
        ask = StaticChallengeSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        try:
            secret = services.set_static_challenge(
                enrollment, actor=actor_for(request), challenge=ask.validated_data.get("challenge")
            )
        except services.ScepConfigError as exc:
            raise field_error("challenge", "invalid", str(exc)) from exc
        response = Response({"challenge": secret, "url": endpoint_url(request, enrollment)})
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(request=ChallengeInputSerializer, responses={201: SecretSerializer})
    @action(detail=True, methods=["post"])
    def challenges(self, request: Request, slug: str, profile: str) -> Response:
        """Mint a one-time challenge for one device (what an MDM calls before pushing
        a SCEP profile)."""
        enrollment = self.get_object()
        ask = ChallengeInputSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        try:
            challenge, secret = services.mint_challenge(
                enrollment,
                actor=actor_for(request),
                expected_cn=ask.validated_data["expected_cn"],
                ttl=timedelta(minutes=ask.validated_data["ttl_minutes"]),
            )
        except services.ScepConfigError as exc:
            raise Conflict(str(exc), code="too_many_challenges") from exc
        body = {
            "challenge": secret,
            "url": endpoint_url(request, enrollment),
            "expires_at": challenge.expires_at,
            "expected_cn": challenge.expected_cn,
        }
        response = Response(SecretSerializer(body).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response
