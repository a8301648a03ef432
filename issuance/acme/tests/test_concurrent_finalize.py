"""Two finalize requests for one ready order at the same moment (PostgreSQL; SQLite
serializes writers anyway): one certificate is issued, the other request fails with
orderNotReady and leaves nothing behind."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import josepy as jose
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection, connections
from django.utils import timezone

from issuance.acme import services
from issuance.acme.messages import AcmeProblem
from issuance.acme.models import Account, Authorization, Order
from issuance.acme.services import finalization
from issuance.acme.tests.test_flow import csr_der
from issuance.models import Certificate, CertificateRequest

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_finalizes_of_one_order_issue_one_certificate(application, tls_profile, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass of scripts/test.sh")
    account = Account.objects.create(
        application=application, profile=tls_profile, jwk={}, thumbprint="t" * 43
    )
    expires = timezone.now() + timedelta(hours=1)
    order = Order.objects.create(
        account=account,
        profile=tls_profile,
        identifiers=[{"type": "dns", "value": "a.example.test"}],
        expires_at=expires,
        status="ready",
    )
    Authorization.objects.create(
        order=order,
        identifier_type="dns",
        identifier_value="a.example.test",
        expires_at=expires,
        status="valid",
    )
    record = finalization._record_finalized
    slowed: list[str] = []

    def slow_record(*args, **kwargs):
        slowed.append("recording")
        time.sleep(0.3)  # both requests have signed and written before either settles
        return record(*args, **kwargs)

    monkeypatch.setattr(finalization, "_record_finalized", slow_record)
    payload = json.dumps({"csr": jose.encode_b64jose(csr_der("a.example.test"))}).encode()
    outcomes: list[str] = []

    def finalize() -> None:
        key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        auth = services.Authenticated(key=key, account=account, payload=payload, source_ip=None)
        try:
            mine = Order.objects.select_related("account__application").get(pk=order.pk)
            outcomes.append(services.finalize(mine, auth).status)
        except AcmeProblem as problem:
            outcomes.append(problem.kind)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=finalize) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert sorted(outcomes) == ["orderNotReady", "valid"]
    assert slowed == ["recording", "recording"]  # both reached the outcome at once
    order.refresh_from_db()
    assert order.status == "valid"
    assert list(Certificate.objects.values_list("pk", flat=True)) == [order.certificate_id]
    assert CertificateRequest.objects.count() == 1
