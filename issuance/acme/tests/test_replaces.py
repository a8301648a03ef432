"""newOrder "replaces" (RFC 9773 5), strict: a certificate this account ordered (sharing a
name with the order), or one whose names the order names exactly; anything else is a
malformed problem document, and a certificate already replaced is alreadyReplaced."""

from __future__ import annotations

import pytest
from cryptography import x509

from issuance.acme import messages
from issuance.acme.tests.conftest import AcmeSession
from issuance.acme.tests.test_flow import _issue, csr_der, finalize, ready_order_from


@pytest.fixture
def eab(reusable_eab: tuple[str, str]) -> tuple[str, str]:
    """These tests register several accounts with one credential: a reusable one."""
    return reusable_eab


pytestmark = pytest.mark.django_db

ERR = "urn:ietf:params:acme:error:"


def ari_id(cert: x509.Certificate) -> str:
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier is not None
    return messages.ari_cert_id(aki.key_identifier, cert.serial_number)


def order_replacing(acme: AcmeSession, cert_id: str, *names: str):
    identifiers = [{"type": "dns", "value": n} for n in names]
    return acme.post(acme.directory["newOrder"], {"identifiers": identifiers, "replaces": cert_id})


@pytest.fixture
def two_accounts(client, application, eab, acme_settings):
    owner = AcmeSession(client, application.name)
    owner.register(eab)
    other = AcmeSession(client, application.name)
    other.register(eab)
    return owner, other


def test_another_accounts_certificate_with_other_names_is_malformed(two_accounts):
    owner, other = two_accounts
    cert, _ = _issue(owner, "app.example.test")
    response = order_replacing(other, ari_id(cert), "app.example.test", "www.example.test")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == ERR + "malformed"
    assert "did not order" in response.json()["detail"]


def test_another_accounts_certificate_with_exactly_its_names_is_accepted(two_accounts):
    owner, other = two_accounts
    cert, _ = _issue(owner, "app.example.test")
    response = order_replacing(other, ari_id(cert), "APP.example.test")
    assert response.status_code == 201, response.content
    assert response.json()["replaces"] == ari_id(cert)


def test_own_certificate_must_share_a_name_with_the_order(acme, eab, acme_settings):
    acme.register(eab)
    cert, _ = _issue(acme, "app.example.test")
    unrelated = order_replacing(acme, ari_id(cert), "www.example.test")
    assert unrelated.json()["type"] == ERR + "malformed"
    assert "shares no name" in unrelated.json()["detail"]
    wider = order_replacing(acme, ari_id(cert), "app.example.test", "www.example.test")
    assert wider.status_code == 201, wider.content


@pytest.mark.parametrize("cert_id", ["AAAA.AQ", "not-an-id", "AAAA.", "%%%.AQ", "AAAA.AA"])
def test_unknown_or_malformed_certificate_ids_are_malformed(acme, eab, acme_settings, cert_id):
    acme.register(eab)
    response = order_replacing(acme, cert_id, "app.example.test")
    assert response.status_code == 400
    assert response.json()["type"] == ERR + "malformed"


def test_a_certificate_replaced_by_an_order_awaiting_approval_is_already_replaced(
    acme, eab, acme_settings, monkeypatch, hold_every_request
):
    acme.register(eab)
    cert, _ = _issue(acme, "app.example.test")
    hold_every_request()
    first = order_replacing(acme, ari_id(cert), "app.example.test")
    order = ready_order_from(acme, first)
    assert finalize(acme, order, csr_der("app.example.test")).json()["status"] == "processing"
    again = order_replacing(acme, ari_id(cert), "app.example.test")
    assert again.status_code == 409
    assert again.json()["type"] == ERR + "alreadyReplaced"


def test_an_unfinished_replacement_order_does_not_block_a_retry(acme, eab, acme_settings):
    acme.register(eab)
    cert, _ = _issue(acme, "app.example.test")
    assert order_replacing(acme, ari_id(cert), "app.example.test").status_code == 201
    assert order_replacing(acme, ari_id(cert), "app.example.test").status_code == 201
