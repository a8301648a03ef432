"""Azure Key Vault through the real SDKs (azure-identity, azure-keyvault-certificates)
against a local HTTPS fake that answers the 401 challenge and issues tokens."""

from __future__ import annotations

from typing import Any

import pytest

from issuance import services as issuance
from syncs.models import SyncItem
from tests.syncs import fakes
from tests.syncs.conftest import push

pytestmark = pytest.mark.django_db

APP = "/api/v1/applications/payments-api"


def connection(api: Any, fake: Any, secret: str = fakes.CLIENT_SECRET) -> int:
    answer = api.post(
        f"{APP}/connections/",
        {
            "name": "azure",
            "kind": "azure",
            "credentials": {
                "tenant_id": fakes.TENANT,
                "client_id": fakes.CLIENT_ID,
                "client_secret": secret,
            },
            "authority_host": fake.base,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    return int(answer.json()["id"])


def key_vault_sync(api: Any, fake: Any, **options: Any) -> int:
    answer = api.post(
        f"{APP}/syncs/",
        {
            "name": "kv",
            "destination": "azure-key-vault",
            "connection": connection(api, fake),
            "profile": "tls-server",
            "options": {"vault_url": fake.base, **options},
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    return int(answer.json()["id"])


def test_connection_test_gets_a_token(admin_api, key_vault):
    pk = connection(admin_api, key_vault)
    answer = admin_api.post(f"{APP}/connections/{pk}/test/").json()
    assert answer["ok"] is True, answer


def test_wrong_client_secret_is_reported(admin_api, key_vault):
    pk = connection(admin_api, key_vault, secret="wrong")
    answer = admin_api.post(f"{APP}/connections/{pk}/test/").json()
    assert answer["ok"] is False
    assert "Invalid client secret" in answer["message"]


def test_import_renewal_new_version_and_soft_delete(admin_api, key_vault, issue, actor):
    first = issue("vault.example.test")
    sync = key_vault_sync(admin_api, key_vault)
    assert push() == 1
    name = "payments-api-vault-example-test"
    assert [v["info"]["serial"] for v in key_vault.certificates[name]] == [
        first.serial_number.lower().lstrip("0")
    ]
    assert key_vault.certificates[name][0]["tags"]["certportal-application"] == "payments-api"

    renewed = issuance.renew(first, actor=actor).certificate
    assert push() == 1
    versions = key_vault.certificates[name]
    assert len(versions) == 2
    assert versions[-1]["info"]["serial"] == renewed.serial_number.lower().lstrip("0")
    item = SyncItem.objects.get(sync_id=sync, certificate=renewed)
    assert item.external_id == name and item.external_version == versions[-1]["version"]

    issuance.revoke(renewed, reason="superseded", actor=actor)
    assert push() == 1
    assert name not in key_vault.certificates and name in key_vault.deleted
    removed = admin_api.get("/api/v1/events/?action=sync.item_removed").json()["results"]
    assert "soft delete" in removed[0]["data"]["message"]


def test_pem_format_imports_the_chain(admin_api, key_vault, issue):
    issue("pem.example.test")
    key_vault_sync(admin_api, key_vault, format="pem")
    assert push() == 1
    [entry] = key_vault.certificates["payments-api-pem-example-test"]
    assert entry["content_type"] == "application/x-pem-file"


def test_an_error_from_key_vault_is_shown_with_its_message(admin_api, key_vault, issue):
    issue("bad.example.test")
    sync = key_vault_sync(admin_api, key_vault)
    key_vault.fail_next("POST", "/import", 400, "BadParameter", "Property policy has invalid value")
    assert push() == 0
    [item] = admin_api.get(f"{APP}/syncs/{sync}/items/").json()["results"]
    assert item["status"] == "failed"
    assert "BadParameter: Property policy has invalid value" in item["last_error"]


def test_invalid_key_vault_name_template_is_refused(admin_api, key_vault):
    answer = admin_api.post(
        f"{APP}/syncs/",
        {
            "name": "kv",
            "destination": "azure-key-vault",
            "connection": connection(admin_api, key_vault),
            "profile": "tls-server",
            "name_template": "{application}_{serial}",
            "options": {"vault_url": key_vault.base},
        },
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "name_template"


def test_a_private_vault_url_is_refused_unless_allowed(admin_api, key_vault, settings):
    pk = connection(admin_api, key_vault)
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    answer = admin_api.post(
        f"{APP}/syncs/",
        {
            "name": "kv",
            "destination": "azure-key-vault",
            "connection": pk,
            "profile": "tls-server",
            "options": {"vault_url": key_vault.base},
        },
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "options.vault_url"
    assert "loopback" in answer.json()["errors"][0]["message"]
