"""Certificate fields are someone else's text: a hostile CN or SAN reaches every channel
as inert text (no injected email header, no Slack or Teams markup, link or mention)."""

from __future__ import annotations

from email.header import decode_header, make_header
from typing import Any

import pytest
from django.utils import timezone

from alerts import services
from alerts.channels import text
from alerts.choices import AlertEvent, ChannelKind, DeliveryStatus
from alerts.models import Channel, Delivery
from alerts.tests.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

HOSTILE_CN = (
    "evil.example.test\r\nBcc: victim@example.test\r\n\r\n"
    "<!channel> <@U0123> *bold* _it_ ~strike~ `code` <https://evil.test|click here> "
    "[click](https://evil.test) **strong** # heading @here &amp; \u202egnp.exe\x1b[31m"
)  # no NUL: PostgreSQL text cannot hold one, so no stored certificate has it
HOSTILE_SAN = "ok.example.test\nX-Injected: yes"


def deliver(application: Any, channel: Channel | None, **fields: Any) -> Delivery:
    """One 'issued' alert about a certificate with the hostile names, sent now."""
    payload = {
        "application": application.name,
        "common_name": HOSTILE_CN,
        "sans": [HOSTILE_SAN],
        "serial_number": "0a1b",
    }
    delivery = Delivery.objects.create(
        application=application,
        channel=channel,
        event=AlertEvent.ISSUED,
        dedupe_key="hostile",
        subject=services.render_subject(AlertEvent.ISSUED, payload),
        payload=payload,
        next_attempt_at=timezone.now(),
        **fields,
    )
    services.send_due()
    delivery.refresh_from_db()
    return delivery


def test_rendered_subject_is_one_line_without_controls():
    subject = services.render_subject(AlertEvent.ISSUED, {"common_name": HOSTILE_CN + "\x00"})
    assert not any(c in subject for c in "\r\n\x00\x1b\u202e")
    assert subject.startswith("[certportal ] Certificate issued: evil.example.test")


def test_email_headers_cannot_be_injected(application, actor, smtp_server):
    channel = services.save_channel(
        application,
        name="mail",
        kind=ChannelKind.EMAIL,
        config={"recipients": ["ops@example.test"]},
        secrets={},
        actor=actor,
    )
    assert deliver(application, channel).status == DeliveryStatus.SENT
    [mail] = smtp_server.messages
    assert mail["X-Envelope-To"] == "ops@example.test"
    assert mail["Bcc"] is None
    assert mail["X-Injected"] is None
    subject = str(make_header(decode_header(mail["Subject"])))
    assert "\n" not in subject and "\r" not in subject
    assert "Bcc: victim" in subject  # the text is kept, as part of the one subject line
    body = mail.get_payload(decode=True).decode()
    assert "\nBcc:" not in body
    assert "\nX-Injected:" not in body
    assert "\x1b" not in body and "\u202e" not in body


def test_approver_notices_are_escaped_too(application, personas, smtp_server):
    delivery = deliver(application, None, recipients=["approver@example.test"])
    assert delivery.status == DeliveryStatus.SENT
    [mail] = smtp_server.messages
    assert mail["Bcc"] is None
    assert mail["X-Envelope-To"] == "approver@example.test"


def test_slack_gets_no_markup_links_or_mentions(application, actor, http_receiver):
    channel = services.save_channel(
        application,
        name="slack",
        kind=ChannelKind.SLACK,
        config={},
        secrets={"url": http_receiver.url + "/slack"},
        actor=actor,
    )
    assert deliver(application, channel).status == DeliveryStatus.SENT
    sent = http_receiver.requests[0].json()["text"]
    first, *rest = sent.split("\n")
    assert first.startswith("*[certportal ") and first.endswith("*")  # our own bold only
    assert "*" not in first[1:-1]
    for line in rest:
        _name, _, value = line.partition(": ")
        assert not set(value) & set("*_~`<>")
    assert "<!channel>" not in sent and "<@U0123>" not in sent and "<https://" not in sent
    assert "@here" not in sent
    assert "&lt;!channel&gt;" in sent  # shown as text
    assert "&amp;amp;" in sent  # a literal "&amp;" stays literal
    assert "\nBcc:" not in sent and "\nX-Injected" not in sent


def test_teams_gets_no_markdown_links_or_tags(application, actor, http_receiver):
    channel = services.save_channel(
        application,
        name="teams",
        kind=ChannelKind.TEAMS,
        config={},
        secrets={"url": http_receiver.url + "/teams"},
        actor=actor,
    )
    assert deliver(application, channel).status == DeliveryStatus.SENT
    card = http_receiver.requests[0].json()["attachments"][0]["content"]
    subject, lines, facts = card["body"]
    values = [line.partition(": ")[2] for line in lines["text"].split("\n\n")]
    for value in [subject["text"], *values, *(f["value"] for f in facts["facts"])]:
        assert not set(value) & set("*_~`<>[]#"), value
        assert "](" not in value
    assert "\nBcc:" not in lines["text"]
    assert "sans: ok.example.test�X-Injected: yes" in lines["text"]


def test_webhook_json_carries_the_names_exactly(application, actor, http_receiver):
    channel = services.save_channel(
        application,
        name="hook",
        kind=ChannelKind.WEBHOOK,
        config={"url": http_receiver.url + "/hook"},
        secrets={"secret": WEBHOOK_SECRET},
        actor=actor,
    )
    assert deliver(application, channel).status == DeliveryStatus.SENT
    [received] = http_receiver.requests
    assert received.signature_ok
    body = received.json()
    assert body["data"]["common_name"] == HOSTILE_CN  # JSON escapes; the receiver decides
    assert "\n" not in body["subject"]


def test_the_escapers_leave_ordinary_names_readable():
    assert text.plain("web.example.test") == "web.example.test"
    assert text.slack("web-1.example.test") == "web-1.example.test"
    assert text.teams("web-1.example.test") == "web-1.example.test"
    assert text.header("x" * 500).endswith("\N{HORIZONTAL ELLIPSIS}")
    assert len(text.header("x" * 500)) == text.HEADER_MAX
