"""Alert rules and channels against real receivers, with time moved across thresholds."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from alerts import services
from alerts.choices import AlertEvent, ChannelKind, DeliveryStatus
from alerts.models import AlertRule, Delivery
from alerts.tests.conftest import WEBHOOK_SECRET
from certportal import outbox
from certportal.models import OutboxEvent
from issuance.services import revoke, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def issue(application, tls_profile, actor, make_csr):
    def make(cn: str = "web.example.test", validity_days: int = 90):
        return submit(
            application=application,
            profile=tls_profile,
            method="api",
            actor=actor,
            csr=make_csr(cn, [cn]),
            validity_days=validity_days,
        ).certificate

    return make


@pytest.fixture
def email_channel(application, actor):
    return services.save_channel(
        application,
        name="ops-mail",
        kind=ChannelKind.EMAIL,
        config={"recipients": ["ops@example.test"]},
        secrets={},
        actor=actor,
    )


@pytest.fixture
def webhook_channel(application, actor, http_receiver):
    return services.save_channel(
        application,
        name="hook",
        kind=ChannelKind.WEBHOOK,
        config={"url": http_receiver.url + "/hook"},
        secrets={"secret": WEBHOOK_SECRET},
        actor=actor,
    )


def make_rule(application, actor, channel, **fields):
    fields.setdefault("name", "rule")
    rule = AlertRule(application=application, **fields)
    return services.save_rule(application, rule, [channel.pk], actor=actor)


def dispatch_all() -> None:
    outbox.dispatch(list(OutboxEvent.objects.values_list("pk", flat=True)))


def test_expiry_mail_reaches_smtp_server_once_per_threshold(
    application, actor, issue, email_channel, smtp_server
):
    certificate = issue()
    make_rule(application, actor, email_channel, thresholds_days=[30, 7])
    with time_machine.travel(certificate.not_after - timedelta(days=40), tick=False):
        assert services.scan_expiring() == 0
    with time_machine.travel(certificate.not_after - timedelta(days=29), tick=False):
        assert services.scan_expiring() == 1
        assert services.scan_expiring() == 0  # same threshold: nothing new
        assert services.send_due() == 1
    with time_machine.travel(certificate.not_after - timedelta(days=6, hours=23), tick=False):
        assert services.scan_expiring() == 1
        assert services.send_due() == 1
    subjects = [m["Subject"] for m in smtp_server.messages]
    assert len(subjects) == 2
    assert "web.example.test expires in 29 days" in subjects[0]
    assert "expires in 6 days" in subjects[1]
    assert smtp_server.messages[0]["X-Envelope-To"] == "ops@example.test"
    assert set(Delivery.objects.values_list("dedupe_key", flat=True)) == {
        f"{certificate.pk}:30d",
        f"{certificate.pk}:7d",
    }


def test_daily_repeat_after_last_threshold_until_revoked(
    application, actor, issue, webhook_channel, http_receiver
):
    certificate = issue()
    make_rule(application, actor, webhook_channel, thresholds_days=[3], repeat_daily=True)
    for days_left in (2.9, 2.5, 1.9, 0.9):
        with time_machine.travel(certificate.not_after - timedelta(days=days_left), tick=False):
            services.scan_expiring()
    keys = sorted(Delivery.objects.values_list("dedupe_key", flat=True))
    assert keys == [f"{certificate.pk}:3d", f"{certificate.pk}:3d+1", f"{certificate.pk}:3d+2"]
    revoke(certificate, reason="superseded", actor=actor)
    with time_machine.travel(certificate.not_after - timedelta(hours=1), tick=False):
        assert services.scan_expiring() == 0


def test_webhook_is_signed_and_receiver_verifies_it(
    application, actor, issue, webhook_channel, http_receiver
):
    make_rule(application, actor, webhook_channel, events=[AlertEvent.ISSUED])
    certificate = issue("api.example.test")
    dispatch_all()
    dispatch_all()  # a second dispatch finds nothing left to do
    assert services.send_due() == 1
    assert services.send_due() == 0
    [received] = http_receiver.requests
    assert received.path == "/hook"
    assert received.signature_ok
    body = received.json()
    assert body["event"] == "issued"
    assert body["data"]["serial_number"] == certificate.serial_number
    assert received.headers["X-Certportal-Delivery"] == body["id"]
    tampered = received.body.replace(b"api.example", b"evil.example")
    assert tampered != received.body
    from alerts.channels import webhook

    assert not webhook.verify(
        WEBHOOK_SECRET,
        received.headers["X-Certportal-Timestamp"],
        tampered,
        received.headers["X-Certportal-Signature"],
    )


@pytest.mark.parametrize(
    ("kind", "config", "secrets", "check"),
    [
        (ChannelKind.SLACK, {}, {"url": "{url}/slack"}, lambda b: "revoked" in b["text"]),
        (
            ChannelKind.TEAMS,
            {},
            {"url": "{url}/teams"},
            lambda b: b["attachments"][0]["content"]["type"] == "AdaptiveCard",
        ),
        (
            ChannelKind.PAGERDUTY,
            {"url": "{url}/pd"},
            {"routing_key": "a" * 32},
            lambda b: b["event_action"] == "trigger" and b["payload"]["severity"] == "warning",
        ),
    ],
)
def test_chat_and_paging_channels_post_their_format(
    application, actor, issue, http_receiver, kind, config, secrets, check
):
    fill = {k: v.format(url=http_receiver.url) for k, v in config.items()}
    fill_secrets = {k: v.format(url=http_receiver.url) for k, v in secrets.items()}
    channel = services.save_channel(
        application, name=kind, kind=kind, config=fill, secrets=fill_secrets, actor=actor
    )
    make_rule(application, actor, channel, events=[AlertEvent.REVOKED])
    revoke(issue(), reason="keyCompromise", actor=actor)
    dispatch_all()
    assert services.send_due() == 1
    [received] = http_receiver.requests
    assert check(received.json())


def test_rule_filters_by_name_pattern_and_profile(
    application, actor, issue, webhook_channel, make_profile, issuing_ca
):
    other = make_profile("other", issuing_ca)
    application.profiles.add(other)
    make_rule(
        application, actor, webhook_channel, events=["issued"], name_pattern="pay-*.example.test"
    )
    make_rule(
        application, actor, webhook_channel, name="other-only", events=["issued"], profile=other
    )
    issue("pay-a.example.test")
    issue("b.example.test")
    dispatch_all()
    assert list(Delivery.objects.values_list("rule__name", "payload__common_name")) == [
        ("rule", "pay-a.example.test")
    ]


def test_bad_channel_settings_are_refused(application, actor):
    with pytest.raises(ValidationError, match="not a valid http"):
        services.save_channel(
            application,
            name="h",
            kind=ChannelKind.WEBHOOK,
            config={"url": "ftp://example.test/x"},
            secrets={"secret": WEBHOOK_SECRET},
            actor=actor,
        )
    with pytest.raises(ValidationError, match="routing"):
        services.save_channel(
            application,
            name="p",
            kind=ChannelKind.PAGERDUTY,
            config={},
            secrets={"routing_key": "short"},
            actor=actor,
        )
    with pytest.raises(ValidationError, match="not an email"):
        services.save_channel(
            application,
            name="m",
            kind=ChannelKind.EMAIL,
            config={"recipients": ["nobody"]},
            secrets={},
            actor=actor,
        )


def test_threshold_beyond_validity_is_refused(application, actor, email_channel):
    with pytest.raises(ValidationError, match="beyond the longest validity"):
        make_rule(application, actor, email_channel, thresholds_days=[30, 400])


def test_unreachable_smtp_is_reported_and_retried_not_raised(
    application, actor, issue, email_channel, settings
):
    from alerts.tests.conftest import free_port

    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    certificate = issue()
    make_rule(application, actor, email_channel, thresholds_days=[30])
    with time_machine.travel(certificate.not_after - timedelta(days=10), tick=False) as clock:
        services.scan_expiring()
        assert services.send_due() == 0
        delivery = Delivery.objects.get()
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.attempts == 1
        assert "SMTP server 127.0.0.1" in delivery.last_error
        assert delivery.next_attempt_at > certificate.not_after - timedelta(days=10)
        for _ in range(services.MAX_SEND_ATTEMPTS):
            clock.shift(timedelta(hours=2))
            services.send_due()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == services.MAX_SEND_ATTEMPTS


def test_test_send_is_queued_and_the_log_keeps_only_a_status(
    application, actor, webhook_channel, http_receiver, django_capture_on_commit_callbacks
):
    from django_q.brokers import get_broker

    from alerts import tasks

    queued_before = get_broker().queue_size()
    with django_capture_on_commit_callbacks(execute=True):
        ok = services.queue_test_message(webhook_channel, actor=actor)
    assert ok.status == DeliveryStatus.PENDING
    assert http_receiver.requests == []  # nothing is sent by the caller
    assert get_broker().queue_size() == queued_before + 1  # the worker's send task
    assert tasks.send_due_deliveries() == 1
    ok.refresh_from_db()
    assert ok.status == DeliveryStatus.SENT
    http_receiver.status = 500
    with django_capture_on_commit_callbacks(execute=True):
        failed = services.queue_test_message(webhook_channel, actor=actor)
    assert tasks.send_due_deliveries() == 0
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.FAILED  # a test is not retried
    assert failed.last_error == f"HTTP 500 from {http_receiver.url}."
    assert "receiver says no" not in failed.last_error  # the receiver's body is not kept
    assert len(http_receiver.requests) == 2


def test_failing_consumer_leaves_event_for_the_sweeper(application, issue, monkeypatch):
    def broken(events):
        raise RuntimeError("consumer down")

    monkeypatch.setitem(outbox._CONSUMERS, "broken", broken)
    monkeypatch.setitem(outbox._WANTS, "broken", None)  # it wants every event
    issue()
    [event] = OutboxEvent.objects.filter(event_type="certificate.issued")
    assert event.dispatched_at is None
    assert outbox.dispatch([event.pk]) == 0
    event.refresh_from_db()
    assert event.dispatched_at is None
    assert event.attempts == 1
    assert "consumer down" in event.last_error
    monkeypatch.delitem(outbox._CONSUMERS, "broken")
    with time_machine.travel(event.created_at + timedelta(seconds=20), tick=False):
        assert outbox.sweep() == 0  # still within the grace and backoff
    with time_machine.travel(event.created_at + outbox.backoff(1), tick=False):
        assert outbox.sweep() == 1
    event.refresh_from_db()
    assert event.dispatched_at is not None


def test_rejected_request_alerts_approval_decided(
    application,
    actor,
    issue,
    webhook_channel,
    http_receiver,
    make_csr,
    tls_profile,
    monkeypatch,
    hold_every_request,
):
    from issuance.services import reject_request

    make_rule(application, actor, webhook_channel, events=[AlertEvent.APPROVAL_DECIDED])
    hold_every_request()
    held = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("r.example.test", ["r.example.test"]),
    )
    reject_request(held.request, actor=actor, reason="no")
    dispatch_all()
    assert services.send_due() == 1
    body = http_receiver.requests[0].json()
    assert body["event"] == "approval_decided"
    assert "Request for r.example.test rejected" in body["subject"]


def test_consuming_a_batch_costs_the_same_queries_for_one_event_or_many(
    application, actor, issue, email_channel
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from alerts.services import consume_events

    make_rule(application, actor, email_channel, events=["issued"])

    def queries_for(count: int) -> int:
        for i in range(count):
            issue(f"n{count}-{i}.example.test")
        events = list(OutboxEvent.objects.filter(dispatched_at__isnull=True))
        with CaptureQueriesContext(connection) as captured:
            consume_events(events)
        OutboxEvent.objects.update(dispatched_at="2026-01-01T00:00:00Z")
        return len(captured.captured_queries)

    queries_for(1)  # the first batch reads the rules; later ones find them cached
    assert queries_for(1) == queries_for(10)
    assert Delivery.objects.count() == 12


def test_events_of_applications_without_rules_are_written_dispatched_and_wake_no_drain(
    application, issue, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from alerts.services import consume_events

    with django_capture_on_commit_callbacks() as callbacks:
        for i in range(5):
            issue(f"quiet-{i}.example.test")
    assert outbox.queue_dispatch not in callbacks
    events = list(OutboxEvent.objects.filter(event_type="certificate.issued"))
    assert len(events) == 5 and all(e.dispatched_at is not None for e in events)
    assert all(e.attempts == 0 for e in events)  # never handed to a consumer
    with CaptureQueriesContext(connection) as captured:
        consume_events(events)  # as a sweep would: nothing to do
    assert len(captured.captured_queries) == 0  # the rules issuance read are kept
    assert not Delivery.objects.exists()


def test_a_rule_only_for_expiry_wakes_no_drain_for_issuance(
    application, actor, issue, email_channel, django_capture_on_commit_callbacks
):
    make_rule(application, actor, email_channel, events=[AlertEvent.EXPIRING])
    with django_capture_on_commit_callbacks() as callbacks:
        issue("quiet.example.test")
    assert outbox.queue_dispatch not in callbacks
    [event] = OutboxEvent.objects.filter(event_type="certificate.issued")
    assert event.dispatched_at is not None


@pytest.mark.parametrize("events", [[AlertEvent.ISSUED], [AlertEvent.RENEWED]])
def test_an_application_with_a_rule_gets_its_events_drained(
    application, actor, issue, email_channel, django_capture_on_commit_callbacks, events
):
    make_rule(application, actor, email_channel, events=events)
    with django_capture_on_commit_callbacks() as callbacks:
        issue("loud.example.test")
    assert outbox.queue_dispatch in callbacks
    [event] = OutboxEvent.objects.filter(event_type="certificate.issued")
    assert event.dispatched_at is None
    dispatch_all()
    event.refresh_from_db()
    assert event.dispatched_at is not None and event.attempts == 1
    # An issuance that renews nothing alerts an "issued" rule, not a "renewed" one.
    assert Delivery.objects.exists() == (events == [AlertEvent.ISSUED])


def test_a_rule_or_channel_change_is_seen_by_the_next_batch(
    application, actor, issue, email_channel
):
    from alerts.services import consume_events

    def issue_and_consume(name: str) -> None:
        issue(name)
        consume_events(list(OutboxEvent.objects.filter(dispatched_at__isnull=True)))
        OutboxEvent.objects.update(dispatched_at="2026-01-01T00:00:00Z")

    issue_and_consume("before.example.test")  # no rules yet: that is now cached
    assert not Delivery.objects.exists()
    rule = make_rule(application, actor, email_channel, events=["issued"])
    issue_and_consume("after.example.test")
    assert Delivery.objects.count() == 1
    rule.channels.clear()
    issue_and_consume("unlinked.example.test")
    assert Delivery.objects.count() == 1


def test_a_batch_asks_once_whether_its_events_are_wanted(
    application, tls_profile, actor, make_csr, monkeypatch
):
    from certportal import events
    from issuance.services import Ask, Submission, submit_many

    asked: list[tuple[str, int | None]] = []
    wanted = events.outbox_wanted

    def counted(event_type: str, application_id: int | None) -> bool:
        asked.append((event_type, application_id))
        return wanted(event_type, application_id)

    monkeypatch.setattr(events, "outbox_wanted", counted)
    asks = [Ask(csr=make_csr(f"b{i}.example.test")) for i in range(3)]
    results = submit_many(
        application=application, profile=tls_profile, method="api", actor=actor, asks=asks
    )
    assert all(isinstance(r, Submission) and r.certificate for r in results)
    assert asked == [("certificate.issued", application.pk)]


def test_a_channel_name_taken_between_check_and_insert_is_a_field_error(
    application, actor, email_channel, monkeypatch
):
    """Two saves of one name racing: the loser's INSERT hits the unique constraint after
    its check passed, and gets the same field error, not a 500; nothing is added."""
    from django.db.models import QuerySet

    monkeypatch.setattr(QuerySet, "exists", lambda self: False)  # the check ran first
    with pytest.raises(ValidationError) as refused:
        services.save_channel(
            application,
            name=email_channel.name,
            kind=ChannelKind.EMAIL,
            config={"recipients": ["other@example.test"]},
            secrets={},
            actor=actor,
        )
    assert "already exists" in refused.value.message_dict["name"][0]
    assert application.alert_channels.count() == 1
