"""Two authorizations of one order validated at the same moment by two workers: the
order still becomes ready (PostgreSQL; SQLite serializes writers anyway)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from issuance.acme import services
from issuance.acme.models import Account, Authorization, Challenge, Order
from issuance.acme.services import challenges as challenge_services

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_order_whose_authorizations_settle_together_becomes_ready(
    application, tls_profile, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass of scripts/test.sh")
    account = Account.objects.create(
        application=application, profile=tls_profile, jwk={}, thumbprint="t" * 43
    )
    expires = timezone.now() + timedelta(hours=1)
    names = ["a.example.test", "b.example.test"]
    order = Order.objects.create(
        account=account,
        profile=tls_profile,
        identifiers=[{"type": "dns", "value": n} for n in names],
        expires_at=expires,
    )
    challenges = [
        Challenge.objects.create(
            authorization=Authorization.objects.create(
                order=order, identifier_type="dns", identifier_value=n, expires_at=expires
            ),
            type="http-01",
            status="processing",
        )
        for n in names
    ]
    monkeypatch.setattr(challenge_services, "_run_check", lambda *args: None)  # both checks pass
    decide = challenge_services._ready_if_all_valid
    decided: list[str] = []

    def slow_decide(order_id: str) -> None:
        decided.append(order_id)
        time.sleep(0.3)  # both workers are past their own update before either decides
        decide(order_id)

    monkeypatch.setattr(challenge_services, "_ready_if_all_valid", slow_decide)

    def validate(challenge_id: str) -> None:
        try:
            services.validate_challenge(challenge_id)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=validate, args=[c.pk]) for c in challenges]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert set(Authorization.objects.filter(order=order).values_list("status", flat=True)) == {
        "valid"
    }
    assert decided == [order.pk, order.pk]
    order.refresh_from_db()
    assert order.status == "ready"
