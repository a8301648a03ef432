"""Forms of the Syncs tab. Credential fields are write-only: never filled in again, and
left blank on edit to keep the stored ones."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from applications.models import Application
from profiles.models import CertificateProfile
from syncs.choices import ConnectionKind, Destination, Selector
from syncs.models import Connection, Sync
from syncs.services import CONFIG_FIELDS, CREDENTIAL_FIELDS

SECRET_FIELDS = {"secret_access_key", "client_secret", "api_token"}
LABELS = {
    "access_key_id": "AWS access key id",
    "secret_access_key": "AWS secret access key",
    "tenant_id": "Azure tenant id",
    "client_id": "Azure client id",
    "client_secret": "Azure client secret",
    "api_token": "Cloudflare API token",
    "endpoint_url": "AWS-compatible endpoint URL (optional)",
    "role_arn": "Role ARN to assume (optional)",
    "authority_host": "Azure authority host (optional)",
    "api_base_url": "Cloudflare API base URL (optional)",
}


class ConnectionForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=ConnectionKind.choices)

    def __init__(self, *args: Any, connection: Connection | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = connection
        for names in CREDENTIAL_FIELDS.values():
            for name in names:
                widget = forms.PasswordInput(render_value=False) if name in SECRET_FIELDS else None
                self.fields[name] = forms.CharField(
                    label=LABELS[name], required=False, max_length=4096, widget=widget
                )
        for names in CONFIG_FIELDS.values():
            for name in names:
                self.fields[name] = forms.CharField(
                    label=LABELS[name], required=False, max_length=2048
                )
        if connection is not None:
            self.fields["kind"].disabled = True
            self.initial.update(name=connection.name, kind=connection.kind, **connection.config)
            for names in CREDENTIAL_FIELDS.values():
                for name in names:
                    self.fields[name].help_text = "Leave blank to keep the stored value."

    def credentials(self) -> dict[str, str] | None:
        """The credentials typed in, or None when all were left blank on edit."""
        kind = self.cleaned_data["kind"]
        given = {n: self.cleaned_data.get(n, "") for n in CREDENTIAL_FIELDS[kind]}
        if self.connection is not None and not any(given.values()):
            return None
        return given

    def config(self) -> dict[str, str]:
        kind = self.cleaned_data["kind"]
        return {n: self.cleaned_data.get(n, "") for n in CONFIG_FIELDS[kind]}


class SyncForm(forms.Form):
    name = forms.CharField(max_length=100)
    destination = forms.ChoiceField(choices=Destination.choices)
    connection = forms.ModelChoiceField(queryset=Connection.objects.none())
    selector = forms.ChoiceField(choices=Selector.choices)
    profile = forms.ModelChoiceField(queryset=CertificateProfile.objects.none(), required=False)
    certificate = forms.UUIDField(
        required=False, help_text="For one lineage: the certificate's id."
    )
    name_pattern = forms.CharField(
        max_length=255, required=False, help_text="e.g. *.payments.example.com"
    )
    name_template = forms.CharField(
        max_length=255,
        required=False,
        help_text="{application}, {profile}, {common_name}, {serial}; blank for the default.",
    )
    include_root = forms.BooleanField(required=False, label="Include the root CA")
    include_private_key = forms.BooleanField(
        required=False, initial=True, label="Include the private key"
    )
    remove_on_revoke = forms.BooleanField(
        required=False, initial=True, label="Remove from the destination on revocation"
    )
    remove_on_expiry = forms.BooleanField(
        required=False, label="Remove from the destination on expiry"
    )
    options = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text='Destination options as JSON, e.g. {"region": "eu-west-1"} (AWS), '
        '{"vault_url": "https://x.vault.azure.net"} (Azure), {"zone_id": "..."} (Cloudflare).',
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    COMMON = ("include_root", "include_private_key", "remove_on_revoke", "remove_on_expiry")

    def __init__(self, *args: Any, application: Application, sync: Sync | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.application = application
        self.fields["connection"].queryset = application.sync_connections.filter(  # type: ignore[attr-defined]
            deleting=False
        )
        self.fields["profile"].queryset = application.profiles.all()  # type: ignore[attr-defined]
        if sync is not None:
            extra = {k: v for k, v in sync.options.items() if k not in self.COMMON}
            self.initial.update(
                name=sync.name,
                destination=sync.destination,
                connection=sync.connection_id,
                selector=sync.selector,
                profile=sync.profile_id,
                certificate=sync.certificate_id,
                name_pattern=sync.name_pattern,
                name_template=sync.name_template,
                options=json.dumps(extra, indent=1),
                is_active=sync.is_active,
                **{k: sync.options.get(k) for k in self.COMMON},
            )

    def clean_options(self) -> dict[str, Any]:
        raw = self.cleaned_data.get("options") or "{}"
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("A JSON object.")
        return value

    def all_options(self) -> dict[str, Any]:
        return {**self.cleaned_data["options"], **{k: self.cleaned_data[k] for k in self.COMMON}}


class DeleteForm(forms.Form):
    remove_remote = forms.BooleanField(
        required=False,
        label="Also remove what it pushed from the destination (before the record is deleted)",
    )


class DriftForm(forms.Form):
    repair = forms.BooleanField(required=False, label="Repair: push missing and changed again")
