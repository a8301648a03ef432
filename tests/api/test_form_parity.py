"""Every setting the portal's forms offer, the API offers too.

The portal's forms are found by walking the URLconf: each routed view's module, the
forms it names and the forms modules it imports. Each form is mapped to the API operation
that does the same thing and to its serializer; every form field must be a field of that
serializer (under the same name unless PARITY renames it) or be listed in NO_API_FIELD
with the reason it has no equivalent. A new form, or a new field on a form, fails here
until the API offers it.
"""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.forms import BaseForm
from django.urls import URLPattern, URLResolver, get_resolver

APPS = ("applications", "alerts", "issuance", "approvals", "syncs", "profiles")
APP = "/api/v1/applications/{slug}"


@dataclass(frozen=True)
class Api:
    """The operation that does what the form does, and the serializer of its input."""

    method: str
    path: str
    serializer: str
    renamed: dict[str, str] = field(default_factory=dict)


PARITY: dict[str, Api] = {
    # Alerting tab
    "alerts.forms.ChannelForm": Api(
        "put", f"{APP}/alert-channels/{{name}}/", "alerts.api.serializers.ChannelWriteSerializer"
    ),
    "alerts.forms.AlertRuleForm": Api(
        "put",
        f"{APP}/alert-rules/{{name}}/",
        "alerts.api.serializers.AlertRuleSerializer",
        {"thresholds": "thresholds_days"},
    ),
    # Application, members, audit log
    "applications.forms.ApplicationForm": Api(
        "post", "/api/v1/applications/", "applications.api.serializers.ApplicationCreateSerializer"
    ),
    "applications.forms.ApplicationEditForm": Api(
        "patch", f"{APP}/", "applications.api.serializers.ApplicationEditSerializer"
    ),
    "applications.forms.AddMemberForm": Api(
        "post", f"{APP}/members/", "applications.api.serializers.MemberInputSerializer"
    ),
    "applications.forms.MemberRoleForm": Api(
        "patch", f"{APP}/members/{{username}}/", "applications.api.serializers.MemberRoleSerializer"
    ),
    "applications.forms.AuditFilterForm": Api(
        "get", "/api/v1/events/", "applications.api.serializers.AuditFilterSerializer"
    ),
    # Approvals
    "approvals.forms.ApprovalPolicyForm": Api(
        "post", f"{APP}/approval-policies/", "approvals.api.serializers.ApprovalPolicySerializer"
    ),
    "approvals.forms.StepForm": Api(
        "post", f"{APP}/approval-policies/", "approvals.api.serializers.StepSerializer"
    ),
    "approvals.forms.RenewalBypassForm": Api(
        "put",
        f"{APP}/approval-policies/settings/",
        "approvals.api.serializers.ApprovalSettingsSerializer",
    ),
    "approvals.forms.DecisionForm": Api(
        "post",
        f"{APP}/requests/{{id}}/approve/",
        "approvals.api.serializers.DecisionInputSerializer",
    ),
    # Certificates
    "issuance.forms.IssueForm": Api(
        "post", f"{APP}/certificates/", "issuance.api.serializers.IssueSerializer"
    ),
    "issuance.forms.ImportForm": Api(
        "post", f"{APP}/certificates/import/", "issuance.api.serializers.ImportSerializer"
    ),
    "issuance.forms.RenewForm": Api(
        "post", f"{APP}/certificates/{{id}}/renew/", "issuance.api.serializers.RenewSerializer"
    ),
    "issuance.forms.RevokeForm": Api(
        "post", f"{APP}/certificates/{{id}}/revoke/", "issuance.api.serializers.RevokeSerializer"
    ),
    "issuance.forms.Pkcs12Form": Api(
        "post", f"{APP}/certificates/{{id}}/pkcs12/", "issuance.api.serializers.Pkcs12Serializer"
    ),
    "issuance.forms.InventoryFilterForm": Api(
        "get",
        f"{APP}/certificates/",
        "issuance.api.serializers.CertificateFilterSerializer",
        {"expiring": "expiring_within_days"},
    ),
    # Renewal tab
    "issuance.renewal.forms.RenewalSettingsForm": Api(
        "put",
        f"{APP}/renewal-settings/",
        "issuance.renewal.api.serializers.RenewalSettingsSerializer",
    ),
    "issuance.renewal.forms.CertificateRenewalForm": Api(
        "put",
        f"{APP}/certificates/{{pk}}/renewal-settings/",
        "issuance.renewal.api.serializers.CertificateRenewalSerializer",
    ),
    # Enrollment tab: ACME, EST, SCEP
    "issuance.acme.forms.ExternalAccountKeyForm": Api(
        "put",
        f"{APP}/acme/eab-credentials/{{name}}/",
        "issuance.acme.api.serializers.ExternalAccountKeySerializer",
    ),
    "issuance.acme.forms.RevokeExternalAccountKeyForm": Api(
        "post",
        f"{APP}/acme/eab-credentials/{{name}}/revoke/",
        "issuance.acme.api.serializers.RevokeExternalAccountKeySerializer",
    ),
    "issuance.est.forms.EstEnrollmentForm": Api(
        "post",
        f"{APP}/est-enrollments/",
        "issuance.est.api.serializers.EstEnrollmentSerializer",
        {"trust_bundle": "trust_bundle_pem"},
    ),
    "issuance.est.forms.EstCredentialForm": Api(
        "post",
        f"{APP}/est-enrollments/{{label}}/credentials/",
        "issuance.est.api.serializers.EstCredentialSerializer",
    ),
    "issuance.scep.forms.ScepSettingsForm": Api(
        "patch", f"{APP}/scep/{{profile}}/", "issuance.scep.api.ScepSettingsSerializer"
    ),
    "issuance.scep.forms.EnableScepForm": Api(
        "post", f"{APP}/scep/", "issuance.scep.api.ScepEnableSerializer"
    ),
    "issuance.scep.forms.StaticChallengeForm": Api(
        "post",
        f"{APP}/scep/{{profile}}/static-challenge/",
        "issuance.scep.api.StaticChallengeSerializer",
    ),
    "issuance.scep.forms.MintChallengeForm": Api(
        "post",
        f"{APP}/scep/{{profile}}/challenges/",
        "issuance.scep.api.ChallengeInputSerializer",
    ),
    # Syncs tab
    "syncs.forms.ConnectionForm": Api(
        "post", f"{APP}/connections/", "syncs.api.serializers.ConnectionWriteSerializer"
    ),
    "syncs.forms.SyncForm": Api(
        "post", f"{APP}/syncs/", "syncs.api.serializers.SyncWriteSerializer"
    ),
    "syncs.forms.DriftForm": Api(
        "post", f"{APP}/syncs/{{id}}/drift/", "syncs.api.serializers.DriftRequestSerializer"
    ),
    "syncs.forms.DeleteForm": Api(
        "delete", f"{APP}/syncs/{{id}}/", "syncs.api.serializers.SyncSerializer"
    ),
    # Product admins: CAs and profiles
    "profiles.forms.CAForm": Api(
        "post", "/api/v1/cas/", "profiles.api.serializers.CACreateSerializer"
    ),
    "profiles.forms.ImportCAForm": Api(
        "post", "/api/v1/cas/import/", "profiles.api.serializers.CAImportSerializer"
    ),
    "profiles.forms.InstallCertificateForm": Api(
        "post", "/api/v1/cas/{slug}/install/", "profiles.api.serializers.CAInstallSerializer"
    ),
    "profiles.forms.CAStatusForm": Api(
        "patch", "/api/v1/cas/{slug}/", "profiles.api.serializers.CAStatusSerializer"
    ),
    "profiles.forms.ProfileForm": Api(
        "post", "/api/v1/profiles/", "profiles.api.serializers.CertificateProfileSerializer"
    ),
}

# Form fields with no field of the same meaning in the API, each with the reason.
NO_API_FIELD: dict[str, str] = {
    "approvals.forms.DecisionForm.verdict": "the API has an approve and a reject operation",
    "issuance.forms.IssueForm.mode": "the API tells CSR from server key generation by the "
    "fields sent (csr, or key_algorithm)",
    "issuance.forms.RevokeForm.confirm": "a confirmation tick box of the page",
    "issuance.forms.InventoryFilterForm.per_page": "the page_size query parameter of every "
    "list (the pagination's, not the filter's)",
    "issuance.est.forms.EstEnrollmentForm.clear_trust_bundle": "send trust_bundle_pem empty",
    "issuance.scep.forms.EnableScepForm.enabled": "POST enables; PATCH enabled=false disables",
    "issuance.scep.forms.StaticChallengeForm.remove": "send challenge empty to remove it",
    "syncs.forms.SyncForm.include_root": "a key of the sync's options",
    "syncs.forms.SyncForm.include_private_key": "a key of the sync's options",
    "syncs.forms.SyncForm.remove_on_revoke": "a key of the sync's options",
    "syncs.forms.SyncForm.remove_on_expiry": "a key of the sync's options",
    "syncs.forms.DeleteForm.remove_remote": "the remove_remote query parameter of DELETE",
}


def _callbacks(patterns: list[Any]) -> Iterator[Any]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _callbacks(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            yield pattern.callback


def _is_portal_form(value: Any) -> bool:
    return (
        inspect.isclass(value)
        and issubclass(value, BaseForm)
        and value.__module__.startswith(APPS)
        and not value.__name__.startswith("_")
    )


def _forms_named_in(module: types.ModuleType) -> Iterator[type[BaseForm]]:
    """Forms a view module names, directly or through a forms module it imports."""
    for value in vars(module).values():
        if isinstance(value, types.ModuleType) and value.__name__.endswith(".forms"):
            yield from (v for v in vars(value).values() if _is_portal_form(v))
        elif _is_portal_form(value):
            yield value


def portal_forms() -> dict[str, type[BaseForm]]:
    """The forms of every routed portal view in the apps, with the other forms of the
    forms modules they come from (formset members, for instance)."""
    modules: set[str] = set()
    for callback in _callbacks(get_resolver().url_patterns):
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None) or callback
        name = getattr(view, "__module__", "")
        if name.startswith(APPS) and ".api" not in name:
            modules.add(name)
    named = {form for name in modules for form in _forms_named_in(importlib.import_module(name))}
    siblings = {
        value
        for form in named
        for value in vars(importlib.import_module(form.__module__)).values()
        if _is_portal_form(value) and value.__module__ == form.__module__
    }
    return {f"{form.__module__}.{form.__name__}": form for form in named | siblings}


def _serializer_fields(dotted: str) -> set[str]:
    module, name = dotted.rsplit(".", 1)
    return set(getattr(importlib.import_module(module), name)().fields)


@pytest.fixture(scope="module")
def schema_paths() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return dict(SchemaGenerator().get_schema(request=None, public=True)["paths"])


def test_the_walk_finds_the_portal_forms() -> None:
    found = portal_forms()
    assert "alerts.forms.ChannelForm" in found
    assert "issuance.renewal.forms.RenewalSettingsForm" in found
    assert len(found) >= 30


def test_every_portal_form_has_an_api_operation(schema_paths: dict[str, Any]) -> None:
    forms = portal_forms()
    assert sorted(set(forms) - set(PARITY)) == [], "map these forms to their API operation"
    assert sorted(set(PARITY) - set(forms)) == [], "these forms are gone: drop them here"
    for name, api in PARITY.items():
        path = _schema_path(schema_paths, api.path)
        assert path is not None, f"{name}: no API path {api.path}"
        assert api.method in schema_paths[path], f"{name}: {path} has no {api.method.upper()}"


@pytest.mark.parametrize("form_name", sorted(PARITY))
def test_every_form_field_is_an_api_field(form_name: str) -> None:
    form = portal_forms()[form_name]
    api = PARITY[form_name]
    offered = _serializer_fields(api.serializer)
    missing = [
        name
        for name in _fields(form)
        if api.renamed.get(name, name) not in offered and f"{form_name}.{name}" not in NO_API_FIELD
    ]
    assert missing == [], f"{form_name}: the API ({api.serializer}) lacks {missing}"


def test_the_allow_list_names_only_real_fields_without_an_api_field() -> None:
    forms = portal_forms()
    for dotted in NO_API_FIELD:
        form_name, field_name = dotted.rsplit(".", 1)
        assert field_name in _fields(forms[form_name]), f"{dotted} is gone: drop it here"
        offered = _serializer_fields(PARITY[form_name].serializer)
        assert field_name not in offered, f"{dotted} is in the API now: drop it here"


def _schema_path(paths: dict[str, Any], wanted: str) -> str | None:
    """The schema's path matching wanted, whatever its parameters are called."""
    shape = _shape(wanted)
    return next((path for path in paths if _shape(path) == shape), None)


def _shape(path: str) -> tuple[str, ...]:
    return tuple("{}" if part.startswith("{") else part for part in path.split("/"))


def _fields(form: type[BaseForm]) -> list[str]:
    """The form's declared fields (fields added per instance are the view's business)."""
    return list(getattr(form, "base_fields", {}))
