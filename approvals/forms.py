"""Forms of the approver inbox and of policy management; services do the writing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from applications.choices import Role
from applications.models import Application
from approvals.choices import Trigger


class DecisionForm(forms.Form):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000
    )
    verdict = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])


class ApprovalPolicyForm(forms.Form):
    name = forms.CharField(max_length=100)
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    profiles: forms.ModelMultipleChoiceField = forms.ModelMultipleChoiceField(
        queryset=None, required=False, help_text="None selected: every profile."
    )
    trigger = forms.ChoiceField(choices=Trigger.choices, initial=Trigger.ANY)
    on_wildcard = forms.BooleanField(required=False, label="Wildcard SANs")
    on_validity_over_days = forms.IntegerField(
        required=False, min_value=1, label="Validity above (days)"
    )
    on_san_patterns = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="SANs matching",
        help_text="One pattern a line, e.g. *.prod.example.test",
    )
    on_server_keygen = forms.BooleanField(required=False, label="Server-generated keys")
    bypass_service_accounts = forms.BooleanField(
        required=False, label="Service accounts bypass this policy"
    )

    def __init__(self, *args: Any, application: Application, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["profiles"].queryset = application.profiles.all()  # type: ignore[attr-defined]

    def clean_on_san_patterns(self) -> list[str]:
        raw = self.cleaned_data.get("on_san_patterns") or ""
        return [line.strip() for line in raw.splitlines() if line.strip()]


class StepForm(forms.Form):
    required = forms.IntegerField(min_value=1, max_value=50, initial=1, label="Approvals needed")
    role = forms.ChoiceField(
        choices=[("", "(no role)"), *Role.choices], required=False, label="Approvers with role"
    )
    users: forms.ModelMultipleChoiceField = forms.ModelMultipleChoiceField(
        queryset=None, required=False, label="Named approvers"
    )

    def __init__(self, *args: Any, application: Application, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Service accounts never approve: only people are offered.
        members = get_user_model().objects.filter(
            memberships__application=application, service_account__isnull=True
        )
        self.fields["users"].queryset = members.order_by("username")  # type: ignore[attr-defined]


StepFormSet = forms.formset_factory(StepForm, extra=1, max_num=10, can_delete=True)


class RenewalBypassForm(forms.Form):
    renewals_bypass = forms.BooleanField(
        required=False,
        label="Renewals with unchanged subject and SANs bypass approval",
    )
