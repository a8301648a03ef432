from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone

from applications.models import Application
from issuance.est.services import MAX_BUNDLE_UPLOAD_BYTES
from profiles.models import CertificateProfile


class EstEnrollmentForm(forms.Form):
    """An EST enrollment of one attached profile, and how its clients authenticate."""

    profile: forms.ModelChoiceField[CertificateProfile] = forms.ModelChoiceField(
        queryset=CertificateProfile.objects.none(), to_field_name="slug"
    )
    label = forms.CharField(
        max_length=100,
        required=False,
        help_text="Unique in the portal; empty: <application>.<profile>.",
    )
    basic_auth = forms.BooleanField(required=False, initial=True, label="HTTP Basic credentials")
    client_cert_auth = forms.BooleanField(
        required=False,
        label="TLS client certificates",
        help_text="Passed by the TLS proxy; for simpleenroll they must chain to the trust "
        "bundle or to the profile's CA.",
    )
    trust_bundle = forms.FileField(
        required=False, help_text="PEM CA certificates trusted for client certificates."
    )
    clear_trust_bundle = forms.BooleanField(required=False, label="Remove the trust bundle")
    reenroll_allow_san_change = forms.BooleanField(
        required=False,
        label="Allow changed SANs on re-enrollment",
        help_text="Within the profile's policy; the subject must still match.",
    )
    is_default = forms.BooleanField(
        required=False, label="Portal default", help_text="Also serve /.well-known/est/ itself."
    )

    def __init__(self, application: Application, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["profile"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = application.profiles.filter(is_active=True).order_by("name")

    def clean_trust_bundle(self) -> str | None:
        upload = self.cleaned_data.get("trust_bundle")
        if not upload:
            return None
        if upload.size > MAX_BUNDLE_UPLOAD_BYTES:
            raise forms.ValidationError("The bundle is too large.")
        try:
            return str(upload.read().decode("ascii"))
        except UnicodeDecodeError:
            raise forms.ValidationError("Upload PEM text.") from None


class EstCredentialForm(forms.Form):
    """A named HTTP Basic credential with an optional expiry."""

    username = forms.SlugField(max_length=100, label="Name (the Basic user name)")
    expires_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def clean_expires_at(self) -> object:
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("Choose a time in the future.")
        return value
