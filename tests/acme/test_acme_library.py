"""Scripted flows with the acme library (certbot's protocol layer): dns-01 against a
test DNS server, tls-alpn-01, a wildcard order, key change, account deactivation."""

from __future__ import annotations

import datetime
import json

import josepy as jose
import pytest
from acme import client, errors, messages
from acme import jws as acme_jws
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from issuance.acme.tests.support import tls_alpn01_responder
from issuance.models import Certificate
from pki import csr as pki_csr
from pki import keys

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]


def new_key() -> jose.JWK:
    return jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def registered(directory_url: str, eab: tuple[str, str]) -> tuple[client.ClientV2, jose.JWK]:
    key = new_key()
    net = client.ClientNetwork(key, alg=jose.ES256, user_agent="certportal-tests")
    directory = client.ClientV2.get_directory(directory_url, net)
    acme = client.ClientV2(directory, net)
    binding = messages.ExternalAccountBinding.from_data(key.public_key(), *eab, directory)
    acme.new_account(
        messages.NewRegistration.from_data(
            email="ops@example.test",
            terms_of_service_agreed=True,
            external_account_binding=binding,
        )
    )
    return acme, key


def csr_pem(*names: str) -> bytes:
    key = keys.generate_private_key("EC_P256")
    return pki_csr.build_csr(key, None, dns_names=names).public_bytes(Encoding.PEM)


def deadline() -> datetime.datetime:
    return datetime.datetime.now() + datetime.timedelta(seconds=60)


def challenge_of(authzr: messages.AuthorizationResource, kind: type) -> messages.ChallengeBody:
    return next(c for c in authzr.body.challenges if isinstance(c.chall, kind))


def sans(fullchain: str) -> list[str]:
    cert = x509.load_pem_x509_certificates(fullchain.encode())[0]
    return cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


def test_dns01_and_wildcard_order(directory_url, eab, acme_settings, dns_server):
    from acme import challenges

    acme, key = registered(directory_url, eab)
    order = acme.new_order(csr_pem("*.example.test", "example.test"))
    for authzr in order.authorizations:
        challb = challenge_of(authzr, challenges.DNS01)
        name = f"_acme-challenge.{authzr.body.identifier.value}"
        dns_server.txt.setdefault(name, []).append(challb.chall.validation(key))
        acme.answer_challenge(challb, challb.chall.response(key))
    wildcard = next(a for a in order.authorizations if a.body.wildcard)
    assert [type(c.chall) for c in wildcard.body.challenges] == [challenges.DNS01]
    done = acme.poll_and_finalize(order, deadline())
    assert sorted(sans(done.fullchain_pem)) == ["*.example.test", "example.test"]


def test_dns01_without_the_txt_record_fails(directory_url, eab, acme_settings):
    from acme import challenges

    acme, key = registered(directory_url, eab)
    order = acme.new_order(csr_pem("app.example.test"))
    challb = challenge_of(order.authorizations[0], challenges.DNS01)
    acme.answer_challenge(challb, challb.chall.response(key))
    with pytest.raises(errors.ValidationError):
        acme.poll_authorizations(order, deadline())


class _EmptyResponse(jose.JSONDeSerializable):
    """The {} a client POSTs to a challenge (acme 5 no longer models tls-alpn-01)."""

    def to_partial_json(self) -> dict:
        return {}

    @classmethod
    def from_json(cls, jobj):  # pragma: no cover - never parsed
        return cls()


def test_tls_alpn01_order(directory_url, eab, acme_settings):
    acme, key = registered(directory_url, eab)
    order = acme.new_order(csr_pem("alpn.example.test"))
    challb = next(
        c
        for c in order.authorizations[0].body.challenges
        if c.to_partial_json()["type"] == "tls-alpn-01"
    )
    token = challb.to_partial_json()["token"]
    key_auth = f"{token}.{jose.encode_b64jose(key.thumbprint())}"
    with tls_alpn01_responder("alpn.example.test", key_auth):
        acme.answer_challenge(challb, _EmptyResponse())  # type: ignore[arg-type]
        done = acme.poll_and_finalize(order, deadline())
    assert sans(done.fullchain_pem) == ["alpn.example.test"]
    assert Certificate.objects.filter(method="acme").count() == 1


def test_key_change_then_only_the_new_key_works(directory_url, eab, acme_settings):
    acme, old_key = registered(directory_url, eab)
    account_url = acme.net.account.uri
    replacement = new_key()
    url = acme.directory["keyChange"]
    inner = acme_jws.JWS.sign(
        json.dumps({"account": account_url, "oldKey": old_key.public_key().to_json()}).encode(),
        key=replacement,
        alg=jose.ES256,
        nonce=None,
        url=url,
    )
    response = acme.net.post(url, inner)
    assert response.status_code == 200
    with pytest.raises(messages.Error) as refused:
        acme.new_order(csr_pem("app.example.test"))
    assert refused.value.code == "malformed"  # the old key's signature no longer verifies
    acme.net.key = replacement
    assert acme.new_order(csr_pem("app.example.test")).body.status == messages.STATUS_PENDING


def test_deactivated_account_cannot_order(directory_url, eab, acme_settings):
    acme, _ = registered(directory_url, eab)
    regr = acme.deactivate_registration(acme.net.account)
    assert regr.body.status == "deactivated"
    with pytest.raises(messages.Error) as refused:
        acme.new_order(csr_pem("app.example.test"))
    assert refused.value.code == "unauthorized"


def test_account_deactivated_by_an_admin_is_unauthorized(directory_url, eab, acme_settings):
    from certportal.events import Actor
    from issuance.acme import services
    from issuance.acme.models import Account

    acme, _ = registered(directory_url, eab)
    assert acme.new_order(csr_pem("app.example.test")).body.status == messages.STATUS_PENDING
    account = Account.objects.get(pk=acme.net.account.uri.rsplit("/", 1)[-1])
    assert services.deactivate_account(account, actor=Actor(label="admin"))
    with pytest.raises(messages.Error) as refused:
        acme.new_order(csr_pem("app.example.test"))
    assert refused.value.code == "unauthorized"
    with pytest.raises(messages.Error) as read:
        acme.query_registration(acme.net.account)
    assert read.value.code == "unauthorized"


def test_a_single_use_credential_refuses_a_second_client(directory_url, eab, acme_settings):
    registered(directory_url, eab)
    with pytest.raises(messages.Error) as refused:
        registered(directory_url, eab)
    assert refused.value.code == "unauthorized"
    assert "single-use" in (refused.value.detail or "")
