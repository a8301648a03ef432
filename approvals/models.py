"""Approval policies, the approval state of held requests, and each decision taken."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from applications.choices import Role
from approvals.choices import Trigger, Verdict


class ApprovalSettings(models.Model):
    """Application-wide approval settings (one row per Application, made on first save)."""

    application = models.OneToOneField(
        "applications.Application", on_delete=models.CASCADE, related_name="approval_settings"
    )
    # Renewals keeping the replaced certificate's subject and SANs skip approval.
    renewals_bypass = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"approval settings of {self.application_id}"


class ApprovalPolicy(models.Model):
    """When requests of an Application wait for approval, and who approves them."""

    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="approval_policies"
    )
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    # Empty: every profile of the Application.
    profiles = models.ManyToManyField("profiles.CertificateProfile", blank=True, related_name="+")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.ANY)
    on_wildcard = models.BooleanField(default=False)
    on_validity_over_days = models.PositiveIntegerField(null=True, blank=True)
    on_san_patterns = models.JSONField(default=list, blank=True)  # fnmatch, e.g. "*.prod.*"
    on_server_keygen = models.BooleanField(default=False)
    bypass_service_accounts = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["application", "name"], name="unique_policy_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ApprovalStep(models.Model):
    """One step of a policy: `required` distinct approvals among the eligible approvers."""

    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    approver_role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    approvers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    required = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="unique_step_position"),
        ]

    def __str__(self) -> str:
        return f"step {self.position} of {self.policy_id}"


class ApprovalFlow(models.Model):
    """A held request's approval: the steps as they were when it was held, and progress."""

    request = models.OneToOneField(
        "issuance.CertificateRequest", on_delete=models.CASCADE, related_name="approval"
    )
    application = models.ForeignKey(
        "applications.Application", on_delete=models.CASCADE, related_name="+"
    )
    policy = models.ForeignKey(
        ApprovalPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    policy_name = models.CharField(max_length=100)
    # [{"role": "admin" | "", "users": [user ids], "required": n}, ...]
    steps = models.JSONField(default=list)
    # User ids of the people behind a machine requester (who created the service account
    # or minted its tokens), as they were when it was held: they may not decide it.
    requester_people = models.JSONField(default=list, blank=True)
    current_step = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["application", "created_at"], name="flow_app_idx")]

    def __str__(self) -> str:
        return f"approval of {self.request_id}"


class ApprovalDecision(models.Model):
    """One approver's approve or reject on a held request, with their comment."""

    flow = models.ForeignKey(ApprovalFlow, on_delete=models.CASCADE, related_name="decisions")
    step = models.PositiveSmallIntegerField()
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approver_label = models.CharField(max_length=200)
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "approver"], name="one_decision_per_approver"),
        ]

    def __str__(self) -> str:
        return f"{self.approver_label} {self.verdict}"
