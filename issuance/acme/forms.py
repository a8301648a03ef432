from __future__ import annotations

from django import forms
from django.utils import timezone


class ExternalAccountKeyForm(forms.Form):
    """Name, optional expiry and reuse of a new EAB credential."""

    name = forms.CharField(max_length=100)
    expires_at = forms.DateTimeField(
        required=False,
        help_text="Optional; after this time no new ACME account can bind with it.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    reusable = forms.BooleanField(
        required=False,
        label="Reusable",
        help_text="Let several ACME accounts bind with this credential (for example one "
        "per host of a fleet). Otherwise it binds the first account only.",
    )

    def clean_expires_at(self) -> object:
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("Choose a time in the future.")
        return value


class RevokeExternalAccountKeyForm(forms.Form):
    """Revoking an EAB credential, and whether to deactivate the accounts it bound."""

    deactivate_accounts = forms.BooleanField(required=False, initial=True)
