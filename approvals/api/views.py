"""Approval policies of an Application (Application Admins), and decisions on the
requests they hold."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from applications.models import Application
from approvals import services
from approvals.api import serializers as s
from approvals.models import ApprovalPolicy
from certportal import permissions as perms
from certportal.api.errors import field_error
from certportal.api.scoping import ApplicationScopedMixin
from certportal.web import actor_for
from issuance.api.views import CertificateRequestViewSet
from issuance.choices import RequestState
from issuance.models import CertificateRequest

MANAGE_ALL = {
    name: perms.MANAGE
    for name in (
        "list",
        "retrieve",
        "create",
        "update",
        "destroy",
        "approval_settings",
        "update_settings",
    )
}


def policy_spec(application: Application, data: dict[str, Any]) -> services.PolicySpec:
    """Validated API input as a PolicySpec, resolving profile slugs and usernames."""
    profiles = list(application.profiles.filter(slug__in=data["profiles"]))
    if len(profiles) != len(set(data["profiles"])):
        raise field_error(
            "profiles", "profile_unavailable", "A profile is not attached to this Application."
        )
    users = get_user_model().objects.filter(
        username__in={u for step in data["steps"] for u in step["users"]}
    )
    by_name = {u.get_username(): u for u in users}
    steps = []
    for step in data["steps"]:
        missing = [u for u in step["users"] if u not in by_name]
        if missing:
            raise field_error("steps", "unknown_user", f"Unknown user {missing[0]!r}.")
        steps.append(
            services.StepSpec(
                required=step["required"],
                role=step["role"],
                users=[by_name[u] for u in step["users"]],
            )
        )
    return services.PolicySpec(
        name=data["name"],
        steps=steps,
        is_active=data.get("is_active", True),
        profiles=profiles,
        trigger=data["trigger"],
        on_wildcard=data.get("on_wildcard", False),
        on_validity_over_days=data.get("on_validity_over_days"),
        on_san_patterns=data["on_san_patterns"],
        on_server_keygen=data.get("on_server_keygen", False),
        bypass_service_accounts=data.get("bypass_service_accounts", False),
    )


class ApprovalPolicyViewSet(
    ApplicationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Which requests wait for approval, and the steps of approvers that release them."""

    serializer_class = s.ApprovalPolicySerializer
    action_permissions = MANAGE_ALL
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[ApprovalPolicy]:
        if getattr(self, "swagger_fake_view", False):
            return ApprovalPolicy.objects.none()
        return ApprovalPolicy.objects.filter(application=self.get_application()).prefetch_related(
            "profiles", "steps__approvers"
        )

    def create(self, request: Request, slug: str) -> Response:
        policy = self._save(request, None)
        return Response(self.get_serializer(policy).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, slug: str, pk: str) -> Response:
        policy = self._save(request, self.get_object())
        return Response(self.get_serializer(policy).data)

    def destroy(self, request: Request, slug: str, pk: str) -> Response:
        services.delete_policy(self.get_object(), actor=actor_for(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _save(self, request: Request, policy: ApprovalPolicy | None) -> ApprovalPolicy:
        ask = s.ApprovalPolicySerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        application = self.get_application()
        spec = policy_spec(application, ask.validated_data)
        saved = services.save_policy(application, spec, actor=actor_for(request), policy=policy)
        return self.get_queryset().get(pk=saved.pk)

    @extend_schema(responses={200: s.ApprovalSettingsSerializer})
    @action(detail=False, methods=["get"], url_path="settings")
    def approval_settings(self, request: Request, slug: str) -> Response:
        enabled = services.renewals_bypass(self.get_application().pk)
        return Response({"renewals_bypass": enabled})

    @extend_schema(
        request=s.ApprovalSettingsSerializer, responses={200: s.ApprovalSettingsSerializer}
    )
    @approval_settings.mapping.put
    def update_settings(self, request: Request, slug: str) -> Response:
        ask = s.ApprovalSettingsSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        enabled = ask.validated_data["renewals_bypass"]
        services.set_renewals_bypass(self.get_application(), enabled, actor=actor_for(request))
        return Response({"renewals_bypass": enabled})


class RequestDecisionViewSet(CertificateRequestViewSet):
    """An Application's certificate requests with their approval state; held ones are
    approved or rejected here."""

    serializer_class = s.RequestWithApprovalSerializer

    @extend_schema(
        request=s.DecisionInputSerializer,
        responses={200: s.RequestWithApprovalSerializer, 409: OpenApiResponse(description="")},
        summary="Approve a held request (the last approval issues it)",
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, slug: str, pk: str) -> Response:
        return self._decide(request, "approve")

    @extend_schema(
        request=s.DecisionInputSerializer,
        responses={200: s.RequestWithApprovalSerializer},
        summary="Reject a held request",
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, slug: str, pk: str) -> Response:
        return self._decide(request, "reject")

    def _decide(self, request: Request, verdict: str) -> Response:
        held = self.get_object()
        ask = s.DecisionInputSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        services.decide(
            held,
            user=request.user,
            verdict=verdict,
            comment=ask.validated_data["comment"],
            actor=actor_for(request),
        )
        fresh = get_object_or_404(self.get_queryset(), pk=held.pk)
        return Response(s.RequestWithApprovalSerializer(fresh).data)


class ApprovalInboxViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Held requests, across Applications, that the caller may decide now."""

    serializer_class = s.RequestWithApprovalSerializer
    pagination_class = None

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        flows = services.inbox(request.user)
        data = [
            {**s.RequestWithApprovalSerializer(f.request).data, "application": f.application.name}
            for f in flows
        ]
        return Response(data)

    def get_queryset(self) -> QuerySet[CertificateRequest]:
        return CertificateRequest.objects.filter(state=RequestState.PENDING_APPROVAL).none()
