"""Authorization and order states (RFC 8555 7.1.6): a deactivated or invalid
authorization makes its order invalid, a late failure never undoes a valid
authorization, and a malformed tls-alpn-01 certificate fails the challenge instead of
the task."""

from __future__ import annotations

import hashlib

import josepy as jose
import pytest
from asn1crypto.core import Integer, OctetString
from cryptography import x509
from django.test import TestCase

from issuance.acme import services
from issuance.acme.models import Authorization, Challenge
from issuance.acme.tests.support import http01_responder, tls_alpn01_responder
from issuance.acme.tests.test_flow import ready_order

pytestmark = pytest.mark.django_db

ERR = "urn:ietf:params:acme:error:"
NAME = "app.example.test"
ACME_ID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


def key_auth(acme, token: str) -> str:
    return f"{token}.{jose.encode_b64jose(acme.key.thumbprint())}"


def challenge_of(acme, authz_url: str, kind: str) -> dict:
    return next(c for c in acme.post(authz_url, None).json()["challenges"] if c["type"] == kind)


def test_deactivating_an_authorization_makes_its_order_invalid(acme, eab, acme_settings):
    acme.register(eab)
    response = acme.new_order(NAME, "www.example.test")
    authz_url = response.json()["authorizations"][0]
    deactivated = acme.post(authz_url, {"status": "deactivated"})
    assert deactivated.status_code == 200
    assert deactivated.json()["status"] == "deactivated"
    order = acme.post(response["Location"], None).json()
    assert order["status"] == "invalid"
    assert order["error"]["type"] == ERR + "unauthorized"


def test_deactivating_a_valid_authorization_invalidates_a_ready_order(acme, eab, acme_settings):
    acme.register(eab)
    order = ready_order(acme, NAME)
    assert order["status"] == "ready"
    assert acme.post(order["authorizations"][0], {"status": "deactivated"}).status_code == 200
    assert acme.post(order["url"], None).json()["status"] == "invalid"


def test_only_deactivation_is_accepted_and_not_of_an_invalid_authorization(
    acme, eab, acme_settings
):
    acme.register(eab)
    authz_url = acme.new_order(NAME).json()["authorizations"][0]
    assert acme.post(authz_url, {"status": "valid"}).json()["type"] == ERR + "malformed"
    challenge = challenge_of(acme, authz_url, "http-01")
    with http01_responder({challenge["token"]: "wrong"}):
        acme.post(challenge["url"], {})
    refused = acme.post(authz_url, {"status": "deactivated"})
    assert refused.status_code == 400
    assert "invalid" in refused.json()["detail"]


def test_a_late_failing_challenge_leaves_the_valid_authorization_and_ready_order(
    acme, eab, acme_settings, dns_server
):
    acme.register(eab)
    response = acme.new_order(NAME)
    authz_url = response.json()["authorizations"][0]
    http = challenge_of(acme, authz_url, "http-01")
    dns = challenge_of(acme, authz_url, "dns-01")
    # The dns-01 answer is taken while http-01 has not been checked yet; the dns-01
    # check (no TXT record: it fails) runs only after http-01 made the authorization valid.
    with TestCase.captureOnCommitCallbacks(execute=False) as later:
        acme.client.post(
            dns["url"],
            data=_signed(acme, dns["url"], {}),
            content_type="application/jose+json",
        )
    with http01_responder({http["token"]: key_auth(acme, http["token"])}):
        acme.post(http["url"], {})
    assert acme.post(authz_url, None).json()["status"] == "valid"
    for callback in later:
        callback()
    assert Challenge.objects.get(token=dns["token"]).status == "invalid"
    authz = acme.post(authz_url, None).json()
    assert authz["status"] == "valid"
    assert next(c for c in authz["challenges"] if c["type"] == "http-01")["status"] == "valid"
    assert acme.post(response["Location"], None).json()["status"] == "ready"


def _signed(acme, url: str, payload: dict) -> str:
    from issuance.acme.tests.support import sign

    return sign(payload, key=acme.key, alg=acme.alg, url=url, nonce=acme.nonce(), kid=acme.kid)


def _digest(acme, token: str) -> bytes:
    return hashlib.sha256(key_auth(acme, token).encode()).digest()


def _acme_id(value: bytes, critical: bool = True) -> tuple[x509.ExtensionType, bool]:
    return x509.UnrecognizedExtension(ACME_ID, value), critical


def _san(*names: str) -> tuple[x509.ExtensionType, bool]:
    return x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False


# A dNSName of bytes outside IA5: OpenSSL serves it, cryptography refuses to read it.
BAD_SAN = b"\x30\x05\x82\x03\xff\xfe\xfd"

MALFORMED = {
    "no acmeIdentifier": lambda d: [_san(NAME)],
    "not critical": lambda d: [_san(NAME), _acme_id(OctetString(d).dump(), critical=False)],
    "an INTEGER": lambda d: [_san(NAME), _acme_id(Integer(5).dump())],
    "a truncated OCTET STRING": lambda d: [_san(NAME), _acme_id(OctetString(d).dump()[:-3])],
    "trailing bytes": lambda d: [_san(NAME), _acme_id(OctetString(d).dump() + b"\x00")],
    "a raw digest": lambda d: [_san(NAME), _acme_id(d)],
    "another name": lambda d: [_san("other.example.test"), _acme_id(OctetString(d).dump())],
    "two names": lambda d: [_san(NAME, "www.example.test"), _acme_id(OctetString(d).dump())],
    "no SAN": lambda d: [_acme_id(OctetString(d).dump())],
    "an unreadable SAN": lambda d: [
        (x509.UnrecognizedExtension(x509.OID_SUBJECT_ALTERNATIVE_NAME, BAD_SAN), False),
        _acme_id(OctetString(d).dump()),
    ],
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_tls_alpn01_certificate_fails_the_challenge(acme, eab, acme_settings, case):
    acme.register(eab)
    response = acme.new_order(NAME)
    authz_url = response.json()["authorizations"][0]
    challenge = challenge_of(acme, authz_url, "tls-alpn-01")
    extensions = MALFORMED[case](_digest(acme, challenge["token"]))
    with tls_alpn01_responder(NAME, key_auth(acme, challenge["token"]), extensions=extensions):
        acme.post(challenge["url"], {})
    failed = challenge_of(acme, authz_url, "tls-alpn-01")
    assert failed["status"] == "invalid"
    assert failed["error"]["type"] == ERR + "unauthorized"
    assert acme.post(authz_url, None).json()["status"] == "invalid"
    assert acme.post(response["Location"], None).json()["status"] == "invalid"


def test_the_well_formed_tls_alpn01_certificate_still_passes(acme, eab, acme_settings):
    acme.register(eab)
    authz_url = acme.new_order(NAME).json()["authorizations"][0]
    challenge = challenge_of(acme, authz_url, "tls-alpn-01")
    with tls_alpn01_responder(NAME, key_auth(acme, challenge["token"])):
        acme.post(challenge["url"], {})
    assert challenge_of(acme, authz_url, "tls-alpn-01")["status"] == "valid"


def test_a_check_that_breaks_fails_the_challenge_not_the_task(
    acme, eab, acme_settings, monkeypatch
):
    def broken(*args):
        raise RuntimeError("a bug in a check")

    monkeypatch.setattr("issuance.acme.validation.http01", broken)
    acme.register(eab)
    authz_url = acme.new_order(NAME).json()["authorizations"][0]
    challenge = challenge_of(acme, authz_url, "http-01")
    acme.post(challenge["url"], {})
    failed = challenge_of(acme, authz_url, "http-01")
    assert failed["status"] == "invalid"
    assert failed["error"]["type"] == ERR + "serverInternal"
    assert "a bug" not in failed["error"]["detail"]


def test_deactivating_the_account_invalidates_its_pending_orders(acme, eab, acme_settings):
    acme.register(eab)
    response = acme.new_order(NAME)
    assert acme.post(acme.kid, {"status": "deactivated"}).status_code == 200
    order_id = response["Location"].rsplit("/", 1)[1]
    from issuance.acme.models import Order

    assert Order.objects.get(pk=order_id).status == "invalid"
    assert set(Authorization.objects.values_list("status", flat=True)) == {"deactivated"}
    assert services  # the module under test
