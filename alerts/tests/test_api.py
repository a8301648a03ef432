"""The Alerting tab over the API: channels and rules by name (PUT re-applies without
duplicates), secrets never read back, test-send queued, the delivery log, errors as the
page words them, and every change audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from alerts.models import AlertRule, Channel, Delivery
from applications.models import AuditEvent
from certportal.event_types import EventType

pytestmark = pytest.mark.django_db

APP = "/api/v1/applications/payments-api"
SECRET = "receiver-shared-secret-0123456789"
HOOK = {"kind": "webhook", "url": "http://127.0.0.1:19001/alerts", "secret": SECRET}


@pytest.fixture(autouse=True)
def loopback_receivers(settings: Any) -> None:
    """The webhook URLs point at loopback (nothing is sent: no worker runs here)."""
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = True


@pytest.fixture
def admin(personas: dict[str, Any]) -> APIClient:
    client = APIClient()
    client.force_login(personas["admin"])
    return client


def test_put_channel_twice_keeps_one_channel_and_never_shows_the_secret(admin: APIClient) -> None:
    first = admin.put(f"{APP}/alert-channels/ops-hook/", HOOK, format="json")
    again = admin.put(f"{APP}/alert-channels/ops-hook/", HOOK, format="json")
    assert (first.status_code, again.status_code) == (201, 200), first.content
    assert Channel.objects.filter(name="ops-hook").count() == 1
    assert again.json()["has_secret"] is True
    listed = admin.get(f"{APP}/alert-channels/")
    assert SECRET not in listed.content.decode()
    assert Channel.objects.get().secret_values() == {"secret": SECRET}
    saved = AuditEvent.objects.filter(action=EventType.ALERTS_CHANNEL_SAVED)
    assert saved.count() == 2


def test_blank_secret_on_update_keeps_the_stored_one(admin: APIClient) -> None:
    admin.put(f"{APP}/alert-channels/ops-hook/", HOOK, format="json")
    changed = {**HOOK, "secret": "", "url": "http://127.0.0.1:19001/other"}
    response = admin.patch(f"{APP}/alert-channels/ops-hook/", changed, format="json")
    assert response.status_code == 200, response.content
    channel = Channel.objects.get()
    assert channel.config == {"url": "http://127.0.0.1:19001/other"}
    assert channel.secret_values() == {"secret": SECRET}


def test_channel_errors_are_the_pages_messages(admin: APIClient) -> None:
    short = {**HOOK, "secret": "short"}
    response = admin.post(f"{APP}/alert-channels/", {"name": "h", **short}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors == [
        {
            "field": "secret",
            "code": "invalid",
            "message": "The signing secret must be at least 16 characters.",
        }
    ]
    assert not Channel.objects.exists()


def test_post_of_a_taken_channel_name_is_refused(admin: APIClient) -> None:
    admin.put(f"{APP}/alert-channels/ops-hook/", HOOK, format="json")
    response = admin.post(f"{APP}/alert-channels/", {"name": "ops-hook", **HOOK}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "name"
    assert Channel.objects.count() == 1


def test_test_send_is_queued_and_shows_in_the_delivery_log(admin: APIClient) -> None:
    admin.put(f"{APP}/alert-channels/ops-hook/", HOOK, format="json")
    response = admin.post(f"{APP}/alert-channels/ops-hook/test/")
    assert response.status_code == 202
    delivery = Delivery.objects.get()
    assert response.json() == {"delivery": delivery.pk, "status": "pending"}
    log = admin.get(f"{APP}/alert-deliveries/").json()
    assert [row["channel"] for row in log["results"]] == ["ops-hook"]
    assert AuditEvent.objects.filter(action=EventType.ALERTS_CHANNEL_TEST_QUEUED).exists()


def test_put_rule_by_name_is_idempotent_and_names_its_channels(admin: APIClient) -> None:
    admin.put(f"{APP}/alert-channels/ops-hook/", HOOK, format="json")
    rule = {"events": ["expiring", "revoked"], "thresholds_days": [7, 30], "channels": ["ops-hook"]}
    first = admin.put(f"{APP}/alert-rules/expiry/", rule, format="json")
    again = admin.put(f"{APP}/alert-rules/expiry/", rule, format="json")
    assert (first.status_code, again.status_code) == (201, 200), first.content
    assert AlertRule.objects.count() == 1
    body = again.json()
    assert body["thresholds_days"] == [30, 7]
    assert body["channels"] == ["ops-hook"]
    assert body["profile"] is None
    assert AuditEvent.objects.filter(action=EventType.ALERTS_RULE_SAVED).count() == 2


def test_rule_errors_are_the_pages_messages(admin: APIClient) -> None:
    admin.put(f"{APP}/alert-channels/ops-hook/", HOOK, format="json")
    rule = {"events": ["expiring"], "thresholds_days": [900], "channels": ["ops-hook"]}
    response = admin.put(f"{APP}/alert-rules/late/", rule, format="json")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "thresholds_days"
    assert "beyond the longest validity" in error["message"]
    unknown = {**rule, "thresholds_days": [7], "channels": ["nowhere"]}
    response = admin.put(f"{APP}/alert-rules/late/", unknown, format="json")
    assert response.json()["errors"][0]["message"] == "Unknown channel."
    assert not AlertRule.objects.exists()


def test_patch_rule_changes_only_what_it_names(admin: APIClient) -> None:
    admin.put(f"{APP}/alert-channels/ops-hook/", HOOK, format="json")
    rule = {"events": ["revoked"], "channels": ["ops-hook"], "name_pattern": "*.example.test"}
    admin.put(f"{APP}/alert-rules/r/", rule, format="json")
    response = admin.patch(f"{APP}/alert-rules/r/", {"is_active": False}, format="json")
    assert response.status_code == 200, response.content
    saved = AlertRule.objects.get()
    assert (saved.is_active, saved.name_pattern, saved.events) == (
        False,
        "*.example.test",
        ["revoked"],
    )


def test_delivery_log_is_a_fixed_number_of_queries(admin: APIClient) -> None:
    admin.put(f"{APP}/alert-channels/ops-hook/", HOOK, format="json")
    admin.put(f"{APP}/alert-channels/other/", HOOK, format="json")
    admin.post(f"{APP}/alert-channels/ops-hook/test/")
    with CaptureQueriesContext(connection) as few:
        admin.get(f"{APP}/alert-deliveries/")
    for name in ("ops-hook", "other", "other", "ops-hook"):
        admin.post(f"{APP}/alert-channels/{name}/test/")
    with CaptureQueriesContext(connection) as many:
        response = admin.get(f"{APP}/alert-deliveries/")
    assert response.json()["count"] == 5
    assert len(many) == len(few)


@pytest.mark.parametrize("persona", ["operator", "auditor"])
def test_alerting_is_for_admins_like_the_page(personas: dict[str, Any], persona: str) -> None:
    client = APIClient()
    client.force_login(personas[persona])
    assert client.get(f"{APP}/alert-channels/").status_code == 403
    assert client.put(f"{APP}/alert-channels/x/", HOOK, format="json").status_code == 403
    assert not Channel.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(admin: APIClient) -> None:
    response = admin.put(f"{APP}/alert-rules/r/", ["expiring"], format="json")
    assert response.status_code == 400
    assert response.json()["message"] == "Send a JSON object."
