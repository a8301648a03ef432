"""The EST pages of the Enrollment tab: Admins enable EST with a trust bundle upload,
create a credential (shown once) and revoke it; bad uploads write nothing."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from applications.models import AuditEvent
from issuance.est.models import EstCredential, EstEnrollment
from issuance.est.tests.test_reenroll import _device_ca

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(personas: dict[str, Any]) -> Client:
    client = Client()
    client.force_login(personas["admin"])
    return client


def test_admin_enables_est_with_a_trust_bundle(admin_client: Client) -> None:
    ca, _ = _device_ca()
    upload = SimpleUploadedFile("maker.pem", ca.public_bytes(Encoding.PEM))
    response = admin_client.post(
        "/applications/payments-api/est/new",
        {
            "profile": "tls-server",
            "label": "",
            "basic_auth": "on",
            "client_cert_auth": "on",
            "trust_bundle": upload,
        },
    )
    assert response.status_code == 302
    enrollment = EstEnrollment.objects.get()
    assert enrollment.label == "payments-api.tls-server"
    assert "BEGIN CERTIFICATE" in enrollment.trust_bundle_pem
    assert AuditEvent.objects.filter(action="est.enrollment_saved").count() == 1


def test_a_leaf_or_garbage_bundle_is_refused_and_nothing_written(admin_client: Client) -> None:
    upload = SimpleUploadedFile(
        "junk.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    response = admin_client.post(
        "/applications/payments-api/est/new",
        {"profile": "tls-server", "basic_auth": "on", "trust_bundle": upload},
    )
    assert response.status_code == 400
    assert EstEnrollment.objects.count() == 0
    assert AuditEvent.objects.filter(action__startswith="est.").count() == 0


def test_credential_is_shown_once_and_revocable(
    admin_client: Client, enrollment: EstEnrollment
) -> None:
    url = f"/applications/payments-api/est/{enrollment.pk}/credentials/new"
    response = admin_client.post(url, {"username": "sensor-7"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    credential = EstCredential.objects.get()
    password = page.split('id="est-password">')[1].split("<")[0]
    assert len(password) >= 30 and password not in credential.secret_hash
    assert (
        password not in admin_client.get("/applications/payments-api/enrollment/").content.decode()
    )
    revoke = f"/applications/payments-api/est/{enrollment.pk}/credentials/{credential.pk}/revoke"
    assert admin_client.post(revoke).status_code == 302
    credential.refresh_from_db()
    assert credential.revoked_at is not None


def test_auditor_sees_but_cannot_change(
    personas: dict[str, Any], enrollment: EstEnrollment
) -> None:
    client = Client()
    client.force_login(personas["auditor"])
    assert client.post(f"/applications/payments-api/est/{enrollment.pk}/delete").status_code == 403
    assert EstEnrollment.objects.count() == 1
