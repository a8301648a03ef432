"""ACME over the API: an EAB credential made through the API binds a real ACME account
(its HMAC key shown once), PUT by name does not make a second one, revoking deactivates
the accounts it bound, and accounts are listed to every member."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from applications.models import AuditEvent
from issuance.acme.models import Account, ExternalAccountKey
from issuance.acme.tests.conftest import AcmeSession

pytestmark = pytest.mark.django_db

APP = "/api/v1/applications/payments-api"
EAB = f"{APP}/acme/eab-credentials"


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def admin(personas: dict[str, Any]) -> APIClient:
    return client_for(personas["admin"])


def test_eab_made_by_the_api_binds_an_account_and_its_key_is_shown_once(
    admin: APIClient, acme: AcmeSession
) -> None:
    created = admin.post(f"{EAB}/", {"name": "k8s"}, format="json")
    assert created.status_code == 201, created.content
    assert created["Cache-Control"] == "no-store"
    body = created.json()
    assert acme.register((body["key_id"], body["hmac_key"])).status_code == 201
    listed = admin.get(f"{EAB}/").json()["results"]
    assert [(row["name"], row["hmac_key"], row["accounts"]) for row in listed] == [("k8s", None, 1)]
    assert body["hmac_key"] not in ExternalAccountKey.objects.get().hmac_key
    assert AuditEvent.objects.filter(action="acme.eab_created").count() == 1


def test_put_by_name_makes_one_credential_however_often_it_is_sent(admin: APIClient) -> None:
    first = admin.put(f"{EAB}/fleet/", {"reusable": True}, format="json")
    again = admin.put(f"{EAB}/fleet/", {"reusable": True}, format="json")
    assert (first.status_code, again.status_code) == (201, 200), first.content
    assert first.json()["hmac_key"] and again.json()["hmac_key"] is None
    assert again.json()["key_id"] == first.json()["key_id"]
    assert ExternalAccountKey.objects.count() == 1


def test_a_past_expiry_is_refused_as_on_the_page(admin: APIClient) -> None:
    response = admin.post(
        f"{EAB}/", {"name": "old", "expires_at": "2001-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "field": "expires_at",
        "code": "invalid",
        "message": "Choose a time in the future.",
    }


def test_revoking_deactivates_the_accounts_it_bound(admin: APIClient, acme: AcmeSession) -> None:
    body = admin.put(f"{EAB}/ci/", {}, format="json").json()
    acme.register((body["key_id"], body["hmac_key"]))
    account = Account.objects.get()
    response = admin.post(f"{EAB}/ci/revoke/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["deactivated_accounts"] == [account.pk]
    account.refresh_from_db()
    assert account.status == "deactivated"
    # The name is free again: PUT makes a new credential.
    assert admin.put(f"{EAB}/ci/", {}, format="json").status_code == 201
    assert admin.post(f"{EAB}/nothing/revoke/", {}, format="json").status_code == 404


def test_revoking_can_keep_the_accounts(admin: APIClient, acme: AcmeSession) -> None:
    body = admin.put(f"{EAB}/ci/", {}, format="json").json()
    acme.register((body["key_id"], body["hmac_key"]))
    admin.post(f"{EAB}/ci/revoke/", {"deactivate_accounts": False}, format="json")
    assert Account.objects.get().status == "valid"
    assert ExternalAccountKey.objects.get().revoked_at is not None


def test_members_read_accounts_admins_deactivate(
    admin: APIClient, acme: AcmeSession, personas: dict[str, Any]
) -> None:
    body = admin.put(f"{EAB}/ci/", {}, format="json").json()
    acme.register((body["key_id"], body["hmac_key"]))
    account = Account.objects.get()
    auditor = client_for(personas["auditor"])
    [row] = auditor.get(f"{APP}/acme/accounts/").json()["results"]
    assert (row["id"], row["eab_credential"], row["contact"]) == (
        account.pk,
        "ci",
        ["mailto:ops@example.test"],
    )
    assert auditor.get(f"{EAB}/").status_code == 403
    url = f"{APP}/acme/accounts/{account.pk}/deactivate/"
    assert auditor.post(url).status_code == 403
    response = admin.post(url)
    assert response.status_code == 200
    assert response.json()["status"] == "deactivated"
    assert AuditEvent.objects.filter(action="acme.account_deactivated").count() == 1


def test_account_list_is_a_fixed_number_of_queries(
    admin: APIClient, application: Any, client: Any
) -> None:
    key = admin.put(f"{EAB}/fleet/", {"reusable": True}, format="json").json()
    AcmeSession(client, application.name).register((key["key_id"], key["hmac_key"]))
    with CaptureQueriesContext(connection) as few:
        admin.get(f"{APP}/acme/accounts/")
    for _ in range(3):
        AcmeSession(client, application.name).register((key["key_id"], key["hmac_key"]))
    with CaptureQueriesContext(connection) as many:
        response = admin.get(f"{APP}/acme/accounts/")
    assert response.json()["count"] == 4
    assert len(many) == len(few)
