"""Alert channels go through certportal.outbound: a channel aimed at loopback or at the
cloud metadata address is refused when saved and when sent, unless the private-target
setting is on (then the real receiver gets the request)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from alerts import services, tasks
from alerts.choices import ChannelKind, DeliveryStatus
from alerts.models import Channel
from alerts.tests.conftest import WEBHOOK_SECRET
from certportal import outbound

pytestmark = pytest.mark.django_db

METADATA = "http://169.254.169.254/latest/meta-data/"
TARGETS = ["loopback", "localhost", "metadata"]


def target_url(target: str, receiver: Any) -> str:
    port = receiver.url.rsplit(":", 1)[1]
    return {
        "loopback": receiver.url + "/hook",
        "localhost": f"http://localhost:{port}/hook",  # a name resolving to loopback
        "metadata": METADATA,
    }[target]


def channel_settings(kind: str, url: str) -> tuple[dict[str, Any], dict[str, str]]:
    by_kind: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
        ChannelKind.WEBHOOK: ({"url": url}, {"secret": WEBHOOK_SECRET}),
        ChannelKind.SLACK: ({}, {"url": url}),
        ChannelKind.TEAMS: ({}, {"url": url}),
        ChannelKind.PAGERDUTY: ({"url": url}, {"routing_key": "a" * 32}),
    }
    return by_kind[kind]


def save(application: Any, actor: Any, kind: str, url: str) -> Channel:
    config, secrets = channel_settings(kind, url)
    return services.save_channel(
        application, name=kind, kind=kind, config=config, secrets=secrets, actor=actor
    )


def send_test(channel: Channel, actor: Any) -> Any:
    delivery = services.queue_test_message(channel, actor=actor)
    tasks.send_due_deliveries()
    delivery.refresh_from_db()
    return delivery


KINDS = [ChannelKind.WEBHOOK, ChannelKind.SLACK, ChannelKind.TEAMS, ChannelKind.PAGERDUTY]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", KINDS)
def test_internal_targets_are_refused_at_save(
    application, actor, http_receiver, settings, kind, target
):
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError, match="is not a public address") as refused:
        save(application, actor, kind, target_url(target, http_receiver))
    assert list(refused.value.message_dict) == ["url"]
    assert not Channel.objects.exists()


@pytest.mark.parametrize("target", TARGETS)
def test_the_channel_form_shows_the_refusal(
    client, personas, application, http_receiver, settings, target
):
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    client.force_login(personas["admin"])
    response = client.post(
        reverse("alerts:channel-new", args=[application.name]),
        {
            "name": "hook",
            "kind": "webhook",
            "url": target_url(target, http_receiver),
            "secret": WEBHOOK_SECRET,
        },
    )
    assert response.status_code == 400
    assert "is not a public address" in response.content.decode()
    assert not Channel.objects.exists()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", KINDS)
def test_internal_targets_are_refused_at_send(
    application, actor, http_receiver, settings, kind, target
):
    # Saved while a lab allowed it; the setting is off by the time the alert is sent.
    channel = save(application, actor, kind, target_url(target, http_receiver))
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    delivery = send_test(channel, actor)
    assert delivery.status == DeliveryStatus.FAILED
    assert "is not a public address" in delivery.last_error
    assert http_receiver.requests == []


@pytest.mark.parametrize("kind", KINDS)
def test_loopback_is_reached_with_the_setting_on(application, actor, http_receiver, kind):
    channel = save(application, actor, kind, target_url("loopback", http_receiver))
    delivery = send_test(channel, actor)
    assert delivery.status == DeliveryStatus.SENT
    assert [r.path for r in http_receiver.requests] == ["/hook"]


def test_the_metadata_address_is_tried_with_the_setting_on(
    application, actor, settings, monkeypatch
):
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = True
    monkeypatch.setattr(outbound, "CONNECT_TIMEOUT", 0.5)
    channel = save(application, actor, ChannelKind.WEBHOOK, METADATA)
    delivery = send_test(channel, actor)
    # Nothing answers here (or a cloud's metadata service does): either way the request
    # was attempted, not refused.
    assert delivery.attempts == 1
    assert "not a public address" not in delivery.last_error


def test_a_redirect_from_the_receiver_is_a_failure_not_followed(application, actor, http_receiver):
    http_receiver.status = 302  # no Location needed: a 3xx is not followed at all
    channel = save(application, actor, ChannelKind.WEBHOOK, target_url("loopback", http_receiver))
    delivery = send_test(channel, actor)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == f"HTTP 302 from {http_receiver.url}: redirects are refused."
    assert len(http_receiver.requests) == 1


def test_the_migration_drops_answers_stored_by_earlier_versions(application):
    from importlib import import_module

    from django.apps import apps
    from django.utils import timezone

    from alerts.models import Delivery

    migration = import_module("alerts.migrations.0002_delivery_log_drops_receiver_answers")
    old = Delivery.objects.create(
        application=application,
        event="issued",
        dedupe_key="old",
        subject="s",
        next_attempt_at=timezone.now(),
        last_error="HTTP 500 from 10.0.0.5:8080: <html>internal admin page\nsecret=1</html>",
    )
    smtp = Delivery.objects.create(
        application=application,
        event="issued",
        dedupe_key="smtp",
        subject="s",
        next_attempt_at=timezone.now(),
        last_error="SMTP server mail:25: " + "x" * 1000,
    )
    migration.forwards(apps, None)
    old.refresh_from_db()
    smtp.refresh_from_db()
    assert old.last_error == "HTTP 500 from 10.0.0.5:8080."
    assert len(smtp.last_error) == 300
