"""Every endpoint and method, for every persona: the status the permission rules give.

Levels: VIEW (any member and product admins), ISSUE / MANAGE (by role), PA (product
admins only), AUTH (anyone signed in, scoped to what they can see). Outside the
Application's scope is 404, a missing role inside it 403, no credentials 401.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests import certfiles

PERSONAS = ["product_admin", "admin", "operator", "auditor", "outsider", "anonymous"]


def level(ok: int, allowed: set[str], forbidden: int = 403) -> dict[str, int]:
    statuses = {}
    for persona in PERSONAS:
        if persona == "anonymous":
            statuses[persona] = 401
        elif persona in allowed:
            statuses[persona] = ok
        elif persona == "outsider" and forbidden == 403:
            statuses[persona] = 404
        else:
            statuses[persona] = forbidden
    return statuses


VIEW = {"product_admin", "admin", "operator", "auditor"}
ISSUE = {"product_admin", "admin", "operator"}
MANAGE = {"product_admin", "admin"}
PA = {"product_admin"}
AUTH = {"product_admin", "admin", "operator", "auditor", "outsider"}


def pa_only(ok: int) -> dict[str, int]:
    statuses = level(ok, PA, forbidden=403)
    statuses["outsider"] = 403
    return statuses


APP = "/api/v1/applications/payments-api"
EST = "est-enrollments/payments-api.tls-server"
CSR = object()  # replaced by a fresh CSR body
IMPORTED_CERT, _ = certfiles.self_signed()
IMPORT = {"certificate_pem": certfiles.pem(IMPORTED_CERT)}
_CA_KEY = certfiles.new_key()
_CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Imported CA")])
IMPORTED_CA = {
    "name": "Imported",
    "slug": "imported",
    "certificate_pem": certfiles.pem(
        certfiles.build(_CA_NAME, _CA_KEY, subject_key=_CA_KEY, ca=True)[0]
    ),
    "private_key_pem": certfiles.key_pem(_CA_KEY),
}
MAIL = {"kind": "email", "recipients": ["ops@example.test"]}
RULE = {"events": ["revoked"], "channels": ["ops"]}

CASES: list[tuple[str, str, Any, dict[str, int]]] = [
    ("get", "/api/v1/applications/", None, level(200, AUTH)),
    ("post", "/api/v1/applications/", {"name": "new-app"}, pa_only(201)),
    ("get", f"{APP}/", None, level(200, VIEW)),
    ("get", f"{APP}/members/", None, level(200, VIEW)),
    ("get", f"{APP}/members/app-auditor/", None, level(200, VIEW)),
    ("post", f"{APP}/members/", {"username": "newbie", "role": "auditor"}, level(201, MANAGE)),
    ("patch", f"{APP}/members/app-auditor/", {"role": "operator"}, level(200, MANAGE)),
    ("delete", f"{APP}/members/app-auditor/", None, level(204, MANAGE)),
    ("get", f"{APP}/service-accounts/", None, level(200, MANAGE)),
    ("get", f"{APP}/service-accounts/ci/", None, level(200, MANAGE)),
    (
        "post",
        f"{APP}/service-accounts/",
        {"name": "deploy", "role": "operator"},
        level(201, MANAGE),
    ),
    ("post", f"{APP}/service-accounts/ci/tokens/", {"name": "t"}, level(201, MANAGE)),
    ("delete", f"{APP}/service-accounts/ci/", None, level(204, MANAGE)),
    ("get", f"{APP}/certificates/", None, level(200, VIEW)),
    ("get", f"{APP}/certificates/{{cert}}/", None, level(200, VIEW)),
    ("post", f"{APP}/certificates/", CSR, level(201, ISSUE)),
    ("post", f"{APP}/certificates/{{cert}}/renew/", {"key": "new"}, level(201, ISSUE)),
    ("post", f"{APP}/certificates/{{cert}}/revoke/", {"reason": "superseded"}, level(200, ISSUE)),
    # The certificate is not on hold: refused as a conflict once permitted.
    ("post", f"{APP}/certificates/{{cert}}/release-hold/", None, level(409, ISSUE)),
    ("get", f"{APP}/certificates/{{cert}}/pem/", None, level(200, VIEW)),
    ("get", f"{APP}/certificates/{{cert}}/chain/", None, level(200, VIEW)),
    ("get", f"{APP}/certificates/{{cert}}/renewal-window/", None, level(200, VIEW)),
    (
        "post",
        f"{APP}/certificates/{{cert}}/pkcs12/",
        {"password": "s3cret-pass"},
        level(200, ISSUE),
    ),
    ("post", f"{APP}/certificates/import/", IMPORT, level(201, ISSUE)),
    ("get", f"{APP}/requests/", None, level(200, VIEW)),
    ("get", f"{APP}/requests/{{req}}/", None, level(200, VIEW)),
    # Only Application Admins are approvers of the held request; its requester is the operator.
    ("post", f"{APP}/requests/{{req}}/approve/", {"comment": "ok"}, level(200, {"admin"})),
    ("post", f"{APP}/requests/{{req}}/reject/", {"comment": "no"}, level(200, {"admin"})),
    ("get", f"{APP}/approval-policies/", None, level(200, MANAGE)),
    ("get", f"{APP}/approval-policies/{{policy}}/", None, level(200, MANAGE)),
    (
        "post",
        f"{APP}/approval-policies/",
        {"name": "all", "steps": [{"required": 1, "role": "admin"}]},
        level(201, MANAGE),
    ),
    (
        "put",
        f"{APP}/approval-policies/{{policy}}/",
        {"name": "renamed", "steps": [{"required": 1, "role": "admin"}]},
        level(200, MANAGE),
    ),
    ("delete", f"{APP}/approval-policies/{{policy}}/", None, level(204, MANAGE)),
    ("get", f"{APP}/approval-policies/settings/", None, level(200, MANAGE)),
    ("put", f"{APP}/approval-policies/settings/", {"renewals_bypass": False}, level(200, MANAGE)),
    ("get", f"{APP}/est-enrollments/", None, level(200, VIEW)),
    ("get", f"{APP}/{EST}/", None, level(200, VIEW)),
    # tls-server has its enrollment already: refused as a duplicate once permitted.
    ("post", f"{APP}/est-enrollments/", {"profile": "tls-server"}, level(400, MANAGE)),
    ("patch", f"{APP}/{EST}/", {"client_cert_auth": True}, level(200, MANAGE)),
    ("delete", f"{APP}/{EST}/", None, level(204, MANAGE)),
    ("get", f"{APP}/{EST}/credentials/", None, level(200, VIEW)),
    ("post", f"{APP}/{EST}/credentials/", {"username": "device-2"}, level(201, MANAGE)),
    ("delete", f"{APP}/{EST}/credentials/{{est_credential}}/", None, level(204, MANAGE)),
    ("get", f"{APP}/scep/", None, level(200, VIEW)),
    ("get", f"{APP}/scep/tls-server/", None, level(200, VIEW)),
    ("post", f"{APP}/scep/", {"profile": "tls-server"}, level(201, MANAGE)),
    ("patch", f"{APP}/scep/tls-server/", {"allow_legacy": True}, level(200, MANAGE)),
    ("post", f"{APP}/scep/tls-server/static-challenge/", {}, level(200, MANAGE)),
    ("post", f"{APP}/scep/tls-server/challenges/", {"expected_cn": "d1"}, level(201, ISSUE)),
    ("get", f"{APP}/alert-channels/", None, level(200, MANAGE)),
    ("get", f"{APP}/alert-channels/ops/", None, level(200, MANAGE)),
    ("post", f"{APP}/alert-channels/", {"name": "b", **MAIL}, level(201, MANAGE)),
    ("put", f"{APP}/alert-channels/ops/", MAIL, level(200, MANAGE)),
    ("put", f"{APP}/alert-channels/new-one/", MAIL, level(201, MANAGE)),
    ("patch", f"{APP}/alert-channels/ops/", {"recipients": ["x@example.test"]}, level(200, MANAGE)),
    ("post", f"{APP}/alert-channels/ops/test/", None, level(202, MANAGE)),
    ("get", f"{APP}/alert-rules/", None, level(200, MANAGE)),
    ("get", f"{APP}/alert-rules/expiry/", None, level(200, MANAGE)),
    ("post", f"{APP}/alert-rules/", {"name": "r2", **RULE}, level(201, MANAGE)),
    ("put", f"{APP}/alert-rules/expiry/", RULE, level(200, MANAGE)),
    ("patch", f"{APP}/alert-rules/expiry/", {"is_active": False}, level(200, MANAGE)),
    ("get", f"{APP}/alert-deliveries/", None, level(200, MANAGE)),
    ("get", f"{APP}/renewal-settings/", None, level(200, MANAGE)),
    ("put", f"{APP}/renewal-settings/", {"auto_renew": False}, level(200, MANAGE)),
    ("patch", f"{APP}/renewal-settings/", {"key_mode": "reuse"}, level(200, MANAGE)),
    ("get", f"{APP}/certificates/{{cert}}/renewal-settings/", None, level(200, MANAGE)),
    (
        "put",
        f"{APP}/certificates/{{cert}}/renewal-settings/",
        {"auto_renew": False},
        level(200, MANAGE),
    ),
    (
        "patch",
        f"{APP}/certificates/{{cert}}/renewal-settings/",
        {"renew_days_before": 3},
        level(200, MANAGE),
    ),
    ("get", f"{APP}/acme/eab-credentials/", None, level(200, MANAGE)),
    ("get", f"{APP}/acme/eab-credentials/ci/", None, level(200, MANAGE)),
    ("post", f"{APP}/acme/eab-credentials/", {"name": "k8s"}, level(201, MANAGE)),
    ("put", f"{APP}/acme/eab-credentials/ci/", {}, level(200, MANAGE)),
    ("put", f"{APP}/acme/eab-credentials/fleet/", {"reusable": True}, level(201, MANAGE)),
    ("post", f"{APP}/acme/eab-credentials/ci/revoke/", {}, level(200, MANAGE)),
    ("get", f"{APP}/acme/accounts/", None, level(200, VIEW)),
    ("get", f"{APP}/acme/accounts/{{acme_account}}/", None, level(200, VIEW)),
    ("post", f"{APP}/acme/accounts/{{acme_account}}/deactivate/", None, level(200, MANAGE)),
    ("patch", f"{APP}/", {"description": "Payments"}, level(200, PA)),
    ("get", f"{APP}/profiles/", None, level(200, VIEW)),
    ("get", f"{APP}/profiles/tls-server/", None, level(200, VIEW)),
    ("put", f"{APP}/profiles/tls-server/", None, level(200, PA)),
    ("delete", f"{APP}/profiles/tls-server/", None, level(204, PA)),
    ("get", "/api/v1/cas/", None, level(200, AUTH)),
    ("get", "/api/v1/cas/test-issuing/", None, level(200, AUTH)),
    ("get", "/api/v1/cas/test-issuing/chain/", None, level(200, AUTH)),
    (
        "post",
        "/api/v1/cas/",
        {"name": "New root", "slug": "new-root", "common_name": "New root"},
        pa_only(201),
    ),
    ("patch", "/api/v1/cas/test-issuing/", {"status": "disabled"}, pa_only(200)),
    ("post", "/api/v1/cas/import/", IMPORTED_CA, pa_only(201)),
    # test-issuing is not an external CA waiting for its certificate: refused once permitted.
    ("post", "/api/v1/cas/test-issuing/install/", IMPORT, pa_only(400)),
    ("get", "/api/v1/profiles/", None, level(200, AUTH)),
    ("get", "/api/v1/profiles/tls-server/", None, level(200, AUTH)),
    (
        "post",
        "/api/v1/profiles/",
        {"name": "New", "slug": "new", "issuing_ca": "test-issuing", "preset": "tls_server"},
        pa_only(201),
    ),
    ("patch", "/api/v1/profiles/tls-server/", {"validity_days_default": 60}, pa_only(200)),
    ("get", "/api/v1/tokens/", None, level(200, AUTH)),
    ("post", "/api/v1/tokens/", {"name": "laptop"}, level(201, AUTH)),
    ("get", "/api/v1/events/", None, level(200, AUTH)),
    ("get", "/api/v1/approvals/", None, level(200, AUTH)),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("method", "url", "body", "expected"),
    CASES,
    ids=[f"{m.upper()} {u.replace('/api/v1', '')}" for m, u, _, _ in CASES],
)
def test_permission_matrix(
    api: Any,
    world: Any,
    make_csr: Any,
    persona: str,
    method: str,
    url: str,
    body: Any,
    expected: dict[str, int],
) -> None:
    url = url.format(
        acme_account=_acme_account() if "{acme_account}" in url else "",
        cert=world.certificate.pk,
        req=world.request.pk,
        policy=world.policy.pk,
        est_credential=world.est_credential.pk,
    )
    if "/scep/tls-server/" in url or (method == "get" and url.endswith("/scep/")):
        _enable_scep()
    if body is CSR:
        body = {"profile": "tls-server", "csr": make_csr("m.example.test", ["m.example.test"])}
        body["csr"] = body["csr"].decode()
    response = getattr(api(persona), method)(url, body, format="json")
    assert response.status_code == expected[persona], response.content
    if response.status_code >= 400:
        assert set(response.json()) == {"code", "message", "errors"}


def _acme_account() -> str:
    """An account registered over ACME with a fresh EAB credential."""
    from django.test import Client

    from applications.models import Application
    from certportal.events import Actor
    from issuance.acme import services
    from issuance.acme.tests.conftest import AcmeSession

    application = Application.objects.get(name="payments-api")
    eab, hmac_key = services.create_eab_key(application, name="m", actor=Actor(label="matrix"))
    session = AcmeSession(Client(), application.name)
    assert session.register((eab.key_id, hmac_key)).status_code == 201
    return str(session.kid).rsplit("/", 1)[1]


def _enable_scep() -> None:
    from applications.models import Application
    from certportal.events import Actor
    from issuance.scep import services

    application = Application.objects.get(name="payments-api")
    profile = application.profiles.get(slug="tls-server")
    services.enable(application, profile, actor=Actor(label="matrix"))


@pytest.mark.parametrize("persona", PERSONAS)
def test_personal_token_revocation_is_scoped_to_its_owner(
    api: Any, personas: dict[str, Any], persona: str
) -> None:
    from certportal.api import services as credentials
    from certportal.events import Actor

    mine = credentials.create_token(personas["admin"], name="admin's", actor=Actor(label="t"))[0]
    response = api(persona).delete(f"/api/v1/tokens/{mine.pk}/")
    expected = {"admin": 204, "anonymous": 401}.get(persona, 404)
    assert response.status_code == expected
