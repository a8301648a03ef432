"""The Alerting tab: who sees it, forms, the test-send button."""

from __future__ import annotations

import pytest
from django.urls import reverse

from alerts import tasks
from alerts.models import AlertRule, Channel, Delivery
from alerts.tests.conftest import WEBHOOK_SECRET
from applications.tabs import tabs_for

pytestmark = pytest.mark.django_db


def url(name, application, *args):
    return reverse(f"alerts:{name}", args=[application.name, *args])


def test_tabs_only_for_admins(personas, application):
    assert "alerting" in {t.key for t in tabs_for(personas["admin"], application)}
    assert "alerting" not in {t.key for t in tabs_for(personas["auditor"], application)}
    assert "alerting" not in {t.key for t in tabs_for(personas["operator"], application)}


@pytest.mark.parametrize(
    ("who", "status"), [("operator", 403), ("auditor", 403), ("outsider", 404)]
)
def test_others_cannot_open_alerting(client, personas, application, who, status):
    client.force_login(personas[who])
    assert client.get(url("alerting", application)).status_code == status


def test_anonymous_is_sent_to_login(client, application):
    response = client.get(url("alerting", application))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_admin_adds_webhook_and_test_sends_it(client, personas, application, http_receiver):
    client.force_login(personas["admin"])
    response = client.post(
        url("channel-new", application),
        {"name": "hook", "kind": "webhook", "url": http_receiver.url, "secret": WEBHOOK_SECRET},
    )
    assert response.status_code == 302
    channel = Channel.objects.get(application=application)
    assert WEBHOOK_SECRET not in channel.secrets  # sealed at rest
    response = client.post(url("channel-test", application, channel.pk), follow=True)
    assert "Test message to hook queued" in response.content.decode()
    assert http_receiver.requests == []  # the web request sends nothing itself
    assert Delivery.objects.get().status == "pending"
    assert tasks.send_due_deliveries() == 1  # what the worker runs
    assert http_receiver.requests[0].signature_ok
    page = client.get(url("alerting", application)).content.decode()
    assert "Test message from certportal" in page  # the delivery log
    assert Delivery.objects.get().status == "sent"


def test_invalid_webhook_url_is_shown_not_saved(client, personas, application):
    client.force_login(personas["admin"])
    response = client.post(
        url("channel-new", application),
        {"name": "hook", "kind": "webhook", "url": "not a url", "secret": WEBHOOK_SECRET},
    )
    assert response.status_code == 400
    assert "not a valid http(s) URL" in response.content.decode()
    assert not Channel.objects.exists()


def test_rule_form_refuses_threshold_beyond_validity(client, personas, application, actor):
    from alerts import services

    channel = services.save_channel(
        application,
        name="m",
        kind="email",
        config={"recipients": ["a@example.test"]},
        secrets={},
        actor=actor,
    )
    client.force_login(personas["admin"])
    data = {
        "name": "exp",
        "events": ["expiring"],
        "thresholds": "30, 500",
        "channels": [channel.pk],
        "is_active": "on",
    }
    response = client.post(url("rule-new", application), data)
    assert response.status_code == 400
    assert "beyond the longest validity" in response.content.decode()
    data["thresholds"] = "30, 7"
    assert client.post(url("rule-new", application), data).status_code == 302
    assert AlertRule.objects.get().thresholds_days == [30, 7]
