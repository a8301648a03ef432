"""Applications, members, service accounts, personal tokens and the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from applications import services
from applications.api import serializers as s
from applications.models import Application, AuditEvent, Membership
from certportal import permissions as perms
from certportal.api import services as credentials
from certportal.api.errors import field_error
from certportal.api.models import ApiToken, ServiceAccount
from certportal.api.scoping import ApplicationScopedMixin
from certportal.web import actor_for


class ApplicationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Applications the caller belongs to; product admins see and create all."""

    serializer_class = s.ApplicationSerializer
    lookup_field = "name"
    lookup_url_kwarg = "slug"

    def get_queryset(self) -> QuerySet[Application]:
        return perms.applications_for(self.request.user, perms.VIEW).prefetch_related("profiles")

    @extend_schema(request=s.ApplicationCreateSerializer, responses={201: s.ApplicationSerializer})
    def create(self, request: Request) -> Response:
        if not perms.is_product_admin(request.user):
            raise exceptions.PermissionDenied("Only product admins create Applications.")
        ask = s.ApplicationCreateSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        data = ask.validated_data
        if Application.objects.filter(name=data["name"]).exists():
            raise field_error("name", "duplicate", "An Application with this name exists.")
        profiles = _profiles(data.get("profiles", []))
        first_admin = _user(data["first_admin"], "first_admin") if "first_admin" in data else None
        application = services.create_application(
            name=data["name"],
            description=data.get("description", ""),
            profiles=profiles,
            first_admin=first_admin,
            actor=actor_for(request),
        )
        return Response(s.ApplicationSerializer(application).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ApplicationEditSerializer, responses={200: s.ApplicationSerializer})
    def partial_update(self, request: Request, slug: str) -> Response:
        """Product admins change the description and the attached profiles (the list
        replaces them), as on the Application's edit page."""
        application = self.get_object()
        if not perms.is_product_admin(request.user):
            raise exceptions.PermissionDenied("Only product admins change Applications.")
        ask = s.ApplicationEditSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        data = ask.validated_data
        profiles = application.profiles.all()
        if "profiles" in data:
            profiles = _profiles(data["profiles"])
        updated = services.update_application(
            application,
            actor=actor_for(request),
            description=data.get("description", application.description),
            profiles=list(profiles),
        )
        return Response(s.ApplicationSerializer(self.get_queryset().get(pk=updated.pk)).data)


def _profiles(slugs: list[str]) -> list[Any]:
    from profiles.models import CertificateProfile

    found = list(CertificateProfile.objects.filter(slug__in=slugs))
    if len(found) != len(set(slugs)):
        raise field_error("profiles", "unknown_profile", "Unknown profile slug.")
    return found


def _user(username: str, field: str) -> Any:
    user = services.member_candidate(username)
    if user is None:
        raise field_error(field, "unknown_user", "No such user.")
    return user


@extend_schema_view(
    list=extend_schema(summary="List members"), retrieve=extend_schema(summary="Show a member")
)
class MemberViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """An Application's members; Application Admins add, change and remove them."""

    serializer_class = s.MemberSerializer
    lookup_field = "user__username"
    lookup_url_kwarg = "username"
    lookup_value_regex = r"[\w.@+-]+"
    action_permissions = {
        "create": perms.MANAGE,
        "partial_update": perms.MANAGE,
        "destroy": perms.MANAGE,
    }

    def get_queryset(self) -> QuerySet[Membership]:
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return (
            Membership.objects.filter(application=self.get_application())
            .select_related("user", "user__service_account")
            .order_by("user__username")
        )

    @extend_schema(request=s.MemberInputSerializer, responses={201: s.MemberSerializer})
    def create(self, request: Request, slug: str) -> Response:
        ask = s.MemberInputSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        user = _user(ask.validated_data["username"], "username")
        membership = self._set_role(user, ask.validated_data["role"])
        return Response(s.MemberSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.MemberRoleSerializer, responses={200: s.MemberSerializer})
    def partial_update(self, request: Request, slug: str, username: str) -> Response:
        membership = self.get_object()
        ask = s.MemberRoleSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        membership = self._set_role(membership.user, ask.validated_data["role"])
        return Response(s.MemberSerializer(membership).data)

    def destroy(self, request: Request, slug: str, username: str) -> Response:
        membership = self.get_object()
        services.remove_member(self.get_application(), membership.user, actor=actor_for(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _set_role(self, user: Any, role: str) -> Membership:
        return services.set_member_role(
            self.get_application(), user, role, actor=actor_for(self.request)
        )


class ServiceAccountViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Machine identities of an Application (Application Admins), and their tokens."""

    serializer_class = s.ServiceAccountSerializer
    lookup_field = "name"
    lookup_url_kwarg = "name"
    lookup_value_regex = r"[a-z0-9-]+"
    action_permissions = {
        "list": perms.MANAGE,
        "retrieve": perms.MANAGE,
        "create": perms.MANAGE,
        "destroy": perms.MANAGE,
        "tokens": perms.MANAGE,
    }

    def get_queryset(self) -> QuerySet[ServiceAccount]:
        if getattr(self, "swagger_fake_view", False):
            return ServiceAccount.objects.none()
        return ServiceAccount.objects.filter(application=self.get_application()).select_related(
            "user"
        )

    @extend_schema(responses={201: s.ServiceAccountSerializer})
    def create(self, request: Request, slug: str) -> Response:
        ask = s.ServiceAccountSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        account = services.create_service_account(
            self.get_application(), actor=actor_for(request), **ask.validated_data
        )
        return Response(s.ServiceAccountSerializer(account).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, slug: str, name: str) -> Response:
        services.delete_service_account(self.get_object(), actor=actor_for(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.TokenInputSerializer, responses={201: s.NewTokenSerializer})
    @action(detail=True, methods=["post"])
    def tokens(self, request: Request, slug: str, name: str) -> Response:
        account = self.get_object()
        return _new_token(request, account.user)


def _new_token(request: Request, user: Any) -> Response:
    ask = s.TokenInputSerializer(data=request.data)
    ask.is_valid(raise_exception=True)
    token, plaintext = credentials.create_token(
        user,
        name=ask.validated_data["name"],
        expires_at=ask.validated_data.get("expires_at"),
        actor=actor_for(request),
        parent=request.auth if isinstance(request.auth, ApiToken) else None,
    )
    data = s.NewTokenSerializer(token, context={"token": plaintext}).data
    return Response(data, status=status.HTTP_201_CREATED)


class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's personal API tokens. DELETE revokes (the row stays for the record)."""

    serializer_class = s.TokenSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[ApiToken]:
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(request=s.TokenInputSerializer, responses={201: s.NewTokenSerializer})
    def create(self, request: Request) -> Response:
        if hasattr(request.user, "service_account"):
            raise exceptions.PermissionDenied(
                "Service accounts get tokens from their Application's Admins."
            )
        return _new_token(request, request.user)

    def destroy(self, request: Request, pk: str) -> Response:
        token = get_object_or_404(self.get_queryset(), pk=pk)
        credentials.revoke_token(token, actor=actor_for(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(list=extend_schema(parameters=[s.AuditFilterSerializer]))
class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Audit events of the Applications the caller can see (product admins: all)."""

    serializer_class = s.AuditEventSerializer

    def get_queryset(self) -> QuerySet[AuditEvent]:
        user = self.request.user
        events = AuditEvent.objects.select_related("application")
        if not perms.is_product_admin(user):
            events = events.filter(application__in=perms.applications_for(user, perms.VIEW))
        application = self.request.query_params.get("application")
        if application:
            events = events.filter(application__name=application)
        # A plain dict, not the QueryDict: DRF reads an empty value in form data as
        # absent, and ``until=`` must be refused, not ignored.
        params = s.AuditFilterSerializer(data=self.request.query_params.dict())
        params.is_valid(raise_exception=True)
        return _audit_filter(events, params.validated_data)


def _audit_filter(events: QuerySet[AuditEvent], params: dict[str, Any]) -> QuerySet[AuditEvent]:
    if params.get("action"):
        action_name = params["action"]
        events = events.filter(
            Q(action=action_name) | Q(action__startswith=action_name.rstrip(".") + ".")
        )
    if params.get("actor"):
        events = events.filter(actor_label=params["actor"])
    if params.get("object_id"):
        events = events.filter(object_id=params["object_id"])
    if params.get("since"):
        events = events.filter(created_at__gte=params["since"])
    if params.get("until"):
        events = events.filter(created_at__lt=params["until"])
    return events
