"""The nav badge: one COUNT query that answers what the inbox's length answers."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from applications.choices import Role
from approvals import services
from approvals.inbox import waiting_count
from certportal.events import Actor
from issuance import services as issuance

ACTOR = Actor(label="pytest")
pytestmark = pytest.mark.django_db


def _hold(application: Any, profile: Any, user: Any, name: str) -> Any:
    spec = issuance.KeySpec("EC_P256", name, [name])
    return issuance.submit(
        application=application,
        profile=profile,
        method="api",
        actor=Actor(user=user),
        key_spec=spec,
    ).request


def _same_as_the_inbox(personas: dict[str, Any]) -> dict[str, int]:
    counts = {}
    for name, user in personas.items():
        counts[name] = waiting_count(user)
        assert counts[name] == len(services.inbox(user)), name
    return counts


def test_the_count_is_the_inbox_length_for_every_persona_and_kind_of_step(
    personas: dict[str, Any], application: Any, tls_profile: Any
) -> None:
    steps = [
        services.StepSpec(required=1, role=Role.ADMIN),
        services.StepSpec(required=1, users=[personas["auditor"]]),
    ]
    services.save_policy(application, services.PolicySpec(name="two", steps=steps), actor=ACTOR)
    first = _hold(application, tls_profile, personas["operator"], "a.example.test")
    _hold(application, tls_profile, personas["operator"], "b.example.test")
    _hold(application, tls_profile, personas["admin"], "c.example.test")

    counts = _same_as_the_inbox(personas)
    # The admin may decide the operator's two, not its own; the auditor's step comes later.
    assert (counts["admin"], counts["auditor"], counts["operator"]) == (2, 0, 0)
    assert counts["outsider"] == counts["anonymous"] == 0

    services.decide(first, user=personas["admin"], verdict="approve", comment="", actor=ACTOR)
    counts = _same_as_the_inbox(personas)
    assert (counts["admin"], counts["auditor"]) == (1, 1)  # named on the second step


def test_the_badge_is_one_count_query(
    personas: dict[str, Any], application: Any, tls_profile: Any
) -> None:
    services.save_policy(
        application,
        services.PolicySpec(name="p", steps=[services.StepSpec(required=1, role=Role.ADMIN)]),
        actor=ACTOR,
    )
    for i in range(5):
        _hold(application, tls_profile, personas["operator"], f"h{i}.example.test")
    admin = personas["admin"]
    waiting_count(admin)  # content types are cached per process

    with CaptureQueriesContext(connection) as ctx:
        assert waiting_count(admin) == 5
    assert len(ctx.captured_queries) == 1
    assert ctx.captured_queries[0]["sql"].startswith("SELECT COUNT(")

    client = Client()
    client.force_login(admin)
    page = client.get("/")
    assert b'aria-label="5 waiting for you"' in page.content
