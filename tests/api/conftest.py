"""API fixtures: a token per persona and DRF clients that present it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from applications import services as members
from certportal.api import services as credentials
from certportal.events import Actor


@pytest.fixture
def tokens(personas: dict[str, Any]) -> dict[str, str]:
    """A fresh bearer token for every persona except anonymous."""
    return {
        name: credentials.create_token(user, name=f"{name} token", actor=Actor(label="pytest"))[1]
        for name, user in personas.items()
        if user is not None
    }


@pytest.fixture
def api(tokens: dict[str, str]) -> Callable[[str], APIClient]:
    def client_for(persona: str) -> APIClient:
        client = APIClient()
        if persona in tokens:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[persona]}")
        return client

    return client_for


@pytest.fixture
def world(
    personas: dict[str, Any], application: Any, tls_profile: Any, make_csr: Any, make_user: Any
) -> Any:
    """Objects the endpoints act on: a certificate with a held key, a policy that holds
    requests for pending.example.test, one held request (by the operator), a service account."""
    from types import SimpleNamespace

    from applications.choices import Role
    from approvals import services as approvals
    from approvals.choices import Trigger
    from issuance import services as issuance

    operator = Actor(user=personas["operator"])
    make_user("newbie")
    issued = issuance.submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=operator,
        key_spec=issuance.KeySpec("EC_P256", "svc.example.test", ["svc.example.test"]),
    )
    policy = approvals.save_policy(
        application,
        approvals.PolicySpec(
            name="pending names",
            trigger=Trigger.CONDITIONS,
            on_san_patterns=["pending.example.test"],
            steps=[approvals.StepSpec(required=1, role=Role.ADMIN)],
        ),
        actor=operator,
    )
    held = issuance.submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=operator,
        csr=make_csr("pending.example.test", ["pending.example.test"]),
    )
    assert held.pending
    account = members.create_service_account(
        application, name="ci", role=Role.OPERATOR, actor=operator
    )
    from issuance.est import services as est

    enrollment = est.save_enrollment(
        application, est.EnrollmentSpec(profile=tls_profile), actor=operator
    )
    est_credential, _ = est.create_credential(enrollment, username="device", actor=operator)
    from alerts import services as alerts
    from alerts.models import AlertRule

    channel = alerts.save_channel(
        application,
        name="ops",
        kind="email",
        config={"recipients": ["ops@example.test"]},
        secrets={},
        actor=operator,
    )
    from issuance.acme import services as acme

    acme.create_eab_key(application, name="ci", actor=operator)
    alerts.save_rule(
        application, AlertRule(name="expiry", thresholds_days=[7]), [channel.pk], actor=operator
    )
    return SimpleNamespace(
        certificate=issued.certificate,
        request=held.request,
        policy=policy,
        account=account,
        est_credential=est_credential,
    )


@pytest.fixture(autouse=True)
def fresh_throttle_buckets() -> None:
    """Row ids repeat across rolled-back tests; so would their throttle buckets."""
    from django.core.cache import cache

    cache.clear()
