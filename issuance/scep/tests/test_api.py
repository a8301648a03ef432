"""The SCEP REST API: Admins configure, Admins and Operators (and an Operator service
account's token, as an MDM uses it) mint one-time challenges that then enroll."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from applications import services as applications
from applications.choices import Role
from applications.models import Application
from certportal.api import services as credentials
from issuance.scep.models import ScepChallenge, ScepEnrollment
from issuance.scep.tests.conftest import ACTOR
from issuance.scep.tests.support import Device, ScepClient
from pki.scep import PKIStatus

pytestmark = pytest.mark.django_db

URL = "/api/v1/applications/payments-api/scep/"


def _api(user: Any) -> APIClient:
    token = credentials.create_token(user, name="t", actor=ACTOR)[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def admin_api(personas: dict[str, Any]) -> APIClient:
    return _api(personas["admin"])


def test_admin_enables_scep_and_sets_the_static_challenge(
    admin_api: APIClient, client: Any
) -> None:
    created = admin_api.post(URL, {"profile": "tls-server", "allow_legacy": True}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["url"].endswith("/scep/payments-api/tls-server/pkiclient.exe")
    assert "BEGIN CERTIFICATE" in created.json()["ra_certificate"]
    assert admin_api.post(URL, {"profile": "tls-server"}, format="json").status_code == 409
    short = admin_api.post(
        URL + "tls-server/static-challenge/", {"challenge": "short"}, format="json"
    )
    assert short.status_code == 400
    rotated = admin_api.post(URL + "tls-server/static-challenge/", {}, format="json")
    assert rotated.status_code == 200
    assert rotated["Cache-Control"] == "no-store"
    secret = rotated.json()["challenge"]
    listed = admin_api.get(URL).json()
    assert secret not in str(listed)
    scep = ScepClient(client, "/scep/payments-api/tls-server/pkiclient.exe")
    assert scep.enroll(Device("api.example.test"), secret).status == PKIStatus.SUCCESS
    patched = admin_api.patch(URL + "tls-server/", {"allow_renewal": False}, format="json")
    assert patched.status_code == 200 and patched.json()["allow_renewal"] is False
    assert ScepEnrollment.objects.get().allow_renewal is False


def test_service_account_token_mints_a_one_time_challenge(
    admin_api: APIClient, application: Application, client: Any
) -> None:
    admin_api.post(URL, {"profile": "tls-server"}, format="json")
    account = applications.create_service_account(
        application, name="mdm", role=Role.OPERATOR, actor=ACTOR
    )
    mdm = _api(account.user)
    minted = mdm.post(
        URL + "tls-server/challenges/",
        {"expected_cn": "ipad-7.example.test", "ttl_minutes": 15},
        format="json",
    )
    assert minted.status_code == 201, minted.content
    body = minted.json()
    assert body["expected_cn"] == "ipad-7.example.test" and body["expires_at"]
    assert ScepChallenge.objects.get().digest != body["challenge"]  # only the hash is kept
    scep = ScepClient(client, "/scep/payments-api/tls-server/pkiclient.exe")
    assert scep.enroll(Device("ipad-7.example.test"), body["challenge"]).status == PKIStatus.SUCCESS


def test_mint_limits(admin_api: APIClient) -> None:
    admin_api.post(URL, {"profile": "tls-server", "max_outstanding_challenges": 1}, format="json")
    too_long = admin_api.post(URL + "tls-server/challenges/", {"ttl_minutes": 1441}, format="json")
    assert too_long.status_code == 400
    assert admin_api.post(URL + "tls-server/challenges/", {}, format="json").status_code == 201
    capped = admin_api.post(URL + "tls-server/challenges/", {}, format="json")
    assert capped.status_code == 409
    assert ScepChallenge.objects.count() == 1


def test_auditor_cannot_mint_and_outsider_sees_nothing(
    admin_api: APIClient, personas: dict[str, Any]
) -> None:
    admin_api.post(URL, {"profile": "tls-server"}, format="json")
    auditor = _api(personas["auditor"])
    assert auditor.get(URL).status_code == 200
    assert auditor.post(URL + "tls-server/challenges/", {}, format="json").status_code == 403
    outsider = _api(personas["outsider"])
    assert outsider.get(URL).status_code == 404
    assert outsider.post(URL + "tls-server/challenges/", {}, format="json").status_code == 404
    assert ScepChallenge.objects.count() == 0


def test_enabling_an_unattached_profile_is_refused(admin_api: APIClient) -> None:
    response = admin_api.post(URL, {"profile": "nope"}, format="json")
    assert response.status_code == 400
    assert ScepEnrollment.objects.count() == 0
