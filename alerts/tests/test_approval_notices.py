"""Who an approval notifies, against a real SMTP server and webhook receiver: each step's
approvers when it opens, the requester when the request is decided, and nobody else."""

from __future__ import annotations

from typing import Any

import pytest

from alerts import services
from alerts.choices import AlertEvent, ChannelKind
from alerts.models import AlertRule, Delivery
from alerts.tests.conftest import WEBHOOK_SECRET
from applications.choices import Role
from applications.services import set_member_role
from approvals import services as approvals
from certportal import outbox
from certportal.events import Actor
from certportal.models import OutboxEvent
from issuance.choices import RequestState
from issuance.services import submit

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="pytest")


@pytest.fixture
def team(application: Any, make_user: Any) -> dict[str, Any]:
    """An Application with a requester (an Admin), a named first-step approver (an
    Operator), two other Admins, a bystander Admin without email and an Auditor."""
    roles = {
        "requester": Role.ADMIN,
        "alice": Role.OPERATOR,
        "boss1": Role.ADMIN,
        "boss2": Role.ADMIN,
        "quiet": Role.ADMIN,
        "auditor": Role.AUDITOR,
    }
    people = {}
    for name, role in roles.items():
        user = make_user(name)
        user.email = "" if name == "quiet" else f"{name}@example.test"
        user.save()
        set_member_role(application, user, role, actor=ACTOR)
        people[name] = user
    return people


@pytest.fixture
def two_step_policy(application: Any, team: dict[str, Any]) -> Any:
    spec = approvals.PolicySpec(
        name="two steps",
        steps=[
            approvals.StepSpec(required=1, users=[team["alice"]]),
            approvals.StepSpec(required=1, role=Role.ADMIN),
        ],
    )
    return approvals.save_policy(application, spec, actor=ACTOR)


@pytest.fixture
def hook_rule(application: Any, http_receiver: Any) -> AlertRule:
    channel = services.save_channel(
        application,
        name="hook",
        kind=ChannelKind.WEBHOOK,
        config={"url": http_receiver.url + "/hook"},
        secrets={"secret": WEBHOOK_SECRET},
        actor=ACTOR,
    )
    rule = AlertRule(
        application=application,
        name="approvals",
        events=[AlertEvent.APPROVAL_REQUESTED, AlertEvent.APPROVAL_DECIDED],
    )
    return services.save_rule(application, rule, [channel.pk], actor=ACTOR)


def deliver_all() -> None:
    outbox.dispatch(list(OutboxEvent.objects.values_list("pk", flat=True)))
    services.send_due()


TITLE = "[certportal payments-api] "


def mailed(smtp_server: Any) -> list[tuple[str, str]]:
    """(envelope recipient, subject) of every mail so far, then forget them."""
    seen = sorted(
        (m["X-Envelope-To"], " ".join(str(m["Subject"]).split())) for m in smtp_server.messages
    )
    smtp_server.messages.clear()
    return seen


def hooked(http_receiver: Any) -> list[dict[str, Any]]:
    bodies = [r.json() for r in http_receiver.requests]
    assert all(r.signature_ok for r in http_receiver.requests)
    http_receiver.requests.clear()
    return bodies


def hold(application: Any, tls_profile: Any, make_csr: Any, requester: Any) -> Any:
    held = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=Actor(user=requester),
        csr=make_csr("pay.example.test", ["pay.example.test"]),
    )
    assert held.request.state == RequestState.PENDING_APPROVAL
    return held.request


def approve(request: Any, user: Any) -> None:
    approvals.decide(request, user=user, verdict="approve", comment="ok", actor=Actor(user=user))


def test_two_steps_notify_each_steps_approvers_then_the_requester(
    application, tls_profile, make_csr, team, two_step_policy, hook_rule, smtp_server, http_receiver
):
    request = hold(application, tls_profile, make_csr, team["requester"])
    deliver_all()
    # Step 1 names alice alone: no Admin hears of it, the requester included.
    assert mailed(smtp_server) == [
        ("alice@example.test", TITLE + "Approval requested: pay.example.test (step 1)")
    ]
    [body] = hooked(http_receiver)
    assert body["event"] == "approval_requested"
    assert (body["data"]["step"], body["data"]["approvers"]) == (1, ["alice"])

    approve(request, team["alice"])
    deliver_all()
    # Step 2 is the Admin role: every Admin but the requester; the one without email
    # is named to the channel but gets no mail.
    assert mailed(smtp_server) == [
        (f"{name}@example.test", TITLE + "Approval requested: pay.example.test (step 2)")
        for name in ("boss1", "boss2")
    ]
    [body] = hooked(http_receiver)
    assert (body["data"]["step"], body["data"]["approvers"]) == (2, ["boss1", "boss2", "quiet"])

    approve(request, team["boss2"])
    deliver_all()
    assert mailed(smtp_server) == [
        ("requester@example.test", TITLE + "Request for pay.example.test approved")
    ]
    [body] = hooked(http_receiver)
    assert (body["event"], body["data"]["decision"], body["data"]["requester"]) == (
        "approval_decided",
        "approved",
        "requester",
    )
    request.refresh_from_db()
    assert request.state == RequestState.ISSUED


def test_a_rejection_notifies_the_requester_only(
    application, tls_profile, make_csr, team, two_step_policy, hook_rule, smtp_server, http_receiver
):
    request = hold(application, tls_profile, make_csr, team["requester"])
    deliver_all()
    mailed(smtp_server), hooked(http_receiver)
    approvals.decide(
        request, user=team["alice"], verdict="reject", comment="no", actor=Actor(user=team["alice"])
    )
    deliver_all()
    assert mailed(smtp_server) == [
        ("requester@example.test", TITLE + "Request for pay.example.test rejected")
    ]
    [body] = hooked(http_receiver)
    assert (body["data"]["decision"], body["data"]["requester"]) == ("rejected", "requester")


def test_a_partial_step_notifies_nobody_new(
    application, tls_profile, make_csr, team, hook_rule, smtp_server, http_receiver
):
    spec = approvals.PolicySpec(name="two admins", steps=[approvals.StepSpec(2, Role.ADMIN)])
    approvals.save_policy(application, spec, actor=ACTOR)
    request = hold(application, tls_profile, make_csr, team["alice"])
    deliver_all()
    assert [to for to, _ in mailed(smtp_server)] == [
        "boss1@example.test",
        "boss2@example.test",
        "requester@example.test",
    ]
    hooked(http_receiver)
    approve(request, team["boss1"])
    deliver_all()
    assert mailed(smtp_server) == []
    assert hooked(http_receiver) == []


def test_without_email_configured_only_channels_hear(
    application, tls_profile, make_csr, team, two_step_policy, hook_rule, http_receiver, settings
):
    settings.CERTPORTAL_EMAIL_CONFIGURED = False
    hold(application, tls_profile, make_csr, team["requester"])
    deliver_all()
    [body] = hooked(http_receiver)
    assert body["data"]["approvers"] == ["alice"]
    assert not Delivery.objects.filter(channel__isnull=True).exists()


def test_an_expired_request_notifies_the_requester(
    application, tls_profile, make_csr, team, two_step_policy, smtp_server
):
    from datetime import timedelta

    from issuance.services import expire_pending_requests

    request = hold(application, tls_profile, make_csr, team["requester"])
    deliver_all()
    mailed(smtp_server)
    assert expire_pending_requests(now=request.expires_at + timedelta(seconds=1)) == 1
    deliver_all()
    assert mailed(smtp_server) == [
        ("requester@example.test", TITLE + "Request for pay.example.test expired unanswered")
    ]
