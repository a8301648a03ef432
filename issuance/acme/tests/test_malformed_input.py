"""Malformed JWS headers and payloads of every type get a 4xx problem document, never a
500: each endpoint, each protected-header member and each payload member, set to values
of the wrong type or shape (PostgreSQL pass included: NUL bytes)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from issuance.acme.tests.test_flow import ready_order

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
WRONG = [
    None,
    0,
    1.5,
    True,
    "",
    "\x00",
    "é",
    [],
    [None],
    {},
    {"kty": "EC"},
    {"kty": "RSA", "n": 1, "e": 2},
    {"kty": "OKP", "crv": "Ed25519", "x": 5},
    {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
    10**30,
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _refused(response: Any) -> bool:
    return 400 <= response.status_code < 500 and response["Content-Type"] == PROBLEM


@pytest.mark.parametrize("member", ["alg", "nonce", "url", "kid", "jwk"])
def test_a_protected_header_member_of_the_wrong_type_is_refused(acme, eab, member):
    acme.register(eab)
    urls = [acme.directory[k] for k in ("newOrder", "newAccount", "revokeCert", "keyChange")]
    for url in [*urls, acme.kid]:
        for value in WRONG:
            header = {"alg": "ES256", "nonce": acme.nonce(), "url": url, "kid": acme.kid}
            header[member] = value
            body = {
                "protected": _b64(json.dumps(header).encode()),
                "payload": _b64(b"{}"),
                "signature": _b64(b"x" * 64),
            }
            response = acme.client.post(
                url, data=json.dumps(body), content_type="application/jose+json"
            )
            assert _refused(response), (url, member, value, response.status_code)


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        "null",
        "1",
        '"x"',
        "{",
        '{"protected": 1, "payload": 2, "signature": 3}',
        '{"protected": "!!", "payload": "e30", "signature": "AA"}',
        json.dumps({"protected": _b64(b"[1]"), "payload": "e30", "signature": "AA"}),
        json.dumps({"protected": _b64(b"\xff\xfe"), "payload": "e30", "signature": "AA"}),
        json.dumps({"protected": "e30", "payload": "e30", "signature": "AA", "header": {}}),
    ],
)
def test_a_body_that_is_no_flattened_jws_is_malformed(acme, body):
    response = acme.client.post(
        acme.directory["newOrder"], data=body, content_type="application/jose+json"
    )
    assert _refused(response)
    assert response.json()["type"] == "urn:ietf:params:acme:error:malformed"


def test_payload_members_of_the_wrong_type_are_refused(acme, eab, acme_settings):
    acme.register(eab)
    order = ready_order(acme, "app.example.test")
    new_order, name = acme.directory["newOrder"], {"type": "dns", "value": "app.example.test"}
    for value in WRONG:
        for url, payload in [
            (new_order, {"identifiers": value}),
            (new_order, {"identifiers": [{"type": value, "value": "a.example.test"}]}),
            (new_order, {"identifiers": [{"type": "dns", "value": value}]}),
            (new_order, {"identifiers": [{"type": "ip", "value": value}]}),
            (new_order, {"identifiers": [name], "notBefore": value}),
            (new_order, {"identifiers": [name], "replaces": value}),
            (new_order, {"identifiers": [name], "profile": value}),
            (order["finalize"], {"csr": value}),
            (acme.kid, {"contact": value}),
            (acme.kid, {"contact": [value]}),
            (acme.kid, {"status": value}),
            (order["authorizations"][0], {"status": value}),
            (acme.directory["revokeCert"], {"certificate": value}),
            (acme.directory["revokeCert"], {"certificate": "MIIB", "reason": value}),
        ]:
            response = acme.post(url, payload)
            # A few wrong values are harmless (an unknown status is ignored): never a 500.
            assert response.status_code < 500, (url, payload)
            if response.status_code >= 400:
                assert response["Content-Type"] == PROBLEM
