"""The ACME account lookup's per-process cache: with Redis a signed request reads its
account from the database once, and every change to an account (its own, or another
process's committed one) is seen by the very next request; without Redis nothing is
cached."""

from __future__ import annotations

import josepy as jose
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from certportal import generation
from issuance.acme.models import Account

pytestmark = pytest.mark.django_db

ERR = "urn:ietf:params:acme:error:"


@pytest.fixture
def cached(redis_cache, settings):
    settings.CERTPORTAL_CONFIG_CACHE_SECONDS = 60


def _account_reads(ctx: CaptureQueriesContext) -> int:
    return sum('FROM "acme_account"' in q["sql"] for q in ctx.captured_queries)


def _read_account(acme) -> tuple[int, int]:
    """POST-as-GET the account: (status code, database reads of accounts)."""
    with CaptureQueriesContext(connection) as ctx:
        response = acme.post(acme.kid, None)
    return response.status_code, _account_reads(ctx)


def test_with_redis_a_signed_request_reads_its_account_once(cached, acme, eab):
    acme.register(eab)
    assert _read_account(acme) == (200, 1)
    assert _read_account(acme) == (200, 0)
    assert _read_account(acme) == (200, 0)


def test_without_redis_every_signed_request_reads_its_account(settings, acme, eab):
    settings.CERTPORTAL_CONFIG_CACHE_SECONDS = 60
    acme.register(eab)
    assert _read_account(acme) == (200, 1)
    assert _read_account(acme) == (200, 1)


def test_deactivation_is_seen_by_the_next_request(cached, acme, eab):
    acme.register(eab)
    assert _read_account(acme) == (200, 1)
    assert acme.post(acme.kid, {"status": "deactivated"}).status_code == 200
    refused = acme.new_order("a.example.test")
    assert refused.status_code == 401  # RFC 8555 7.3.6
    assert refused.json()["type"] == ERR + "unauthorized"


def test_the_old_key_stops_working_at_once_after_a_key_change(cached, acme, eab):
    acme.register(eab)
    assert acme.new_order("a.example.test").status_code == 201  # the account is cached
    new_key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    assert acme.change_key(new_key).status_code == 200
    old = acme.new_order("b.example.test")
    assert old.status_code == 400
    assert old.json()["type"] == ERR + "malformed"
    acme.key = new_key
    assert acme.new_order("b.example.test").status_code == 201


def test_a_change_committed_by_another_process_is_seen_through_redis(cached, acme, eab):
    acme.register(eab)
    assert _read_account(acme) == (200, 1)
    account_id = acme.kid.rsplit("/", 1)[-1]
    Account.objects.filter(pk=account_id).update(status="revoked")  # another process ...
    assert _read_account(acme) == (200, 0)  # ... before its commit: not yet visible
    cache.incr(generation.KEY)  # ... and what its commit does
    refused = acme.new_order("a.example.test")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


def test_callers_cannot_change_the_cached_account(cached, acme, eab):
    acme.register(eab)
    assert acme.post(acme.kid, {"contact": ["mailto:new@example.test"]}).status_code == 200
    body = acme.post(acme.kid, None).json()
    assert body["contact"] == ["mailto:new@example.test"]
    assert _read_account(acme) == (200, 0)


def test_an_orders_links_follow_a_renamed_profile(cached, acme, eab, tls_profile):
    acme.register(eab)
    order_url = acme.new_order("a.example.test")["Location"]
    assert "/tls-server/directory" in acme.post(order_url, None)["Link"]
    tls_profile.slug = "tls-renamed"
    tls_profile.save()
    assert "/tls-renamed/directory" in acme.post(order_url, None)["Link"]


def test_a_signed_request_reads_the_generation_once(cached, acme, eab, generation_reads):
    acme.register(eab)
    nonce = acme.nonce()
    generation_reads.clear()
    assert acme.post(acme.kid, None, nonce=nonce).status_code == 200
    assert generation_reads == [1]  # read once per request, by certportal.generation only
    assert acme.post(acme.kid, None, nonce=nonce).json()["type"] == ERR + "badNonce"
