"""Approval policies, the Application's approval settings and requests' approval state
over the API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from applications.choices import Role
from approvals.choices import Trigger
from approvals.models import ApprovalFlow, ApprovalPolicy, ApprovalStep
from issuance.api.serializers import CertificateRequestSerializer
from issuance.models import CertificateRequest


class StepSerializer(serializers.Serializer):
    required = serializers.IntegerField(min_value=1, max_value=50, default=1)
    role = serializers.ChoiceField(choices=[("", "none"), *Role.choices], default="")
    users = serializers.ListField(
        child=serializers.CharField(max_length=150), default=list, max_length=100
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        if isinstance(instance, ApprovalStep):
            return {
                "required": instance.required,
                "role": instance.approver_role,
                "users": [u.get_username() for u in instance.approvers.all()],
            }
        return dict(super().to_representation(instance))


class ApprovalPolicySerializer(serializers.ModelSerializer):
    profiles = serializers.ListField(
        child=serializers.SlugField(max_length=63), default=list, max_length=100
    )
    trigger = serializers.ChoiceField(choices=Trigger.choices, default=Trigger.ANY)
    on_san_patterns = serializers.ListField(
        child=serializers.CharField(max_length=255), default=list, max_length=100
    )
    on_validity_over_days = serializers.IntegerField(
        min_value=1, max_value=36500, required=False, allow_null=True
    )
    steps = StepSerializer(many=True)

    class Meta:
        model = ApprovalPolicy
        fields = [
            "id",
            "name",
            "is_active",
            "profiles",
            "trigger",
            "on_wildcard",
            "on_validity_over_days",
            "on_san_patterns",
            "on_server_keygen",
            "bypass_service_accounts",
            "steps",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": [], "max_length": 100}}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        plain = ("id", "name", "is_active", "trigger", "on_wildcard", "on_validity_over_days")
        data = {name: getattr(instance, name) for name in plain}
        data.update(
            on_san_patterns=list(instance.on_san_patterns),
            on_server_keygen=instance.on_server_keygen,
            bypass_service_accounts=instance.bypass_service_accounts,
            profiles=[p.slug for p in instance.profiles.all()],
            steps=[StepSerializer(step).data for step in instance.steps.all()],
            created_at=serializers.DateTimeField().to_representation(instance.created_at),
            updated_at=serializers.DateTimeField().to_representation(instance.updated_at),
        )
        return data


class ApprovalSettingsSerializer(serializers.Serializer):
    renewals_bypass = serializers.BooleanField()


class ApprovalDecisionSerializer(serializers.Serializer):
    approver = serializers.CharField(source="approver_label")
    verdict = serializers.CharField()
    step = serializers.IntegerField()
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class ApprovalStateSerializer(serializers.Serializer):
    policy = serializers.CharField(source="policy_name")
    current_step = serializers.IntegerField()
    steps = serializers.ListField(child=serializers.DictField())
    decisions = ApprovalDecisionSerializer(many=True, source="decisions.all")


@extend_schema_serializer(component_name="CertificateRequest")
class RequestWithApprovalSerializer(CertificateRequestSerializer):
    """A certificate request as the API shows it: issuance's fields and, once a policy
    held it, its approval state."""

    approval = serializers.SerializerMethodField()

    class Meta(CertificateRequestSerializer.Meta):
        fields = [
            *CertificateRequestSerializer.Meta.fields[:-1],
            "approval",
            CertificateRequestSerializer.Meta.fields[-1],  # certificate
        ]
        read_only_fields = fields

    @extend_schema_field(ApprovalStateSerializer(allow_null=True))
    def get_approval(self, obj: CertificateRequest) -> dict[str, Any] | None:
        flow = ApprovalFlow.objects.filter(request=obj).first()
        return ApprovalStateSerializer(flow).data if flow is not None else None


class DecisionInputSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
