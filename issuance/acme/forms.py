from __future__ import annotations

from django import forms
from django.utils import timezone


class ExternalAccountKeyForm(forms.Form):
    """Name and optional expiry of a new EAB credential."""

    name = forms.CharField(max_length=100)
    expires_at = forms.DateTimeField(
        required=False,
        help_text="Optional; after this time no new ACME account can bind with it.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean_expires_at(self) -> object:
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("Choose a time in the future.")
        return value
