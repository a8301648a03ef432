"""One family of refusals, mapped once per front: every exception class in the project
is a Refused or is named below with the reason it is not; forms, the REST API and ACME
each put a refusal's message where it belongs."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest
from django import forms
from rest_framework.test import APIClient

from applications.services import MembershipError
from approvals.services import ApprovalError
from certportal.api import services as credentials
from certportal.api.errors import api_exception_handler
from certportal.api.services import TokenError
from certportal.refusals import Refused
from certportal.web import add_refusal_to_form
from issuance.acme import messages
from issuance.services import (
    CertificateFileError,
    IssuanceRejected,
    RenewalError,
    RevocationError,
)
from profiles.services import CAError

ROOT = Path(__file__).resolve().parent.parent
# agent/ is a separate package (certportal-agent) that never imports the portal.
SKIPPED_DIRS = {
    ".venv",
    "tests",
    "migrations",
    "benchmarks",
    "node_modules",
    "static",
    "data",
    "agent",
}

# Exceptions that are not a service verb declining an ask, and why.
NOT_REFUSALS = {
    # pki/ imports nothing of the project; the verbs turn these into their refusals.
    "pki.errors.PKIError": "pure X.509 layer",
    "pki.errors.DecodeError": "pure X.509 layer",
    "pki.errors.CSRError": "pure X.509 layer",
    "pki.errors.PolicyViolation": "pure X.509 layer",
    "pki.errors.KeyMismatch": "pure X.509 layer",
    "pki.scep.Malformed": "pure X.509 layer: not a SCEP message (HTTP 400)",
    "pki.scep.ScepFailure": "SCEP's own answer: a FAILURE CertRep with its failInfo",
    "certportal.secrets.SecretError": "a sealed value that does not open: integrity, not an ask",
    "certportal.outbound.OutboundError": "a request to another host that failed",
    "certportal.outbound.Refused": "a destination the SSRF rules refuse (an OutboundError)",
    "certportal.outbound.Unresolvable": "a host name that does not resolve",
    "certportal.api.errors.Conflict": "the API's rendering of a refusal",
    "issuance.acme.jws.JWSError": "ACME wire format, answered as a problem document",
    "issuance.acme.messages.AcmeProblem": "ACME's own answer",
    "issuance.est.services.EstRefused": "EST's own answer: an HTTP status and a plain-text reason",
    "issuance.acme.validation._Refused": "internal to challenge validation",
    "issuance.trust.SerialTaken": "internal to the import's trust decision",
    "alerts.channels.base.DeliveryError": "a send that failed, logged on the delivery",
    "syncs.backends.base.SyncError": "a provider call that failed, recorded on the sync item",
    "syncs.backends.base.OptionsError": "a backend's option check, raised by syncs as field errors",
    "syncs.selection.KeyProblem": "internal: the item is recorded as not syncable",
}


def _project_modules() -> list[str]:
    found = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if SKIPPED_DIRS & set(relative.parts[:-1]) or relative.parts[0].startswith("."):
            continue
        if len(relative.parts) == 1:  # manage.py, conftest.py, gunicorn.conf.py
            continue
        found.append(".".join(relative.with_suffix("").parts).removesuffix(".__init__"))
    return sorted(found)


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every class defined at module level in the project that is an exception."""
    classes = {}
    for module_name in _project_modules():
        path = ROOT.joinpath(*module_name.split("."))
        source = (
            path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"
        )
        names = [n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.ClassDef)]
        if not names:
            continue
        module = importlib.import_module(module_name)
        for name in names:
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                classes[f"{module_name}.{name}"] = cls
    return classes


def test_every_exception_in_the_project_is_a_refusal_or_named_as_not_one() -> None:
    classes = _exception_classes()
    stray = sorted(
        name
        for name, cls in classes.items()
        if not issubclass(cls, Refused) and name not in NOT_REFUSALS
    )
    assert stray == [], "derive these from certportal.refusals.Refused, or say why not"
    assert sorted(set(NOT_REFUSALS) - set(classes)) == []  # no stale entry hides a rename
    for name in NOT_REFUSALS:
        assert not issubclass(classes[name], Refused), name


def test_the_service_refusals_are_found_and_are_refusals() -> None:
    classes = _exception_classes()
    for cls in (
        IssuanceRejected,
        RevocationError,
        RenewalError,
        CertificateFileError,
        ApprovalError,
        CAError,
        TokenError,
        MembershipError,
    ):
        assert classes[f"{cls.__module__}.{cls.__name__}"] is cls
        assert issubclass(cls, Refused)


def test_message_first_refusals_keep_their_signature_and_default_code() -> None:
    refused = CertificateFileError("Choose a password of at least 8 characters.", "password")
    assert (refused.code, refused.field, str(refused)) == (
        "invalid_file",
        "password",
        "Choose a password of at least 8 characters.",
    )
    assert RevocationError("gone", code="already_revoked").conflict
    assert not RenewalError("no key").conflict
    renamed = RenewalError("no key").on_field("key")
    assert (type(renamed), renamed.field, renamed.code) == (RenewalError, "key", "renewal_refused")


# --- Forms ----------------------------------------------------------------------------


class _UploadForm(forms.Form):
    csr = forms.CharField(required=False)
    common_name = forms.CharField(required=False)


def _form() -> _UploadForm:
    form = _UploadForm({})
    assert form.is_valid()
    return form


def test_a_refusal_lands_on_the_field_it_names() -> None:
    form = _form()
    add_refusal_to_form(form, IssuanceRejected("bad_csr", "The CSR signature is wrong.", "csr"))
    assert form.errors == {"csr": ["The CSR signature is wrong."]}


def test_a_refusal_naming_no_field_of_the_form_goes_above_it() -> None:
    form = _form()
    add_refusal_to_form(form, CAError("The parent CA is not active.", field="parent"))
    assert form.non_field_errors() == ["The parent CA is not active."]
    assert set(form.errors) == {"__all__"}


def test_a_form_may_rename_the_services_fields() -> None:
    form = _form()
    refused = IssuanceRejected("bad_subject", "The CN has a control character.", "subject")
    add_refusal_to_form(form, refused, fields={"subject": "common_name"})
    assert form.errors == {"common_name": ["The CN has a control character."]}
    other = _form()
    add_refusal_to_form(other, refused, fields={"csr": "csr"})  # not listed: above the form
    assert other.non_field_errors() == ["The CN has a control character."]


# --- REST API ---------------------------------------------------------------------------


def _answer(refused: Refused) -> tuple[int, Any]:
    response = api_exception_handler(refused, {"request": None, "view": None})
    assert response is not None
    return response.status_code, response.data


def test_api_puts_an_input_refusal_on_its_field() -> None:
    status, body = _answer(TokenError("Give the token a name.", "name"))
    assert status == 400
    assert body == {
        "code": "invalid",
        "message": "The request is invalid.",
        "errors": [{"field": "name", "code": "invalid", "message": "Give the token a name."}],
    }


def test_api_answers_a_refusal_of_the_whole_ask_with_its_code() -> None:
    status, body = _answer(RenewalError("A revoked certificate cannot be renewed."))
    assert status == 400
    assert body["code"] == "renewal_refused"
    assert body["errors"] == [
        {
            "field": None,
            "code": "renewal_refused",
            "message": "A revoked certificate cannot be renewed.",
        }
    ]


def test_api_answers_a_conflict_409_and_a_caller_who_may_not_403() -> None:
    status, body = _answer(MembershipError("Keep one Admin.", code="last_admin"))
    assert (status, body) == (
        409,
        {"code": "last_admin", "message": "Keep one Admin.", "errors": []},
    )
    status, body = _answer(ApprovalError("own_request", "You cannot decide on your own request."))
    assert (status, body["code"]) == (403, "own_request")


@pytest.mark.django_db
def test_api_view_refusal_reaches_the_client_on_its_field(personas: Any, application: Any) -> None:
    admin = personas["admin"]
    _, token = credentials.create_token(admin, name="t", actor=credentials_actor(admin))
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/api/v1/applications/{application.name}/service-accounts/"
    assert api.post(url, {"name": "deployer", "role": "operator"}, format="json").status_code == 201
    again = api.post(url, {"name": "deployer", "role": "operator"}, format="json")
    assert again.status_code == 400
    assert again.json()["errors"] == [
        {
            "field": "name",
            "code": "invalid",
            "message": "A service account with this name already exists.",
        }
    ]


def credentials_actor(user: Any) -> Any:
    from certportal.events import Actor

    return Actor(user=user)


# --- ACME -------------------------------------------------------------------------------


def test_acme_maps_refusal_codes_to_problem_types() -> None:
    revoked = RevocationError("This certificate is already revoked.", code="already_revoked")
    assert messages.problem_for(revoked).kind == "alreadyRevoked"
    assert messages.problem_for(IssuanceRejected("bad_key", "Blocked key.")).kind == "badCSR"
    renewal_of_revoked = IssuanceRejected("already_revoked", "The certificate was revoked.")
    problem = messages.problem_for(renewal_of_revoked, messages.FINALIZE_PROBLEMS)
    assert (problem.kind, problem.detail) == ("malformed", "The certificate was revoked.")
    assert messages.problem_for(CAError("No.")).kind == "malformed"
