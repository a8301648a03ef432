"""An Application's attached profiles over the API: members read them, product admins
attach (PUT, idempotent) and detach; the edit page's description too; all audited."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from applications.models import Application, AuditEvent

pytestmark = pytest.mark.django_db

APP = "/api/v1/applications/payments-api"


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def code_signing(make_profile: Any, issuing_ca: Any) -> Any:
    return make_profile("code-signing", issuing_ca)


def test_members_read_the_attached_profiles(personas: dict[str, Any]) -> None:
    response = client_for(personas["auditor"]).get(f"{APP}/profiles/")
    assert response.status_code == 200
    assert [row["slug"] for row in response.json()] == ["tls-server"]


def test_attach_twice_attaches_once_and_audits_the_change(
    personas: dict[str, Any], code_signing: Any
) -> None:
    client = client_for(personas["product_admin"])
    for _ in range(2):
        assert client.put(f"{APP}/profiles/code-signing/").status_code == 200
    application = Application.objects.get(name="payments-api")
    assert sorted(application.profiles.values_list("slug", flat=True)) == [
        "code-signing",
        "tls-server",
    ]
    events = AuditEvent.objects.filter(action="application.updated", application=application)
    # The second PUT changed nothing, so it wrote nothing.
    assert [e.data["attached"] for e in events] == [["code-signing"]]


def test_detach_removes_only_that_profile(personas: dict[str, Any], code_signing: Any) -> None:
    client = client_for(personas["product_admin"])
    client.put(f"{APP}/profiles/code-signing/")
    assert client.delete(f"{APP}/profiles/tls-server/").status_code == 204
    assert [row["slug"] for row in client.get(f"{APP}/profiles/").json()] == ["code-signing"]
    assert client.delete(f"{APP}/profiles/tls-server/").status_code == 404


def test_unknown_and_disabled_profiles_are_refused(
    personas: dict[str, Any], code_signing: Any
) -> None:
    client = client_for(personas["product_admin"])
    assert client.put(f"{APP}/profiles/nope/").json()["errors"][0]["message"] == (
        "Unknown profile slug."
    )
    code_signing.is_active = False
    code_signing.save()
    assert client.put(f"{APP}/profiles/code-signing/").status_code == 400


def test_application_admins_may_not_change_profiles(
    personas: dict[str, Any], code_signing: Any
) -> None:
    client = client_for(personas["admin"])
    assert client.put(f"{APP}/profiles/code-signing/").status_code == 403
    assert client.patch(f"{APP}/", {"description": "x"}, format="json").status_code == 403
    assert client_for(personas["outsider"]).get(f"{APP}/profiles/").status_code == 404


def test_product_admin_edits_description_and_profiles_like_the_edit_page(
    personas: dict[str, Any], code_signing: Any
) -> None:
    client = client_for(personas["product_admin"])
    response = client.patch(
        f"{APP}/", {"description": "Payments", "profiles": ["code-signing"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["profiles"] == ["code-signing"]
    assert response.json()["description"] == "Payments"
    kept = client.patch(f"{APP}/", {"description": "Pay"}, format="json").json()
    assert kept["profiles"] == ["code-signing"]
