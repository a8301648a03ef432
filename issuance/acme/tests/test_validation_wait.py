"""The challenge POST waits briefly (with Redis) for the worker's verdict; the validation
still runs in the worker, never in the request."""

from __future__ import annotations

import threading
import time
from typing import Any

import josepy as jose
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from certportal import wakeups
from issuance.acme import services
from issuance.acme.services import challenges
from issuance.acme.tests.support import http01_responder

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_wakeup_is_delivered_once_with_its_message(redis_cache):
    wakeups.notify("k", "done")
    assert wakeups.wait("k", 1) == "done"
    started = time.monotonic()
    assert wakeups.wait("k", 0.05) is None
    assert time.monotonic() - started >= 0.04


@pytest.fixture
def worker_later(monkeypatch):
    """Validation queued to a 'worker' thread that starts 150 ms later, as a real
    cluster would (off the request path); the request thread never validates."""
    request_thread = threading.get_ident()
    ran_in: list[int] = []

    def run(challenge_id: str) -> None:
        ran_in.append(threading.get_ident())
        try:
            services.validate_challenge(challenge_id)
        finally:
            connection.close()

    monkeypatch.setattr(
        challenges, "_queue_validation", lambda cid: threading.Timer(0.15, run, [cid]).start()
    )
    yield ran_in
    assert ran_in and request_thread not in ran_in


def answer(acme, *, respond: bool = True) -> tuple[Any, float]:
    """Answer an http-01 challenge (with a responder serving the right key authorization,
    or none): the response to the challenge POST and how long it took."""
    order = acme.new_order("app.example.test").json()
    authz = acme.post(order["authorizations"][0], None).json()
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    thumbprint = jose.encode_b64jose(acme.key.thumbprint())
    answers = {challenge["token"]: f"{challenge['token']}.{thumbprint}"} if respond else {}
    with http01_responder(answers):
        started = time.monotonic()
        with CaptureQueriesContext(connection) as queries:
            answered = acme.post(challenge["url"], {})
        elapsed = time.monotonic() - started
        time.sleep(0.3)  # let the worker finish before the responder goes
    # The verdict comes with the wake-up: the request reads the challenge only once.
    reads = [q for q in queries.captured_queries if 'FROM "acme_challenge"' in q["sql"]]
    assert len(reads) == 1, reads
    return answered, elapsed


def test_the_answer_says_valid_when_the_worker_settles_in_time(
    acme, eab, acme_settings, redis_cache, worker_later
):
    acme.register(eab)
    answered, elapsed = answer(acme)
    body = answered.json()
    assert body["status"] == "valid"
    assert body["validated"].endswith("Z")
    assert "Retry-After" not in answered
    assert 0.1 < elapsed < acme_settings.CERTPORTAL_ACME_VALIDATION_WAIT_MS / 1000 + 0.3


def test_the_answer_carries_the_workers_invalid_verdict_and_its_error(
    acme, eab, acme_settings, redis_cache, worker_later
):
    acme.register(eab)
    answered, _ = answer(acme, respond=False)
    body = answered.json()
    assert body["status"] == "invalid"
    assert body["error"]["type"].startswith("urn:ietf:params:acme:error:")
    assert "Retry-After" not in answered


def test_without_waiting_the_answer_says_processing(
    acme, eab, acme_settings, redis_cache, worker_later
):
    acme_settings.CERTPORTAL_ACME_VALIDATION_WAIT_MS = 0
    acme.register(eab)
    answered, elapsed = answer(acme)
    assert answered.json()["status"] == "processing"
    assert answered["Retry-After"] == "1"
    assert elapsed < 0.15
