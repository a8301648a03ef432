"""Forms of the certificate pages: inventory filters, issue, import, revoke, PKCS#12."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from issuance.choices import CertificateStatus, EnrollmentMethod, KeyMode, RevocationReason
from issuance.inventory import SORTS
from pki.keys import KeyAlgorithm
from profiles.models import CertificateProfile

MAX_UPLOAD_BYTES = 64 * 1024  # a certificate bundle or PKCS#12 is a few KB

SORT_CHOICES = [
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("not_after", "Expiring first"),
    ("-not_after", "Expiring last"),
]
assert {value for value, _ in SORT_CHOICES} == set(SORTS)


class InventoryFilterForm(forms.Form):
    """The Certificates tab's query string; invalid values are ignored, not errors."""

    q = forms.CharField(
        required=False,
        max_length=255,
        label="Search",
        help_text="Common name, SAN, serial or SHA-256 fingerprint.",
    )
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *CertificateStatus.choices]
    )
    profile = forms.ChoiceField(required=False, choices=[("", "Any profile")])
    method = forms.ChoiceField(
        required=False,
        label="Enrollment",
        choices=[("", "Any method"), *EnrollmentMethod.choices],
    )
    expiring = forms.IntegerField(
        required=False, min_value=0, max_value=3650, label="Expiring within (days)"
    )
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, initial="-created_at")
    per_page = forms.TypedChoiceField(
        required=False, coerce=int, choices=[(25, "25"), (50, "50"), (100, "100")], initial=25
    )

    def __init__(self, *args: Any, profiles: QuerySet[CertificateProfile], **kwargs: Any):
        super().__init__(*args, **kwargs)
        profile_field = self.fields["profile"]
        assert isinstance(profile_field, forms.ChoiceField)
        profile_field.choices = [("", "Any profile"), *((p.slug, p.name) for p in profiles)]

    def filters(self) -> dict[str, Any]:
        """Keyword arguments for inventory.filter_certificates; bad values dropped."""
        self.is_valid()  # cleaned_data keeps the valid fields of a partly invalid query
        data = self.cleaned_data
        return {
            "q": data.get("q") or "",
            "status": data.get("status") or "",
            "profile": data.get("profile") or "",
            "method": data.get("method") or "",
            "expiring_within_days": data.get("expiring"),
            "sort": data.get("sort") or "-created_at",
        }

    def page_size(self) -> int:
        self.is_valid()
        return self.cleaned_data.get("per_page") or 25


def _profile_field(profiles: QuerySet[CertificateProfile]) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=profiles,
        to_field_name="slug",
        empty_label=None,
        help_text="The profile decides key types, names, validity and usages.",
    )


class IssueForm(forms.Form):
    """Issue from a pasted CSR, or with a key the portal generates and holds."""

    MODE_CHOICES = [("keygen", "Generate the key on the server"), ("csr", "Paste a CSR")]

    mode = forms.ChoiceField(choices=MODE_CHOICES, widget=forms.RadioSelect, initial="keygen")
    csr = forms.CharField(
        required=False,
        label="CSR (PEM)",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        max_length=MAX_UPLOAD_BYTES,
    )
    common_name = forms.CharField(required=False, max_length=255, label="Common name")
    sans = forms.CharField(
        required=False,
        label="Subject alternative names",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="DNS names, IP addresses, emails or URIs; one per line or comma-separated.",
    )
    key_algorithm = forms.ChoiceField(
        choices=[(a.value, a.value.replace("_", " ")) for a in KeyAlgorithm],
        initial=KeyAlgorithm.EC_P256.value,
        label="Key type",
    )
    validity_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=36500,
        label="Validity (days)",
        help_text="Empty for the profile's default; clamped to its maximum.",
    )

    def __init__(self, *args: Any, profiles: QuerySet[CertificateProfile], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["profile"] = _profile_field(profiles)
        self.order_fields(["profile", "mode"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == "csr" and not (data.get("csr") or "").strip():
            self.add_error("csr", "Paste a certificate signing request in PEM.")
        if data.get("mode") == "keygen" and not (
            (data.get("common_name") or "").strip() or self.san_list()
        ):
            self.add_error("common_name", "Give a common name or at least one SAN.")
        return data

    def san_list(self) -> list[str]:
        raw = self.cleaned_data.get("sans") or ""
        return [s.strip() for s in raw.replace(",", "\n").splitlines() if s.strip()]


# IssuanceRejected.field values -> the form field that shows the message.
REJECTION_FIELDS = {
    "csr": "csr",
    "key": "key_algorithm",
    "sans": "sans",
    "subject": "common_name",
    "validity_days": "validity_days",
    "profile": "profile",
}


class LimitedFileField(forms.FileField):
    def clean(self, data: Any, initial: Any = None) -> Any:
        uploaded = super().clean(data, initial)
        if uploaded is not None and uploaded.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is too large ({uploaded.size} bytes); the limit is "
                f"{MAX_UPLOAD_BYTES // 1024} KB."
            )
        return uploaded


class ImportForm(forms.Form):
    """An existing certificate: PEM (optionally with its key), or a PKCS#12 file."""

    certificate_pem = forms.CharField(
        required=False,
        label="Certificate (PEM, then its chain)",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        max_length=MAX_UPLOAD_BYTES,
    )
    private_key_pem = forms.CharField(
        required=False,
        label="Private key (PEM, optional)",
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        max_length=MAX_UPLOAD_BYTES,
    )
    pkcs12 = LimitedFileField(required=False, label="Or a PKCS#12 file (.p12 / .pfx)")
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        label="Password (of the PKCS#12 file or the encrypted key)",
        strip=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        has_pem = bool((data.get("certificate_pem") or "").strip())
        if has_pem == bool(data.get("pkcs12")) and not self.errors:
            raise forms.ValidationError("Paste a PEM certificate or upload a PKCS#12 file (one).")
        return data


class RevokeForm(forms.Form):
    reason = forms.ChoiceField(choices=RevocationReason.choices, initial="unspecified")
    confirm = forms.BooleanField(
        label="I understand that revocation cannot be undone.",
        help_text="Except a certificate hold, which can be released from the certificate page.",
        required=True,
    )


class RenewForm(forms.Form):
    """How to renew: a fresh held key, the same held key, or the requester's CSR."""

    key = forms.ChoiceField(choices=KeyMode.choices, initial=KeyMode.NEW, widget=forms.RadioSelect)
    csr = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        required=False,
        max_length=64 * 1024,
        label='CSR (PEM), for "My CSR"',
    )

    def __init__(self, *args: Any, holds_key: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not holds_key:
            key_field = self.fields["key"]
            assert isinstance(key_field, forms.ChoiceField)
            key_field.choices = [(KeyMode.CSR.value, KeyMode.CSR.label)]
            key_field.initial = KeyMode.CSR

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("key") == KeyMode.CSR and not (data.get("csr") or "").strip():
            self.add_error("csr", "Paste the CSR for the renewed certificate.")
        return data


class Pkcs12Form(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput,
        min_length=8,
        strip=False,
        label="Password for the PKCS#12 file",
        help_text="At least 8 characters. You will need it to open the file.",
    )
