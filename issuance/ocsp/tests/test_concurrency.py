"""A refresh and a revocation of the same certificate at once: the revocation wins.

PostgreSQL only: SQLite runs one writer at a time, so the interleaving cannot happen.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from cryptography.x509 import ocsp
from django.db import connection
from django.utils import timezone

from issuance.models import Certificate
from issuance.ocsp import signing
from issuance.ocsp.models import OCSPResponse
from issuance.services import revoke

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs concurrent writers (PostgreSQL)"
    ),
]


def _in_thread(target: Any, errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_revocation_during_a_refresh_is_not_overwritten(
    leaf: Certificate, actor: Any, monkeypatch: Any
) -> None:
    """The refresh has locked the row, read "good" and written its new answer, not yet
    committed; the revocation commits the certificate's status, waits for the row, and
    its answer is the one that stays."""
    resigned, proceed = threading.Event(), threading.Event()
    original = signing._resign

    def resign_then_wait(rows: Any, now: Any) -> int:
        done = original(rows, now)
        resigned.set()
        assert proceed.wait(10)
        return done

    monkeypatch.setattr(signing, "_resign", resign_then_wait)
    errors: list[BaseException] = []
    later = timezone.now() + timedelta(hours=11)
    refresh = _in_thread(lambda: signing.refresh_due(now=later), errors)
    assert resigned.wait(10)
    certificate = Certificate.objects.get(pk=leaf.pk)
    revocation = _in_thread(
        lambda: revoke(certificate, reason="keyCompromise", actor=actor), errors
    )
    revocation.join(1)
    assert revocation.is_alive()  # waiting for the refresh's row lock
    proceed.set()
    refresh.join(10)
    revocation.join(10)
    assert not errors, errors
    row = OCSPResponse.objects.get(serial_number=leaf.serial_number)
    answer = ocsp.load_der_ocsp_response(bytes(row.response_der))
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
