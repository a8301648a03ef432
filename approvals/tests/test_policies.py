"""Which requests a policy holds, who may decide them, and the approver pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from applications import services as members
from applications.choices import Role
from approvals import services
from approvals.choices import Trigger
from approvals.models import ApprovalDecision
from certportal.events import Actor
from issuance import services as issuance
from issuance.choices import RequestState

ACTOR = Actor(label="pytest")


def _policy(application: Any, **conditions: Any) -> Any:
    steps = conditions.pop("steps", [services.StepSpec(required=1, role=Role.ADMIN)])
    spec = services.PolicySpec(name=conditions.pop("name", "p"), steps=steps, **conditions)
    return services.save_policy(application, spec, actor=ACTOR)


def _submit(application: Any, profile: Any, user: Any, names: list[str], **kw: Any) -> Any:
    spec = issuance.KeySpec("EC_P256", names[0], names)
    return issuance.submit(
        application=application,
        profile=profile,
        method="api",
        actor=Actor(user=user),
        key_spec=spec,
        **kw,
    )


@pytest.mark.parametrize(
    ("conditions", "names", "validity", "held"),
    [
        ({"trigger": Trigger.ANY}, ["a.example.test"], None, True),
        ({"trigger": Trigger.CONDITIONS, "on_wildcard": True}, ["*.example.test"], None, True),
        ({"trigger": Trigger.CONDITIONS, "on_wildcard": True}, ["a.example.test"], None, False),
        (
            {"trigger": Trigger.CONDITIONS, "on_validity_over_days": 30},
            ["a.example.test"],
            31,
            True,
        ),
        (
            {"trigger": Trigger.CONDITIONS, "on_validity_over_days": 30},
            ["a.example.test"],
            30,
            False,
        ),
        (
            {"trigger": Trigger.CONDITIONS, "on_san_patterns": ["prod-*.example.test"]},
            ["prod-x.example.test"],
            None,
            True,
        ),
        (
            {"trigger": Trigger.CONDITIONS, "on_san_patterns": ["prod-*.example.test"]},
            ["dev-x.example.test"],
            None,
            False,
        ),
        ({"trigger": Trigger.CONDITIONS, "on_server_keygen": True}, ["a.example.test"], None, True),
        ({"trigger": Trigger.CONDITIONS}, ["a.example.test"], None, False),
    ],
)
def test_policy_conditions_decide_what_is_held(
    personas: Any,
    application: Any,
    tls_profile: Any,
    conditions: dict[str, Any],
    names: list[str],
    validity: int | None,
    held: bool,
) -> None:
    _policy(application, **conditions)
    submission = _submit(
        application, tls_profile, personas["operator"], names, validity_days=validity
    )
    assert submission.pending is held
    assert (submission.certificate is None) is held


def test_policy_limited_to_other_profiles_does_not_hold(
    personas: Any, application: Any, tls_profile: Any, make_profile: Any, issuing_ca: Any
) -> None:
    other = make_profile("other", issuing_ca)
    application.profiles.add(other)
    _policy(application, profiles=[other])
    assert not _submit(application, tls_profile, personas["operator"], ["a.example.test"]).pending
    assert _submit(application, other, personas["operator"], ["a.example.test"]).pending


def test_unchanged_renewal_bypasses_approval_unless_turned_off(
    personas: Any, application: Any, tls_profile: Any
) -> None:
    first = _submit(application, tls_profile, personas["operator"], ["r.example.test"])
    _policy(application)
    renewed = issuance.renew(first.certificate, actor=Actor(user=personas["operator"]))
    assert not renewed.pending and renewed.certificate is not None
    services.set_renewals_bypass(application, False, actor=ACTOR)
    again = issuance.renew(renewed.certificate, actor=Actor(user=personas["operator"]))
    assert again.pending


def test_service_accounts_bypass_only_when_the_policy_says_so(
    application: Any, tls_profile: Any
) -> None:
    account = members.create_service_account(
        application, name="ci", role=Role.OPERATOR, actor=ACTOR
    )
    policy = _policy(application, bypass_service_accounts=True)
    assert not _submit(application, tls_profile, account.user, ["a.example.test"]).pending
    spec = services.PolicySpec(name="p", steps=[services.StepSpec(required=1, role=Role.ADMIN)])
    services.save_policy(application, spec, actor=ACTOR, policy=policy)
    assert _submit(application, tls_profile, account.user, ["a.example.test"]).pending


def test_steps_run_in_sequence_with_distinct_approvers(
    personas: Any, application: Any, tls_profile: Any, make_user: Any
) -> None:
    from applications.services import set_member_role

    second_admin = make_user("second-admin")
    set_member_role(application, second_admin, Role.ADMIN, actor=ACTOR)
    _policy(
        application,
        steps=[
            services.StepSpec(required=1, users=[personas["auditor"]]),
            services.StepSpec(required=2, role=Role.ADMIN),
        ],
    )
    held = _submit(application, tls_profile, personas["operator"], ["s.example.test"]).request
    with pytest.raises(services.ApprovalError) as not_yet:
        services.decide(held, user=personas["admin"], verdict="approve", comment="", actor=ACTOR)
    assert not_yet.value.code == "not_eligible"
    services.decide(held, user=personas["auditor"], verdict="approve", comment="", actor=ACTOR)
    services.decide(held, user=personas["admin"], verdict="approve", comment="", actor=ACTOR)
    held.refresh_from_db()
    assert held.state == RequestState.PENDING_APPROVAL
    result = services.decide(held, user=second_admin, verdict="approve", comment="", actor=ACTOR)
    assert result is not None and result.certificate is not None
    held.refresh_from_db()
    assert held.state == RequestState.ISSUED
    assert ApprovalDecision.objects.filter(flow__request=held).count() == 3


def test_every_decision_is_audited(personas: Any, application: Any, tls_profile: Any) -> None:
    from applications.models import AuditEvent

    _policy(application)
    held = _submit(application, tls_profile, personas["operator"], ["a.example.test"]).request
    services.decide(held, user=personas["admin"], verdict="reject", comment="nope", actor=ACTOR)
    actions = list(
        AuditEvent.objects.filter(object_id=str(held.pk)).values_list("action", flat=True)
    )
    assert "request.approval_refused" in actions and "request.rejected" in actions


def test_named_approvers_must_be_members(personas: Any, application: Any) -> None:
    with pytest.raises(services.ApprovalError) as refused:
        _policy(application, steps=[services.StepSpec(required=1, users=[personas["outsider"]])])
    assert refused.value.code == "not_member"


# --- Pages -------------------------------------------------------------------------------


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_inbox_badge_counts_what_waits_for_the_approver(
    personas: Any, application: Any, tls_profile: Any
) -> None:
    _policy(application)
    _submit(application, tls_profile, personas["operator"], ["a.example.test"])
    _submit(application, tls_profile, personas["operator"], ["b.example.test"])
    page = _client(personas["admin"]).get("/approvals/")
    assert page.status_code == 200
    assert b'aria-label="2 waiting for you"' in page.content
    own = _client(personas["operator"]).get("/approvals/")
    assert b'waiting for you"' not in own.content


def test_approver_approves_from_the_ui_and_the_certificate_is_issued(
    personas: Any, application: Any, tls_profile: Any
) -> None:
    _policy(application)
    held = _submit(application, tls_profile, personas["operator"], ["a.example.test"]).request
    client = _client(personas["admin"])
    assert client.get(f"/approvals/{held.pk}/").status_code == 200
    response = client.post(f"/approvals/{held.pk}/", {"verdict": "approve", "comment": "fine"})
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.state == RequestState.ISSUED
    assert ApprovalDecision.objects.get(flow__request=held).comment == "fine"


def test_requester_sees_no_decision_form_on_own_request(
    personas: Any, application: Any, tls_profile: Any
) -> None:
    _policy(application)
    held = _submit(application, tls_profile, personas["operator"], ["a.example.test"]).request
    client = _client(personas["operator"])
    assert b'value="approve"' not in client.get(f"/approvals/{held.pk}/").content
    client.post(f"/approvals/{held.pk}/", {"verdict": "approve", "comment": ""})
    held.refresh_from_db()
    assert held.state == RequestState.PENDING_APPROVAL


def test_outsider_cannot_see_the_request(personas: Any, application: Any, tls_profile: Any) -> None:
    _policy(application)
    held = _submit(application, tls_profile, personas["operator"], ["a.example.test"]).request
    assert _client(personas["outsider"]).get(f"/approvals/{held.pk}/").status_code == 404


def test_admin_creates_a_two_step_policy_from_the_ui(personas: Any, application: Any) -> None:
    client = _client(personas["admin"])
    url = "/applications/payments-api/approvals/new/"
    assert client.get(url).status_code == 200
    form = {
        "name": "prod",
        "is_active": "on",
        "trigger": "conditions",
        "on_wildcard": "on",
        "steps-TOTAL_FORMS": "2",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "10",
        "steps-0-required": "1",
        "steps-0-users": [str(personas["auditor"].pk)],
        "steps-1-required": "1",
        "steps-1-role": "admin",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = application.approval_policies.get()
    assert [(s.required, s.approver_role) for s in policy.steps.all()] == [(1, ""), (1, "admin")]
    listing = client.get("/applications/payments-api/approvals/")
    assert b"prod" in listing.content and b"Approval policies" in listing.content


@pytest.mark.parametrize("persona", ["operator", "auditor", "outsider"])
def test_policy_pages_are_for_application_admins(personas: Any, persona: str) -> None:
    client = _client(personas[persona])
    assert client.get("/applications/payments-api/approvals/").status_code == 404
    assert client.post("/applications/payments-api/approvals/new/", {}).status_code == 404
