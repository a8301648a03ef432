"""Product-admin forms: certificate authorities and certificate profiles."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from pki import certs
from pki.keys import KeyAlgorithm
from profiles.choices import CAStatus, Preset
from profiles.models import CertificateAuthority

MAX_PEM = 64 * 1024
_PEM_WIDGET = forms.Textarea(attrs={"rows": 8, "spellcheck": "false"})


class LinesField(forms.CharField):
    """A list of strings, typed one per line (commas also separate)."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


class JSONTextField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})

    def prepare_value(self, value: Any) -> Any:
        return json.dumps(value, indent=2) if isinstance(value, dict) else value

    def to_python(self, value: Any) -> Any:
        text = (super().to_python(value) or "").strip()
        if not text:
            return {}
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from exc


class _SubjectFields(forms.Form):
    common_name = forms.CharField(max_length=64, label="Common name")
    organization = forms.CharField(max_length=64, required=False)
    organizational_unit = forms.CharField(
        max_length=64, required=False, label="Organizational unit"
    )
    country = forms.CharField(max_length=2, min_length=2, required=False, help_text="e.g. DE")


class CAForm(_SubjectFields):
    """A new internal root or intermediate, or an external CA's key and CSR."""

    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=63, help_text="Used in CRL, OCSP and CA certificate URLs.")
    key_algorithm = forms.ChoiceField(
        choices=[(a.value, a.value.replace("_", " ")) for a in KeyAlgorithm],
        initial=KeyAlgorithm.EC_P256.value,
        label="Key type",
    )
    validity_days = forms.IntegerField(min_value=1, max_value=36500, initial=3650)
    path_length = forms.IntegerField(
        min_value=0, max_value=10, required=False, help_text="Empty for no limit (root)."
    )
    permitted_dns = LinesField(label="Permitted DNS subtrees (name constraints)")
    excluded_dns = LinesField(label="Excluded DNS subtrees")
    field_order = ["name", "slug", "common_name"]

    def __init__(self, *args: Any, with_parent: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if with_parent:
            self.fields["parent"] = forms.ModelChoiceField(
                queryset=CertificateAuthority.objects.filter(status=CAStatus.ACTIVE).exclude(
                    certificate_pem=""
                ),
                to_field_name="slug",
                label="Parent CA",
            )
            self.order_fields(["name", "slug", "parent"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        taken = CertificateAuthority.objects.filter
        if data.get("slug") and taken(slug=data["slug"]).exists():
            self.add_error("slug", "A CA with this slug already exists.")
        if data.get("name") and taken(name=data["name"]).exists():
            self.add_error("name", "A CA with this name already exists.")
        return data


class ImportCAForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=63)
    certificate_pem = forms.CharField(
        widget=_PEM_WIDGET, max_length=MAX_PEM, label="CA certificate (PEM, then its chain)"
    )
    private_key_pem = forms.CharField(widget=_PEM_WIDGET, max_length=MAX_PEM, label="Private key")
    password = forms.CharField(
        required=False, widget=forms.PasswordInput, strip=False, label="Key password"
    )

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if CertificateAuthority.objects.filter(slug=slug).exists():
            raise forms.ValidationError("A CA with this slug already exists.")
        return slug


class InstallCertificateForm(forms.Form):
    certificate_pem = forms.CharField(
        widget=_PEM_WIDGET, max_length=MAX_PEM, label="Signed certificate (PEM, then its chain)"
    )


class CAStatusForm(forms.Form):
    status = forms.ChoiceField(
        choices=[(CAStatus.ACTIVE, "Active"), (CAStatus.DISABLED, "Disabled")]
    )


_KEY_FAMILIES = [("RSA", "RSA"), ("EC", "ECDSA"), ("ED25519", "Ed25519")]
_CURVES = [("P-256", "P-256"), ("P-384", "P-384"), ("P-521", "P-521")]
_KU = sorted({name for name in certs.KEY_USAGE_NAMES if name != "contentCommitment"})
_EKU = sorted(certs.EKU_NAMES)


class ProfileForm(forms.Form):
    """Every policy field of a CertificateProfile. Model validation (clean()) runs in the
    service and its errors come back onto these fields."""

    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=63)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    preset = forms.ChoiceField(choices=Preset.choices, initial=Preset.CUSTOM)
    issuing_ca = forms.ModelChoiceField(
        queryset=CertificateAuthority.objects.exclude(certificate_pem=""),
        to_field_name="slug",
        label="Issuing CA",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    validity_days_default = forms.IntegerField(min_value=1, max_value=36500, initial=90)
    validity_days_max = forms.IntegerField(min_value=1, max_value=36500, initial=397)
    renewal_window_days = forms.IntegerField(min_value=0, max_value=36500, initial=30)
    key_algorithms = forms.MultipleChoiceField(
        choices=_KEY_FAMILIES, widget=forms.CheckboxSelectMultiple, required=False,
        help_text="None ticked allows all.",
    )  # fmt: skip
    rsa_min_bits = forms.IntegerField(min_value=1024, max_value=16384, initial=2048)
    ec_curves = forms.MultipleChoiceField(
        choices=_CURVES, widget=forms.CheckboxSelectMultiple, required=False,
        help_text="None ticked allows P-256 and P-384.",
    )  # fmt: skip
    key_usages = forms.MultipleChoiceField(
        choices=[(k, k) for k in _KU], widget=forms.CheckboxSelectMultiple, required=False
    )
    extended_key_usages = forms.MultipleChoiceField(
        choices=[(k, k) for k in _EKU], widget=forms.CheckboxSelectMultiple, required=False
    )
    dns_rules = LinesField(
        label="Allowed DNS names",
        help_text="Exact names or *.domain patterns, one per line.",
    )
    allow_wildcards = forms.BooleanField(required=False, initial=True)
    ip_cidrs = LinesField(label="Allowed IP ranges (CIDR)")
    email_patterns = LinesField(label="Allowed email patterns")
    uri_patterns = LinesField(label="Allowed URI patterns")
    subject_rules = JSONTextField(
        required=False,
        help_text=(
            'Per attribute (CN, O, OU, C): {"mode": "drop|optional|required", "pattern": regex}'
        ),
    )
    copy_cn_to_sans = forms.BooleanField(required=False, initial=True, label="Copy CN to SANs")
    require_san = forms.BooleanField(required=False, initial=True, label="Require a SAN")
    max_sans = forms.IntegerField(min_value=1, max_value=1000, initial=100, label="Max SANs")
    allow_server_keygen = forms.BooleanField(
        required=False, initial=True, label="Allow server-generated keys"
    )
