"""Forms of the Application pages: creation, members, audit-log filters."""

from __future__ import annotations

from typing import Any

from django import forms

from applications.choices import Role
from applications.models import Application, slug_validator
from applications.services import member_candidate
from profiles.models import CertificateProfile


class ApplicationForm(forms.Form):
    """A new Application: slug name, description, profiles, first Admin."""

    name = forms.CharField(
        max_length=63,
        validators=[slug_validator],
        help_text="A slug: lowercase letters, digits and hyphens (e.g. payments-api).",
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    profiles = forms.ModelMultipleChoiceField(
        queryset=CertificateProfile.objects.filter(is_active=True),
        widget=forms.CheckboxSelectMultiple,
        help_text="The certificate profiles this Application may issue from.",
    )
    first_admin = forms.CharField(
        label="First Admin (username)", help_text="An existing user who will manage it."
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if Application.objects.filter(name=name).exists():
            raise forms.ValidationError("An Application with this name already exists.")
        return name

    def clean_first_admin(self) -> Any:
        return _active_user(self.cleaned_data["first_admin"])


class ApplicationEditForm(forms.Form):
    """What a product admin may change after creation: description and profiles."""

    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    profiles = forms.ModelMultipleChoiceField(
        queryset=CertificateProfile.objects.filter(is_active=True),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Detaching a profile stops new issuance from it; issued certificates stay.",
    )


def _active_user(username: str) -> Any:
    user = member_candidate(username)
    if user is None:
        raise forms.ValidationError(f"No active user named {username.strip()!r}.")
    return user


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.OPERATOR)

    def __init__(self, *args: Any, application: Application, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.application = application

    def clean_username(self) -> Any:
        user = _active_user(self.cleaned_data["username"])
        if self.application.memberships.filter(user=user).exists():
            raise forms.ValidationError(
                f"{user.get_username()} is already a member; change their role below."
            )
        return user


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AuditFilterForm(forms.Form):
    # Only on the global log: an Application's own log is already scoped to it.
    application = forms.CharField(required=False, max_length=63, label="Application")
    action = forms.CharField(required=False, max_length=64, label="Action")
    actor = forms.CharField(required=False, max_length=150, label="Who")
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"})
    )
