"""Cloudflare custom certificates through the official SDK against a local HTTPS fake
with Cloudflare's envelope and page-based pagination."""

from __future__ import annotations

from typing import Any

import pytest

from issuance import services as issuance
from syncs import lifecycle
from syncs.backends import cloudflare as cf_backend
from syncs.backends.base import Payload
from syncs.models import SyncItem
from tests.syncs import fakes
from tests.syncs.conftest import push

pytestmark = pytest.mark.django_db

APP = "/api/v1/applications/payments-api"


def connection(api: Any, fake: Any, token: str = fakes.CF_TOKEN) -> int:
    answer = api.post(
        f"{APP}/connections/",
        {
            "name": "cf",
            "kind": "cloudflare",
            "credentials": {"api_token": token},
            "api_base_url": fake.api,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    return int(answer.json()["id"])


def cloudflare_sync(api: Any, fake: Any, **options: Any) -> int:
    answer = api.post(
        f"{APP}/syncs/",
        {
            "name": "cf",
            "destination": "cloudflare",
            "connection": connection(api, fake),
            "profile": "tls-server",
            "options": {"zone_id": fakes.ZONE, **options},
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    return int(answer.json()["id"])


def test_token_is_verified(admin_api, cloudflare_api):
    ok = admin_api.post(f"{APP}/connections/{connection(admin_api, cloudflare_api)}/test/")
    assert ok.json()["ok"] is True


def test_wrong_token_is_reported(admin_api, cloudflare_api):
    pk = connection(admin_api, cloudflare_api, token="wrong")
    answer = admin_api.post(f"{APP}/connections/{pk}/test/").json()
    assert answer["ok"] is False and "Invalid API Token" in answer["message"]


def test_upload_with_whole_chain_edit_on_renewal_and_delete(
    admin_api, cloudflare_api, issue, actor
):
    first = issue("edge.example.test")
    sync = cloudflare_sync(admin_api, cloudflare_api)
    assert push() == 1
    [(cert_id, record)] = cloudflare_api.certificates.items()
    assert record["hosts"] == ["edge.example.test"]
    assert record["bundle_method"] == "force"
    assert record["chain_length"] == 2  # leaf and the issuing CA (private chain, whole)
    assert record["serial"] == first.serial_number.lower().lstrip("0")

    renewed = issuance.renew(first, actor=actor).certificate
    assert push() == 1
    assert list(cloudflare_api.certificates) == [cert_id]
    assert cloudflare_api.certificates[cert_id]["serial"] == renewed.serial_number.lower().lstrip(
        "0"
    )
    assert cloudflare_api.writes[cert_id] == 2
    assert SyncItem.objects.get(sync_id=sync, certificate=renewed).external_id == cert_id

    issuance.revoke(renewed, reason="superseded", actor=actor)
    assert push() == 1
    assert cloudflare_api.certificates == {}


def test_create_looks_up_first_across_pages(admin_api, cloudflare_api, issue, application):
    """A lost answer or a killed worker after the upload: the retry finds the certificate
    (even on a later page) and takes it over instead of uploading a second one."""
    for n in range(55):  # more than one page of 50
        cloudflare_api.certificates[f"other{n}"] = {"id": f"other{n}", "hosts": [f"x{n}.test"]}
    certificate = issue("again.example.test")
    sync = cloudflare_sync(admin_api, cloudflare_api)
    item = SyncItem.objects.get(sync_id=sync)
    item.sync.refresh_from_db()
    client_payload = _payload(item)
    backend = cf_backend.CUSTOM_CERTIFICATES
    from syncs.services import spec_of

    first = backend.upsert(
        spec_of(item.sync.connection), item.sync.options, client_payload, None, look_up=True
    )
    SyncItem.objects.filter(pk=item.pk).update(attempts=1)  # that attempt's answer was lost
    assert push() == 1  # the retry, never told about the first upload
    item.refresh_from_db()
    assert item.external_id == first.external_id
    assert len(cloudflare_api.certificates) == 56
    assert certificate.pk == item.certificate_id


def _payload(item: SyncItem) -> Payload:
    from syncs import selection

    return selection.payload(item.sync, item.certificate, "payments-api")


def test_an_error_from_cloudflare_is_shown_with_its_message(admin_api, cloudflare_api, issue):
    issue("bad.example.test")
    sync = cloudflare_sync(admin_api, cloudflare_api)
    cloudflare_api.fail_next(
        "POST", "custom_certificates", 400, "1212", "The certificate chain is invalid"
    )
    assert push() == 0
    [item] = admin_api.get(f"{APP}/syncs/{sync}/items/").json()["results"]
    assert item["status"] == "failed"
    assert "1212 The certificate chain is invalid" in item["last_error"]
    assert lifecycle.max_attempts() > 1  # a 400 is not retried: it waits for a person
    assert SyncItem.objects.get(sync_id=sync).next_attempt_at is None


def test_bad_zone_id_is_refused(admin_api, cloudflare_api):
    answer = admin_api.post(
        f"{APP}/syncs/",
        {
            "name": "cf",
            "destination": "cloudflare",
            "connection": connection(admin_api, cloudflare_api),
            "profile": "tls-server",
            "options": {"zone_id": "not-a-zone"},
        },
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "options.zone_id"
