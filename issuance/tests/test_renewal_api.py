"""Renewal settings over the API: the Application's defaults and a certificate's own,
the page's refusals word for word, and every change audited."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from applications.models import AuditEvent
from certportal.event_types import EventType
from certportal.events import Actor
from issuance import services as issuance
from issuance.models import Certificate, RenewalSettings

pytestmark = pytest.mark.django_db

APP = "/api/v1/applications/payments-api"


@pytest.fixture
def admin(personas: dict[str, Any]) -> APIClient:
    client = APIClient()
    client.force_login(personas["admin"])
    return client


@pytest.fixture
def certificate(application: Any, tls_profile: Any, personas: dict[str, Any]) -> Certificate:
    issued = issuance.submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=Actor(user=personas["operator"]),
        key_spec=issuance.KeySpec("EC_P256", "svc.example.test", ["svc.example.test"]),
    )
    assert issued.certificate is not None
    return issued.certificate


def test_application_defaults_read_before_any_are_saved(admin: APIClient) -> None:
    body = admin.get(f"{APP}/renewal-settings/").json()
    assert body == {
        "auto_renew": True,
        "renew_days_before": None,
        "key_mode": "new",
        "updated_at": None,
    }


def test_put_application_defaults_twice_keeps_one_row(admin: APIClient) -> None:
    wanted = {"auto_renew": False, "renew_days_before": 20, "key_mode": "reuse"}
    for _ in range(2):
        response = admin.put(f"{APP}/renewal-settings/", wanted, format="json")
        assert response.status_code == 200, response.content
    row = RenewalSettings.objects.get()
    assert (row.auto_renew, row.renew_days_before, row.key_mode) == (False, 20, "reuse")
    events = AuditEvent.objects.filter(action=EventType.APPLICATION_RENEWAL_CONFIGURED)
    assert events.count() == 2


def test_patch_changes_only_what_it_names(admin: APIClient) -> None:
    admin.put(f"{APP}/renewal-settings/", {"key_mode": "reuse"}, format="json")
    response = admin.patch(f"{APP}/renewal-settings/", {"auto_renew": False}, format="json")
    assert response.json()["key_mode"] == "reuse"
    assert response.json()["auto_renew"] is False


def test_a_window_as_long_as_the_validity_is_refused_as_on_the_page(admin: APIClient) -> None:
    response = admin.put(f"{APP}/renewal-settings/", {"renew_days_before": 3000}, format="json")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "renew_days_before"
    assert "is not shorter than the shortest validity" in error["message"]
    assert not RenewalSettings.objects.exists()


def test_certificate_override_is_saved_and_audited(
    admin: APIClient, certificate: Certificate
) -> None:
    url = f"{APP}/certificates/{certificate.pk}/renewal-settings/"
    assert admin.get(url).json()["auto_renew"] is None
    response = admin.put(url, {"auto_renew": False, "renew_days_before": 5}, format="json")
    assert response.status_code == 200, response.content
    certificate.refresh_from_db()
    assert (certificate.auto_renew, certificate.renew_days_before) == (False, 5)
    assert AuditEvent.objects.filter(action=EventType.CERTIFICATE_RENEWAL_CONFIGURED).exists()
    refused = admin.patch(url, {"renew_days_before": 900}, format="json")
    assert refused.status_code == 400
    assert "this certificate's validity" in refused.json()["errors"][0]["message"]


def test_certificate_of_another_application_is_not_found(
    admin: APIClient, certificate: Certificate
) -> None:
    url = f"/api/v1/applications/other-app/certificates/{certificate.pk}/renewal-settings/"
    assert admin.get(url).status_code == 404


@pytest.mark.parametrize("persona", ["operator", "auditor"])
def test_renewal_settings_are_for_admins_like_the_page(
    personas: dict[str, Any], persona: str
) -> None:
    client = APIClient()
    client.force_login(personas[persona])
    assert client.get(f"{APP}/renewal-settings/").status_code == 403
    put = client.put(f"{APP}/renewal-settings/", {"auto_renew": False}, format="json")
    assert put.status_code == 403
