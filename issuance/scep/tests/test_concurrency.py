"""Concurrent SCEP requests on PostgreSQL: a one-time challenge presented by several
devices at once enrolls exactly one of them; the same transaction sent at once twice
gives one certificate."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from issuance.models import Certificate
from issuance.scep import services
from issuance.scep.models import ScepEnrollment
from issuance.scep.tests.conftest import ACTOR, STATIC
from issuance.scep.tests.support import Device, ScepClient
from pki.scep import PKIStatus

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

URL = "/scep/payments-api/tls-server/pkiclient.exe"


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass of scripts/test.sh")


def _statuses(bodies: list[tuple[Device, bytes]], scep: ScepClient) -> list[str]:
    def send(item: tuple[Device, bytes]) -> str:
        device, body = item
        try:
            own = ScepClient(Client(), URL)
            own._ra = scep.ra
            return own.reply(device, own.send(body)).status
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_one_time_challenge_raced_by_eight_devices_enrolls_one(
    enrollment: ScepEnrollment, client: Any
) -> None:
    from issuance.scep.tests.support import csr_der
    from pki.scep import MessageType

    _, secret = services.mint_challenge(enrollment, actor=ACTOR)
    scep = ScepClient(client, URL)
    devices = [Device(f"race{i}.example.test") for i in range(8)]
    bodies = [
        (d, scep.message(d, MessageType.PKCS_REQ, csr_der(d.key, d.cn, secret))) for d in devices
    ]
    statuses = _statuses(bodies, scep)
    assert statuses.count(PKIStatus.SUCCESS) == 1, statuses
    assert statuses.count(PKIStatus.FAILURE) == 7
    assert Certificate.objects.count() == 1


def test_same_transaction_sent_twice_at_once_gives_one_certificate(
    enrollment: ScepEnrollment, client: Any
) -> None:
    from issuance.scep.tests.support import csr_der
    from pki.scep import MessageType

    scep = ScepClient(client, URL)
    device = Device("twice.example.test")
    body = scep.message(device, MessageType.PKCS_REQ, csr_der(device.key, device.cn, STATIC))
    statuses = _statuses([(device, body)] * 4, scep)
    assert statuses == [PKIStatus.SUCCESS] * 4
    assert Certificate.objects.count() == 1
