"""Problem documents carry what RFC 8555 requires of them: the algorithms on
badSignatureAlgorithm (6.2), a fresh nonce on badNonce (6.5), subproblems naming each
refused identifier (6.7.1), the terms Link on userActionRequired (7.3.3), the holder's
Location on a keyChange conflict (7.3.5), and 405 as a problem document (6.3)."""

from __future__ import annotations

import json

import josepy as jose
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from issuance.acme.jws import ALLOWED_ALGORITHMS
from issuance.acme.tests.conftest import AcmeSession
from issuance.acme.tests.test_malformed_input import _b64


@pytest.fixture
def eab(reusable_eab: tuple[str, str]) -> tuple[str, str]:
    """These tests register several accounts with one credential: a reusable one."""
    return reusable_eab


pytestmark = pytest.mark.django_db

ERR = "urn:ietf:params:acme:error:"
PROBLEM = "application/problem+json"


def test_an_unaccepted_algorithm_lists_the_accepted_ones(acme, eab):
    acme.register(eab)
    url = acme.directory["newOrder"]
    header = {"alg": "HS256", "nonce": acme.nonce(), "url": url, "kid": acme.kid}
    body = {"protected": _b64(json.dumps(header).encode()), "payload": "", "signature": "AA"}
    response = acme.client.post(url, data=json.dumps(body), content_type="application/jose+json")
    assert response.json()["type"] == ERR + "badSignatureAlgorithm"
    assert response.json()["algorithms"] == list(ALLOWED_ALGORITHMS)


def test_an_algorithm_that_does_not_fit_the_key_lists_the_accepted_ones(acme, eab):
    acme.register(eab)
    response = acme.post(acme.directory["newOrder"], {"identifiers": []}, alg=jose.ES384)
    assert response.json()["type"] == ERR + "badSignatureAlgorithm"
    assert response.json()["algorithms"] == list(ALLOWED_ALGORITHMS)


def test_bad_nonce_carries_a_fresh_nonce(acme, eab):
    response = acme.post(acme.directory["newAccount"], {}, use_jwk=True, nonce="AAAA")
    assert response.json()["type"] == ERR + "badNonce"
    assert response["Content-Type"] == PROBLEM
    assert response["Replay-Nonce"] and response["Replay-Nonce"] != "AAAA"


def test_several_refused_identifiers_are_subproblems(acme, eab):
    acme.register(eab)
    identifiers = [
        {"type": "dns", "value": "app.example.test"},
        {"type": "dns", "value": "elsewhere.invalid"},
        {"type": "dns", "value": "also.elsewhere.invalid"},
        {"type": "email", "value": "ops@example.test"},
    ]
    response = acme.post(acme.directory["newOrder"], {"identifiers": identifiers})
    # The identifier of an unsupported type is refused at parsing, alone.
    body = response.json()
    assert body["type"] == ERR + "unsupportedIdentifier"
    assert body["subproblems"] == [
        {
            "type": ERR + "unsupportedIdentifier",
            "detail": body["subproblems"][0]["detail"],
            "identifier": {"type": "email", "value": "ops@example.test"},
        }
    ]
    response = acme.post(acme.directory["newOrder"], {"identifiers": identifiers[:3]})
    body = response.json()
    assert response.status_code == 400
    assert body["type"] == ERR + "rejectedIdentifier"
    assert [s["identifier"]["value"] for s in body["subproblems"]] == [
        "elsewhere.invalid",
        "also.elsewhere.invalid",
    ]
    assert all(s["type"] == ERR + "rejectedIdentifier" for s in body["subproblems"])


def test_refusals_of_different_kinds_are_malformed_with_subproblems(acme, eab):
    acme.register(eab)
    identifiers = [{"type": "ip", "value": "not-an-ip"}, {"type": "uri", "value": "x"}]
    body = acme.post(acme.directory["newOrder"], {"identifiers": identifiers}).json()
    assert body["type"] == ERR + "malformed"
    assert [s["type"] for s in body["subproblems"]] == [
        ERR + "malformed",
        ERR + "unsupportedIdentifier",
    ]


def test_user_action_required_links_the_terms(acme, eab):
    response = acme.post(
        acme.directory["newAccount"],
        {"externalAccountBinding": acme.eab_binding(*eab)},
        use_jwk=True,
    )
    assert response.json()["type"] == ERR + "userActionRequired"
    terms = acme.client.get(acme.base + "/directory").json()["meta"]["termsOfService"]
    assert f'<{terms}>;rel="terms-of-service"' in response["Link"]


def test_key_change_conflict_locates_the_account_holding_the_key(client, application, eab):
    holder = AcmeSession(client, application.name)
    holder.register(eab)
    acme = AcmeSession(client, application.name)
    acme.register(eab)
    response = acme.change_key(holder.key)
    assert response.status_code == 409
    assert response.json()["type"] == ERR + "conflict"
    assert response["Location"] == holder.kid
    assert "location" not in response.json()


@pytest.mark.parametrize("resource", ["newAccount", "newOrder", "revokeCert", "keyChange"])
def test_another_method_is_a_405_problem_document(acme, resource):
    response = acme.client.get(acme.directory[resource])
    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM
    assert response["Allow"] == "POST"
    assert response.json()["type"] == ERR + "malformed"
    assert response["Replay-Nonce"]


def test_every_refusal_is_a_problem_document(acme, eab):
    acme.register(eab)
    key = jose.JWKRSA(key=rsa.generate_private_key(65537, 1024))
    for response in (
        acme.client.post(acme.directory["newNonce"]),
        acme.post(acme.directory["newOrder"], b"[]"),
        acme.post(acme.directory["newAccount"], {}, use_jwk=True, key=key, alg=jose.RS256),
        AcmeSession(acme.client, "nope").client.get("/acme/nope/tls-server/directory"),
    ):
        assert 400 <= response.status_code < 500
        assert response["Content-Type"] == PROBLEM, response.content
    assert ec  # imported for key types used above
