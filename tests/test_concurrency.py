"""Concurrent issuance on PostgreSQL: 200 certificates, 200 distinct serials, no error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from issuance.models import Certificate
from issuance.services import submit

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

N = 200


def test_200_concurrent_issuances_get_distinct_serials(application, tls_profile, make_csr, actor):
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass of scripts/test.sh")
    csrs = [make_csr(f"host{i}.example.test") for i in range(N)]

    def issue(csr: bytes) -> str:
        try:
            return submit(
                application=application, profile=tls_profile, method="api", actor=actor, csr=csr
            ).certificate.serial_number
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=16) as pool:
        serials = list(pool.map(issue, csrs))
    assert len(serials) == N
    assert len(set(serials)) == N
    assert Certificate.objects.filter(application=application).count() == N
    assert Certificate.objects.values("serial_number").distinct().count() == N
