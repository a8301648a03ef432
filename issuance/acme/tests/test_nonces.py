"""Nonces on both stores: single use, forgery and expiry refused, nothing written on issue."""

from __future__ import annotations

import base64
import time

import pytest
import time_machine

from issuance.acme import nonces
from issuance.acme.models import Nonce

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["database", "redis"])
def store(request):
    if request.param == "redis":
        request.getfixturevalue("redis_cache")
    return request.param


def test_a_nonce_is_good_once(store):
    nonce = nonces.issue()
    assert Nonce.objects.count() == 0  # issuing writes nothing
    assert nonces.consume(nonce) is True
    assert nonces.consume(nonce) is False
    assert Nonce.objects.count() == (1 if store == "database" else 0)


def test_nonces_are_distinct_and_short(store):
    issued = {nonces.issue() for _ in range(200)}
    assert len(issued) == 200
    assert all(len(n) <= 64 and "=" not in n for n in issued)


def test_forged_and_tampered_nonces_are_refused(store):
    raw = bytearray(base64.urlsafe_b64decode(nonces.issue() + "=="))
    raw[0] ^= 0x01  # move the expiry: the MAC no longer matches
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert nonces.consume(tampered) is False
    for junk in [
        "",
        "x" * 65,
        "!!!!",
        "bm90LWlzc3VlZA",
        base64.urlsafe_b64encode(b"0" * 40).decode(),
    ]:
        assert nonces.consume(junk) is False


def test_an_expired_nonce_is_refused(store, settings):
    nonce = nonces.issue()
    with time_machine.travel(time.time() + settings.CERTPORTAL_ACME_NONCE_LIFETIME_SECONDS + 1):
        assert nonces.consume(nonce) is False


def test_another_secret_key_invalidates_nonces(store, settings):
    nonce = nonces.issue()
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    assert nonces.consume(nonce) is False


def test_purge_drops_expired_records(settings):
    nonce = nonces.issue()
    assert nonces.consume(nonce)
    assert nonces.purge_expired() == 0
    with time_machine.travel(time.time() + settings.CERTPORTAL_ACME_NONCE_LIFETIME_SECONDS + 1):
        assert nonces.purge_expired() == 1
