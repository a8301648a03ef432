"""bootstrap_demo's EST credential works (and replaces the previous one); the API shows
a credential's password once and keeps only its hash."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from issuance.est.models import EstCredential, EstEnrollment
from issuance.est.tests.conftest import new_csr

pytestmark = pytest.mark.django_db


def run_demo() -> dict[str, Any]:
    out = io.StringIO()
    call_command("bootstrap_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_bootstrap_demo_est_credentials_enroll(post_csr: Any) -> None:
    first = run_demo()["est"]
    second = run_demo()["est"]
    assert second["url"].endswith("/.well-known/est/payments-api.tls-server")
    label = second["url"].rsplit("/", 1)[1]
    body = base64.b64encode(new_csr("demo.example.test", ("demo.example.test",))[0])
    auth = (second["username"], second["password"])
    assert post_csr(label, "simpleenroll", body, auth=auth).status_code == 200
    old = (first["username"], first["password"])
    assert post_csr(label, "simpleenroll", body, auth=old).status_code == 401
    assert EstEnrollment.objects.count() == 1


def test_api_credential_password_is_shown_once(
    enrollment: EstEnrollment, personas: dict[str, Any], post_csr: Any
) -> None:
    client = APIClient()
    client.force_login(personas["admin"])
    url = f"/api/v1/applications/payments-api/est-enrollments/{enrollment.label}/credentials/"
    created = client.post(url, {"username": "sensor-1"}, format="json")
    assert created.status_code == 201
    password = created.json()["password"]
    assert password
    listed = client.get(url).json()
    assert [row["password"] for row in listed] == [None]
    assert password not in EstCredential.objects.get().secret_hash
    body = base64.b64encode(new_csr()[0])
    assert (
        post_csr(enrollment.label, "simpleenroll", body, auth=("sensor-1", password)).status_code
        == 200
    )
    revoke = client.delete(f"{url}{EstCredential.objects.get().pk}/")
    assert revoke.status_code == 204
    assert (
        post_csr(enrollment.label, "simpleenroll", body, auth=("sensor-1", password)).status_code
        == 401
    )


def test_api_refuses_a_bad_trust_bundle_and_a_taken_label(
    application: Any, tls_profile: Any, make_profile: Any, personas: dict[str, Any]
) -> None:
    client = APIClient()
    client.force_login(personas["admin"])
    url = "/api/v1/applications/payments-api/est-enrollments/"
    bad = client.post(url, {"profile": "tls-server", "trust_bundle_pem": "junk"}, format="json")
    assert bad.status_code == 400
    assert EstEnrollment.objects.count() == 0
    made = client.post(url, {"profile": "tls-server", "label": "devices"}, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["url"].endswith("/.well-known/est/devices/")
    other = make_profile("mtls", tls_profile.issuing_ca)
    application.profiles.add(other)
    taken = client.post(url, {"profile": "mtls", "label": "devices"}, format="json")
    assert taken.status_code == 400
    assert EstEnrollment.objects.count() == 1


def test_enrollment_section_lists_enrollments_to_every_member(
    enrollment: EstEnrollment, basic: Any, personas: dict[str, Any]
) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from issuance.est import services
    from issuance.est.tests.conftest import ACTOR

    url = "/applications/payments-api/enrollment/"
    client = Client()
    client.force_login(personas["auditor"])
    with CaptureQueriesContext(connection) as one:
        page = client.get(url).content.decode()
    assert enrollment.label in page and "device" in page
    assert "Enable EST" not in page  # Admins only
    for n in range(4):
        services.create_credential(enrollment, username=f"more-{n}", actor=ACTOR)
    with CaptureQueriesContext(connection) as five:
        assert "more-3" in client.get(url).content.decode()
    assert len(five) == len(one)  # no query per credential
    client.force_login(personas["admin"])
    assert "Enable EST" in client.get(url).content.decode()
