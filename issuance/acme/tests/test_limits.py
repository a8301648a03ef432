"""ACME rate limits: newAccount per source address and per Application, newOrder per
account and per Application, failed validations, the pending-authorization cap; each
refusal a rateLimited problem document with Retry-After. Validation runs on its own
django-q2 queue. Nothing is written before a request's signature is checked."""

from __future__ import annotations

import json

import pytest
from django.test import TestCase
from django_q.conf import Conf
from django_q.models import OrmQ

from issuance.acme.models import Account, Nonce
from issuance.acme.tests.conftest import AcmeSession
from issuance.acme.tests.support import http01_responder, sign


@pytest.fixture
def eab(reusable_eab: tuple[str, str]) -> tuple[str, str]:
    """These tests register several accounts with one credential: a reusable one."""
    return reusable_eab


pytestmark = pytest.mark.django_db

ERR = "urn:ietf:params:acme:error:"


def assert_rate_limited(response, *, within: int) -> None:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == ERR + "rateLimited"
    assert 1 <= int(response["Retry-After"]) <= within
    assert response["Replay-Nonce"]


def test_new_accounts_per_source_address(client, application, eab, settings):
    settings.CERTPORTAL_ACME_NEW_ACCOUNT_RATE_PER_SOURCE = (2, 3600)
    for _ in range(2):
        assert AcmeSession(client, application.name).register(eab).status_code == 201
    refused = AcmeSession(client, application.name).register(eab)
    assert_rate_limited(refused, within=3600)
    assert Account.objects.count() == 2


def test_new_accounts_per_application_count_only_verified_bindings(
    client, application, eab, settings
):
    settings.CERTPORTAL_ACME_NEW_ACCOUNT_RATE_PER_APPLICATION = (1, 60)
    stranger = AcmeSession(client, application.name)
    assert stranger.register((eab[0], "A" * 43)).status_code == 403  # wrong HMAC key
    assert AcmeSession(client, application.name).register(eab).status_code == 201
    assert_rate_limited(AcmeSession(client, application.name).register(eab), within=60)


def test_an_existing_account_is_found_whatever_the_limit(acme, eab, settings):
    settings.CERTPORTAL_ACME_NEW_ACCOUNT_RATE_PER_SOURCE = (1, 3600)
    assert acme.register(eab).status_code == 201
    assert acme.register(eab).status_code == 200


def test_new_orders_per_account(acme, eab, settings):
    settings.CERTPORTAL_ACME_NEW_ORDER_RATE_PER_ACCOUNT = (2, 600)
    acme.register(eab)
    assert acme.new_order("a.example.test").status_code == 201
    assert acme.new_order("b.example.test").status_code == 201
    assert_rate_limited(acme.new_order("c.example.test"), within=600)


def test_new_orders_per_application(client, application, eab, settings):
    settings.CERTPORTAL_ACME_NEW_ORDER_RATE_PER_APPLICATION = (1, 60)
    first, second = AcmeSession(client, application.name), AcmeSession(client, application.name)
    first.register(eab)
    second.register(eab)
    assert first.new_order("a.example.test").status_code == 201
    assert_rate_limited(second.new_order("b.example.test"), within=60)


def test_rate_limits_with_redis_are_shared(acme, eab, settings, redis_cache):
    settings.CERTPORTAL_ACME_NEW_ORDER_RATE_PER_ACCOUNT = (1, 600)
    acme.register(eab)
    assert acme.new_order("a.example.test").status_code == 201
    assert_rate_limited(acme.new_order("b.example.test"), within=600)


def test_pending_authorizations_are_capped_per_account(acme, eab, settings):
    settings.CERTPORTAL_ACME_MAX_PENDING_AUTHORIZATIONS = 3
    acme.register(eab)
    assert acme.new_order("a.example.test", "b.example.test").status_code == 201
    refused = acme.new_order("c.example.test", "d.example.test")
    assert_rate_limited(refused, within=settings.CERTPORTAL_ACME_ORDER_LIFETIME_HOURS * 3600)
    assert "2 pending authorizations" in refused.json()["detail"]
    assert acme.new_order("c.example.test").status_code == 201


def test_deactivated_authorizations_free_the_cap(acme, eab, settings):
    settings.CERTPORTAL_ACME_MAX_PENDING_AUTHORIZATIONS = 1
    acme.register(eab)
    authz_url = acme.new_order("a.example.test").json()["authorizations"][0]
    assert acme.new_order("b.example.test").status_code == 429
    acme.post(authz_url, {"status": "deactivated"})
    assert acme.new_order("b.example.test").status_code == 201


def _fail_one(acme, name: str) -> None:
    authz_url = acme.new_order(name).json()["authorizations"][0]
    authz = acme.post(authz_url, None).json()
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    with http01_responder({challenge["token"]: "wrong"}):
        acme.post(challenge["url"], {})
    assert acme.post(authz_url, None).json()["status"] == "invalid"


def test_failed_validations_per_account_stop_new_orders(client, application, eab, acme_settings):
    acme_settings.CERTPORTAL_ACME_FAILED_VALIDATION_RATE_PER_ACCOUNT = (2, 3600)
    failing = AcmeSession(client, application.name)
    failing.register(eab)
    _fail_one(failing, "a.example.test")
    _fail_one(failing, "b.example.test")
    assert_rate_limited(failing.new_order("c.example.test"), within=3600)
    # Another account of the Application is not held back by this one's failures.
    other = AcmeSession(client, application.name)
    other.register(eab)
    assert other.new_order("c.example.test").status_code == 201


def test_failed_validations_per_application(client, application, eab, acme_settings):
    acme_settings.CERTPORTAL_ACME_FAILED_VALIDATION_RATE_PER_APPLICATION = (1, 60)
    failing = AcmeSession(client, application.name)
    failing.register(eab)
    _fail_one(failing, "a.example.test")
    other = AcmeSession(client, application.name)
    other.register(eab)
    assert_rate_limited(other.new_order("c.example.test"), within=60)


def test_limits_can_be_off(acme, eab, settings):
    settings.CERTPORTAL_ACME_NEW_ORDER_RATE_PER_ACCOUNT = None
    settings.CERTPORTAL_ACME_NEW_ORDER_RATE_PER_APPLICATION = None
    acme.register(eab)
    assert all(acme.new_order(f"n{i}.example.test").status_code == 201 for i in range(5))


def test_validation_is_queued_for_its_own_cluster(acme, eab, settings, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", False)
    acme.register(eab)
    authz_url = acme.new_order("a.example.test").json()["authorizations"][0]
    challenge = next(
        c for c in acme.post(authz_url, None).json()["challenges"] if c["type"] == "http-01"
    )
    acme.post(challenge["url"], {})
    queued = OrmQ.objects.get()
    assert queued.key == settings.CERTPORTAL_ACME_VALIDATION_CLUSTER
    assert queued.key != Conf.CLUSTER_NAME
    assert queued.task["func"] == "issuance.acme.tasks.validate_challenge"


def test_a_bad_signature_writes_no_row_and_leaves_the_nonce_usable(acme, eab):
    url = acme.directory["newAccount"]
    nonce = acme.nonce()
    body = json.loads(
        sign({"termsOfServiceAgreed": True}, key=acme.key, alg=acme.alg, url=url, nonce=nonce)
    )
    body["signature"] = body["signature"][::-1]
    with TestCase.captureOnCommitCallbacks(execute=True):
        refused = acme.client.post(url, data=json.dumps(body), content_type="application/jose+json")
    assert refused.status_code == 400
    assert Nonce.objects.count() == 0
    assert Account.objects.count() == 0
    # The nonce was not used up by the forgery: its owner's real request still works once.
    registered = acme.post(
        url,
        {
            "termsOfServiceAgreed": True,
            "externalAccountBinding": acme.eab_binding(*eab),
        },
        use_jwk=True,
        nonce=nonce,
    )
    assert registered.status_code == 201, registered.content
    replayed = acme.post(url, {"onlyReturnExisting": True}, use_jwk=True, nonce=nonce)
    assert replayed.json()["type"] == ERR + "badNonce"
