"""Concurrent renewals of one certificate on PostgreSQL: exactly one successor, the others
refused as ``already_renewed``, no IntegrityError, and the sweep records no failure."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from certportal.models import OutboxEvent
from issuance import renewal, services
from issuance.models import Certificate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _held(application: Any, tls_profile: Any, actor: Any, name: str) -> Certificate:
    spec = services.KeySpec(algorithm="EC_P256", common_name=name)
    certificate = services.submit(
        application=application, profile=tls_profile, method="ui", actor=actor, key_spec=spec
    ).certificate
    assert certificate is not None
    return certificate


def _renew(pk: Any, actor: Any) -> services.Submission | services.IssuanceRejected:
    try:
        return services.renew(Certificate.objects.get(pk=pk), actor=actor, method="ui")
    except services.IssuanceRejected as refused:
        return refused
    finally:
        connections.close_all()


def test_concurrent_manual_renewals_of_one_certificate_one_wins(
    application: Any, tls_profile: Any, actor: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass of scripts/test.sh")
    certificate = _held(application, tls_profile, actor, "race.example.test")
    start = threading.Barrier(6)

    def attempt(_: int) -> services.Submission | services.IssuanceRejected:
        start.wait()
        return _renew(certificate.pk, actor)

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    won = [o for o in outcomes if isinstance(o, services.Submission)]
    refused = [o for o in outcomes if isinstance(o, services.IssuanceRejected)]
    assert len(won) == 1 and len(refused) == 5
    assert {r.code for r in refused} == {"already_renewed"}
    assert won[0].certificate is not None
    assert all(won[0].certificate.serial_number in r.message for r in refused)
    assert Certificate.objects.filter(replaces=certificate).count() == 1


def test_manual_renewal_racing_the_sweep_renews_once(
    application: Any, tls_profile: Any, actor: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass of scripts/test.sh")
    certificates = [
        _held(application, tls_profile, actor, f"sweep{i}.example.test") for i in range(6)
    ]
    now = timezone.now()
    for certificate in certificates:  # one due at a time: each round races for one
        Certificate.objects.filter(pk=certificate.pk).update(
            next_renewal_attempt_at=now - timedelta(minutes=1)
        )
        start = threading.Barrier(2)

        def sweep(start: threading.Barrier = start) -> renewal.BatchResult:
            start.wait()
            try:
                return renewal.renew_batch(now=now, batch=10)
            finally:
                connections.close_all()

        def manual(start: threading.Barrier = start, pk: Any = certificate.pk) -> Any:
            start.wait()
            return _renew(pk, actor)

        with ThreadPoolExecutor(max_workers=2) as pool:
            swept, renewed = pool.submit(sweep), pool.submit(manual)
            result, outcome = swept.result(), renewed.result()
        assert result.failed == 0
        assert Certificate.objects.filter(replaces=certificate).count() == 1
        manual_won = isinstance(outcome, services.Submission)
        assert manual_won or outcome.code == "already_renewed"
        assert result.renewed == (0 if manual_won else 1)
    assert not OutboxEvent.objects.filter(event_type="certificate.renewal_failed").exists()
