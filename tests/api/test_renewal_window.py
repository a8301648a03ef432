"""The renewal-window endpoint gives API clients the sweep's and ARI's window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from certportal.events import Actor
from issuance import services as issuance

pytestmark = pytest.mark.django_db

APP = "/api/v1/applications/payments-api"


def _window(api: Any, certificate: Any) -> dict[str, Any]:
    response = api("auditor").get(f"{APP}/certificates/{certificate.pk}/renewal-window/")
    assert response.status_code == 200, response.content
    return response.json()


def test_window_follows_the_certificates_own_setting(api: Any, world: Any) -> None:
    certificate = world.certificate
    certificate.renew_days_before = 10
    certificate.save(update_fields=["renew_days_before"])
    body = _window(api, certificate)
    start = datetime.fromisoformat(body["start"])
    end = datetime.fromisoformat(body["end"])
    assert start == certificate.not_after - timedelta(days=10)
    assert end == start + timedelta(days=5)
    assert body["status"] == "active"
    assert body["certificate"] == str(certificate.pk)


def test_a_revoked_certificates_window_is_now(api: Any, world: Any) -> None:
    issuance.revoke(world.certificate, reason="keyCompromise", actor=Actor(label="t"))
    body = _window(api, world.certificate)
    assert body["status"] == "revoked"
    assert datetime.fromisoformat(body["end"]) <= timezone.now()
    assert datetime.fromisoformat(body["end"]) > timezone.now() - timedelta(minutes=5)


def test_another_applications_certificate_is_not_found(api: Any, world: Any) -> None:
    response = api("outsider").get(f"{APP}/certificates/{world.certificate.pk}/renewal-window/")
    assert response.status_code == 404
