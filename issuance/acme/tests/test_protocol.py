"""The ACME server through Django's test client: directory, nonces, accounts, orders,
JWS checks and problem documents."""

from __future__ import annotations

import json
import time

import josepy as jose
import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from applications.models import AuditEvent
from applications.services import create_application
from certportal.events import Actor
from issuance.acme import jws, services
from issuance.acme.models import Account, ExternalAccountKey, Nonce
from issuance.acme.tests.conftest import AcmeSession

pytestmark = pytest.mark.django_db

ERR = "urn:ietf:params:acme:error:"


def problem_type(response) -> str:
    assert response["Content-Type"] == "application/problem+json", response.content
    return response.json()["type"].removeprefix(ERR)


def test_directory_lists_resources_and_requires_eab(acme):
    response = acme.client.get(acme.base + "/directory")
    body = response.json()
    assert response.status_code == 200
    assert body["newAccount"] == acme.base + "/new-account"
    assert body["renewalInfo"] == acme.base + "/renewal-info"
    assert body["meta"]["externalAccountRequired"] is True
    assert body["meta"]["termsOfService"].endswith("/acme/terms")
    assert list(body["meta"]["profiles"]) == ["tls-server"]
    assert response["Replay-Nonce"]


def test_directory_of_profile_not_attached_is_not_found(acme, make_profile, issuing_ca):
    make_profile("unattached", issuing_ca)
    response = acme.client.get(acme.base.replace("tls-server", "unattached") + "/directory")
    assert response.status_code == 404
    assert problem_type(response) == "malformed"


def test_new_nonce_head_and_get_give_fresh_nonces(acme):
    head = acme.client.head(acme.directory["newNonce"])
    get = acme.client.get(acme.directory["newNonce"])
    assert (head.status_code, get.status_code) == (200, 204)
    assert head["Replay-Nonce"] != get["Replay-Nonce"]
    assert head["Cache-Control"] == "no-store"
    assert 'rel="index"' in head["Link"]


def test_new_account_without_eab_is_refused(acme):
    response = acme.post(acme.directory["newAccount"], {"termsOfServiceAgreed": True}, use_jwk=True)
    assert response.status_code == 400
    assert problem_type(response) == "externalAccountRequired"
    assert response["Replay-Nonce"]
    assert not Account.objects.exists()


def test_new_account_with_wrong_hmac_is_refused(acme, eab):
    wrong = jose.encode_b64jose(b"x" * 32)
    response = acme.register((eab[0], wrong))
    assert response.status_code == 403
    assert problem_type(response) == "unauthorized"
    assert not Account.objects.exists()


def test_new_account_with_unknown_or_revoked_eab_is_refused(acme, eab):
    assert problem_type(acme.register(("no-such-kid", eab[1]))) == "unauthorized"
    services.revoke_eab_key(ExternalAccountKey.objects.get(), actor=Actor(label="t"))
    assert problem_type(acme.register(eab)) == "unauthorized"
    assert not Account.objects.exists()


def test_eab_bound_to_another_account_key_is_refused(acme, eab):
    other = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    payload = {
        "termsOfServiceAgreed": True,
        "externalAccountBinding": acme.eab_binding(*eab, key=other),
    }
    response = acme.post(acme.directory["newAccount"], payload, use_jwk=True)
    assert problem_type(response) == "malformed"


def test_new_account_is_created_bound_and_audited(acme, eab, application):
    response = acme.register(eab)
    assert response.status_code == 201
    account = Account.objects.get()
    assert response["Location"] == f"http://testserver/acme/{application.name}/acct/{account.id}"
    assert account.application == application
    assert account.contact == ["mailto:ops@example.test"]
    assert response.json()["status"] == "valid"
    assert AuditEvent.objects.filter(action="acme.account_created", object_id=account.id).exists()
    # The same key again returns the same account (200), without EAB.
    again = acme.post(acme.directory["newAccount"], {"onlyReturnExisting": True}, use_jwk=True)
    assert again.status_code == 200
    assert again["Location"] == response["Location"]


def test_only_return_existing_for_unknown_key(acme):
    response = acme.post(acme.directory["newAccount"], {"onlyReturnExisting": True}, use_jwk=True)
    assert problem_type(response) == "accountDoesNotExist"


@pytest.mark.parametrize(
    "private_key",
    [
        lambda: jose.JWKRSA(key=rsa.generate_private_key(65537, 2048)),
        lambda: jose.JWKEC(key=ec.generate_private_key(ec.SECP384R1())),
        lambda: jws.JWKOKP(key=ed25519.Ed25519PrivateKey.generate()),
    ],
    ids=["RS256", "ES384", "EdDSA"],
)
def test_accounts_with_each_algorithm(client, application, eab, private_key):
    session = AcmeSession(client, application.name, key=private_key())
    assert session.register(eab).status_code == 201
    assert session.new_order("a.example.test").status_code == 201


def test_contact_update_and_deactivation(acme, eab):
    acme.register(eab)
    updated = acme.post(acme.kid, {"contact": ["mailto:new@example.test"]})
    assert updated.json()["contact"] == ["mailto:new@example.test"]
    bad = acme.post(acme.kid, {"contact": ["tel:+1555"]})
    assert problem_type(bad) == "unsupportedContact"
    gone = acme.post(acme.kid, {"status": "deactivated"})
    assert gone.json()["status"] == "deactivated"
    after = acme.new_order("a.example.test")
    assert after.status_code == 401  # RFC 8555 7.3.6
    assert problem_type(after) == "unauthorized"


def test_replayed_nonce_is_refused_with_a_fresh_one(acme, eab):
    acme.register(eab)
    nonce = acme.nonce()
    first = acme.post(acme.kid, None, nonce=nonce)
    replay = acme.post(acme.kid, None, nonce=nonce)
    assert first.status_code == 200
    assert replay.status_code == 400
    assert problem_type(replay) == "badNonce"
    assert replay["Replay-Nonce"] and replay["Replay-Nonce"] != nonce


def test_unknown_nonce_is_refused(acme, eab):
    acme.register(eab)
    assert problem_type(acme.post(acme.kid, None, nonce="bm90LWlzc3VlZA")) == "badNonce"


def test_expired_nonce_is_refused(acme, eab, settings):
    acme.register(eab)
    nonce = acme.nonce()
    used = Nonce.objects.count()
    later = time.time() + settings.CERTPORTAL_ACME_NONCE_LIFETIME_SECONDS + 1
    with time_machine.travel(later, tick=False):
        assert problem_type(acme.post(acme.kid, None, nonce=nonce)) == "badNonce"
    assert Nonce.objects.count() == used  # refused before it was recorded as used


def test_url_mismatch_is_unauthorized(acme, eab):
    acme.register(eab)
    response = acme.post(acme.kid, None, signed_url=acme.directory["newOrder"])
    assert response.status_code == 401
    assert problem_type(response) == "unauthorized"


def _raw_jws(protected: dict, payload: bytes = b"{}", signature: bytes = b"") -> str:
    return json.dumps(
        {
            "protected": jose.encode_b64jose(json.dumps(protected).encode()),
            "payload": jose.encode_b64jose(payload),
            "signature": jose.encode_b64jose(signature),
        }
    )


@pytest.mark.parametrize("alg", ["none", "HS256", "RS512", "PS256"])
def test_unaccepted_algorithms_are_refused(acme, eab, alg):
    acme.register(eab)
    url = acme.directory["newOrder"]
    body = _raw_jws({"alg": alg, "nonce": acme.nonce(), "url": url, "kid": acme.kid})
    response = acme.client.post(url, data=body, content_type="application/jose+json")
    assert problem_type(response) == "badSignatureAlgorithm"


def test_bad_signature_is_refused(acme, eab):
    acme.register(eab)
    url = acme.directory["newOrder"]
    body = _raw_jws(
        {"alg": "ES256", "nonce": acme.nonce(), "url": url, "kid": acme.kid}, signature=b"0" * 64
    )
    response = acme.client.post(url, data=body, content_type="application/jose+json")
    assert problem_type(response) == "malformed"


def test_jwk_where_kid_is_required_and_the_reverse(acme, eab):
    acme.register(eab)
    with_jwk = acme.post(acme.directory["newOrder"], {"identifiers": []}, use_jwk=True)
    assert problem_type(with_jwk) == "malformed"
    assert "kid" in with_jwk.json()["detail"]
    with_kid = acme.post(acme.directory["newAccount"], {"onlyReturnExisting": True})
    assert problem_type(with_kid) == "malformed"
    assert "jwk" in with_kid.json()["detail"]


def test_payload_size_limit(acme, eab, settings):
    acme.register(eab)
    settings.CERTPORTAL_ACME_MAX_BODY_BYTES = 4096
    response = acme.post(acme.kid, {"contact": ["mailto:a@example.test"], "pad": "x" * 5000})
    assert response.status_code == 413
    assert problem_type(response) == "malformed"


def test_wrong_content_type_is_refused(acme, eab):
    response = acme.client.post(
        acme.directory["newOrder"], data="{}", content_type="application/json"
    )
    assert response.status_code == 415


def test_account_of_another_application_cannot_reach_this_directory(
    client, application, tls_profile, eab
):
    other = create_application(name="other-team", profiles=[tls_profile], actor=Actor(label="t"))
    mine = AcmeSession(client, application.name)
    mine.register(eab)
    theirs = AcmeSession(client, other.name, key=mine.key)
    theirs.kid = mine.kid
    order = theirs.new_order("a.example.test")
    assert problem_type(order) == "accountDoesNotExist"
    # Same key, registering again through the other Application's directory: refused.
    other_eab = services.create_eab_key(other, name="x", actor=Actor(label="t"))
    response = theirs.register((other_eab[0].key_id, other_eab[1]))
    assert problem_type(response) == "unauthorized"
    # And Application A's EAB credential does not open Application B's directory.
    stranger = AcmeSession(client, other.name)
    assert problem_type(stranger.register(eab)) == "unauthorized"


def test_order_for_name_outside_profile_is_rejected_identifier(acme, eab):
    acme.register(eab)
    response = acme.new_order("app.example.test", "evil.example.org")
    assert response.status_code == 400
    assert problem_type(response) == "rejectedIdentifier"


def test_ip_identifier_needs_a_profile_that_allows_it(acme, eab, tls_profile):
    acme.register(eab)
    payload = {"identifiers": [{"type": "ip", "value": "192.0.2.10"}]}
    refused = acme.post(acme.directory["newOrder"], payload)
    assert problem_type(refused) == "rejectedIdentifier"
    tls_profile.ip_cidrs = ["192.0.2.0/24"]
    tls_profile.save()
    allowed = acme.post(acme.directory["newOrder"], payload)
    assert allowed.status_code == 201
    authz = acme.post(allowed.json()["authorizations"][0], None).json()
    assert {c["type"] for c in authz["challenges"]} == {"http-01", "tls-alpn-01"}


def test_wildcard_order_offers_only_dns01(acme, eab):
    acme.register(eab)
    order = acme.new_order("*.example.test")
    assert order.status_code == 201
    authz = acme.post(order.json()["authorizations"][0], None).json()
    assert authz["wildcard"] is True
    assert authz["identifier"] == {"type": "dns", "value": "example.test"}
    assert [c["type"] for c in authz["challenges"]] == ["dns-01"]


def test_new_order_has_location_links_and_expiry(acme, eab):
    acme.register(eab)
    response = acme.new_order("a.example.test", "b.example.test")
    body = response.json()
    assert response.status_code == 201
    assert response["Location"].startswith("http://testserver/acme/payments-api/order/")
    assert body["status"] == "pending"
    assert len(body["authorizations"]) == 2
    assert body["expires"].endswith("Z")
    assert 'rel="index"' in response["Link"]
    orders = acme.post(acme.kid + "/orders", None).json()["orders"]
    assert orders == [response["Location"]]


def test_finalize_before_ready_is_order_not_ready(acme, eab, make_csr):
    acme.register(eab)
    order = acme.new_order("a.example.test").json()
    csr = make_csr("a.example.test", ["a.example.test"])
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_csr(csr).public_bytes(Encoding.DER)
    response = acme.post(order["finalize"], {"csr": jose.encode_b64jose(der)})
    assert response.status_code == 403
    assert problem_type(response) == "orderNotReady"


def test_other_accounts_objects_are_not_found(client, application, reusable_eab):
    first = AcmeSession(client, application.name)
    first.register(reusable_eab)
    order_url = first.new_order("a.example.test")["Location"]
    second = AcmeSession(client, application.name)
    assert second.register(reusable_eab).status_code == 201
    response = second.post(order_url, None)
    assert response.status_code == 404
    assert problem_type(second.post(first.kid, None)) == "unauthorized"


def test_expired_order_becomes_invalid(acme, eab):
    acme.register(eab)
    response = acme.new_order("a.example.test")
    from issuance.acme.models import Order

    Order.objects.update(expires_at="2000-01-01T00:00:00Z")
    body = acme.post(response["Location"], None).json()
    assert body["status"] == "invalid"
    assert services.expire_objects() >= 0


def test_key_change_rolls_the_account_key(acme, eab):
    acme.register(eab)
    new_key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    response = acme.change_key(new_key)
    assert response.status_code == 200, response.content
    old_key_order = acme.new_order("a.example.test")
    assert old_key_order.status_code == 400
    acme.key = new_key
    assert acme.new_order("a.example.test").status_code == 201
    assert AuditEvent.objects.filter(action="acme.account_key_changed").exists()


def test_new_order_may_name_this_directorys_profile_and_no_other(acme, eab):
    acme.register(eab)
    identifiers = [{"type": "dns", "value": "app.example.test"}]
    named = acme.post(
        acme.directory["newOrder"], {"identifiers": identifiers, "profile": "tls-server"}
    )
    assert named.status_code == 201
    other = acme.post(
        acme.directory["newOrder"], {"identifiers": identifiers, "profile": "mtls-client"}
    )
    assert other.status_code == 400
    assert problem_type(other) == "invalidProfile"
    assert "tls-server" in other.json()["detail"]
    typed = acme.post(acme.directory["newOrder"], {"identifiers": identifiers, "profile": 7})
    assert problem_type(typed) == "malformed"


def test_eab_credentials_never_start_with_a_dash(application, monkeypatch):
    """certbot's `--eab-hmac-key VALUE` reads a value starting with "-" as an option:
    the portal draws again (about 1 in 64 draws would)."""
    from issuance.acme import models
    from issuance.acme.services import accounts

    draws = iter([b"\xf8" * 32, b"\x01" * 32])  # the first encodes to "-..."
    ids = iter(["-first", "second"])
    monkeypatch.setattr(accounts.secrets, "token_bytes", lambda n: next(draws))
    monkeypatch.setattr(accounts, "new_token", lambda: next(ids))
    eab, hmac_key = services.create_eab_key(application, name="cli", actor=Actor(label="t"))
    assert eab.key_id == "second"
    assert hmac_key == jose.encode_b64jose(b"\x01" * 32)
    assert not hmac_key.startswith("-")
    assert models.ExternalAccountKey.objects.get(pk=eab.pk).key_id == "second"
