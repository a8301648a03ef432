"""Who may do what with connections and syncs (Admins write; Operators and Auditors
read; outsiders see nothing), and that no credential shows anywhere: not on a page, not
in the API, not in the audit log."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from syncs import services
from syncs.models import Connection, Sync, SyncItem

pytestmark = pytest.mark.django_db

PERSONAS = ["product_admin", "admin", "operator", "auditor", "outsider", "anonymous"]
SECRET = "wJalrXUtnFEMI-K7MDENG-very-secret"
KEY_ID = "AKIAEXAMPLEKEYID0001"
APP = "/api/v1/applications/payments-api"


def level(ok: int, allowed: set[str]) -> dict[str, int]:
    out = {}
    for persona in PERSONAS:
        if persona == "anonymous":
            out[persona] = 401
        elif persona in allowed:
            out[persona] = ok
        elif persona == "outsider":
            out[persona] = 404
        else:
            out[persona] = 403
    return out


VIEW = {"product_admin", "admin", "operator", "auditor"}
MANAGE = {"product_admin", "admin"}
CONNECTION_BODY = {
    "name": "new-aws",
    "kind": "aws",
    "credentials": {"access_key_id": "AKIDNEW", "secret_access_key": "new-secret"},
}
SYNC_BODY = {
    "name": "new-sync",
    "destination": "aws-secrets-manager",
    "connection": "{connection}",
    "profile": "tls-server",
    "options": {"region": "eu-west-1"},
}

CASES: list[tuple[str, str, Any, dict[str, int]]] = [
    ("get", f"{APP}/connections/", None, level(200, VIEW)),
    ("get", f"{APP}/connections/{{connection}}/", None, level(200, VIEW)),
    ("post", f"{APP}/connections/", CONNECTION_BODY, level(201, MANAGE)),
    (
        "patch",
        f"{APP}/connections/{{connection}}/",
        {"name": "renamed", "kind": "aws"},
        level(200, MANAGE),
    ),
    ("post", f"{APP}/connections/{{connection}}/test/", None, level(200, MANAGE)),
    ("delete", f"{APP}/connections/{{connection}}/", None, level(204, MANAGE)),
    ("get", f"{APP}/syncs/", None, level(200, VIEW)),
    ("get", f"{APP}/syncs/{{sync}}/", None, level(200, VIEW)),
    ("get", f"{APP}/syncs/{{sync}}/items/", None, level(200, VIEW)),
    ("get", f"{APP}/syncs/{{sync}}/runs/", None, level(200, VIEW)),
    ("post", f"{APP}/syncs/", SYNC_BODY, level(201, MANAGE)),
    ("post", f"{APP}/syncs/preview/", SYNC_BODY, level(200, MANAGE)),
    ("patch", f"{APP}/syncs/{{sync}}/", SYNC_BODY, level(200, MANAGE)),
    ("post", f"{APP}/syncs/{{sync}}/run/", None, level(202, MANAGE)),
    ("post", f"{APP}/syncs/{{sync}}/drift/", {"repair": False}, level(202, MANAGE)),
    ("post", f"{APP}/syncs/{{sync}}/items/{{cert}}/repush/", None, level(202, MANAGE)),
    ("post", f"{APP}/syncs/{{sync}}/items/{{cert}}/remove/", None, level(202, MANAGE)),
    ("delete", f"{APP}/syncs/{{sync}}/", None, level(204, MANAGE)),
]


@pytest.fixture
def sync_world(
    personas: dict[str, Any], application: Any, issue: Any, actor: Any, settings: Any
) -> dict[str, Any]:
    """A certificate, an AWS connection to an address no test reaches (loopback is refused
    once the setting is off again) and an ACM sync holding one item."""
    certificate = issue("www.example.test")
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = True
    connection = services.save_connection(
        application,
        name="aws",
        kind="aws",
        credentials={"access_key_id": KEY_ID, "secret_access_key": SECRET},
        config={"endpoint_url": "http://127.0.0.1:9"},
        actor=actor,
    )
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    sync = services.save_sync(
        application,
        services.SyncSpec(
            name="acm",
            destination="aws-acm",
            connection=connection,
            profile=application.profiles.get(slug="tls-server"),
            options={"region": "us-east-1"},
        ),
        actor=actor,
    )
    return {
        "personas": personas,
        "connection": connection,
        "sync": sync,
        "certificate": certificate,
    }


def _api(user: Any) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _format(value: Any, world: dict[str, Any]) -> Any:
    keys = {
        "connection": world["connection"].pk,
        "sync": world["sync"].pk,
        "cert": world["certificate"].pk,
    }
    if isinstance(value, str):
        if value == "{connection}":
            return keys["connection"]
        return value.format(**keys)
    if isinstance(value, dict):
        return {k: _format(v, world) for k, v in value.items()}
    return value


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("method", "url", "body", "expected"),
    CASES,
    ids=[f"{m.upper()} {u.replace(APP, '')}" for m, u, _, _ in CASES],
)
def test_api_permission_matrix(sync_world, persona, method, url, body, expected):
    before = (
        Connection.objects.count(),
        Sync.objects.count(),
        list(SyncItem.objects.values_list("status", "want")),
    )
    response = getattr(_api(sync_world["personas"][persona]), method)(
        _format(url, sync_world), _format(body, sync_world), format="json"
    )
    assert response.status_code == expected[persona], response.content
    if response.status_code in (401, 403, 404):
        after = (
            Connection.objects.count(),
            Sync.objects.count(),
            list(SyncItem.objects.values_list("status", "want")),
        )
        assert after == before


def test_operator_cannot_create_or_change_syncs_or_connections(sync_world):
    api = _api(sync_world["personas"]["operator"])
    assert api.post(f"{APP}/connections/", CONNECTION_BODY, format="json").status_code == 403
    body = _format(SYNC_BODY, sync_world)
    assert api.post(f"{APP}/syncs/", body, format="json").status_code == 403
    assert (
        api.patch(f"{APP}/syncs/{sync_world['sync'].pk}/", body, format="json").status_code == 403
    )
    assert Sync.objects.count() == 1 and Connection.objects.count() == 1


def test_auditor_sees_no_credential_anywhere(sync_world, application):
    auditor = sync_world["personas"]["auditor"]
    api = _api(auditor)
    seen = [
        api.get(f"{APP}/connections/").content,
        api.get(f"{APP}/connections/{sync_world['connection'].pk}/").content,
        api.get("/api/v1/events/?page_size=500").content,
    ]
    browser = Client()
    browser.force_login(auditor)
    seen += [
        browser.get(reverse("syncs:list", kwargs={"slug": application.name})).content,
        browser.get(reverse("applications:audit", kwargs={"slug": application.name})).content,
    ]
    for body in seen:
        assert SECRET.encode() not in body and KEY_ID.encode() not in body
    # The audit log records the connection without its credentials.
    events = api.get("/api/v1/events/?action=sync.connection_saved").json()["results"]
    assert events and events[0]["data"]["credentials_set"] is True
    # Stored sealed, not in the clear.
    raw = Connection.objects.values_list("credentials", flat=True).get()
    assert SECRET not in raw and raw.startswith("v2:")


def test_auditor_reads_the_syncs_tab_without_manage_controls(sync_world, application):
    browser = Client()
    browser.force_login(sync_world["personas"]["auditor"])
    page = browser.get(
        reverse("syncs:detail", kwargs={"slug": application.name, "pk": sync_world["sync"].pk})
    )
    assert page.status_code == 200
    assert b"Sync now" not in page.content and b"www.example.test" in page.content


def test_test_connection_refuses_a_private_endpoint_unless_allowed(sync_world):
    answer = _api(sync_world["personas"]["admin"]).post(
        f"{APP}/connections/{sync_world['connection'].pk}/test/"
    )
    assert answer.json()["ok"] is False
    assert "Endpoint refused" in answer.json()["message"] and "loopback" in answer.json()["message"]
