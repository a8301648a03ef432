"""Fixtures for ACME tests: settings that point validation at local test peers, tasks run
through django-q2's sync mode, an Application with an EAB credential, a JWS client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import josepy as jose
import pytest
from acme import messages as acme_messages
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import TestCase
from django_q.conf import Conf

from applications.models import Application
from certportal.events import Actor
from issuance.acme import services
from issuance.acme.tests.support import HTTP01_PORT, TLSALPN01_PORT, DNSServer, sign


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DNSServer]:
    server = DNSServer()
    yield server
    server.close()


@pytest.fixture
def acme_settings(settings: Any, dns_server: DNSServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Validation reaches local peers: port 5002/5003, the test DNS server, private
    addresses allowed; django-q2 runs tasks in the caller (its own sync mode), so the
    real task entry point runs through django-q2's worker and monitor code."""
    settings.CERTPORTAL_ACME_HTTP01_PORT = HTTP01_PORT
    settings.CERTPORTAL_ACME_TLSALPN01_PORT = TLSALPN01_PORT
    settings.CERTPORTAL_ACME_DNS_RESOLVER = dns_server.address
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = True
    monkeypatch.setattr(Conf, "SYNC", True)
    for records in (dns_server.txt, dns_server.aaaa, dns_server.nxdomain, dns_server.servfail):
        records.clear()
    return settings


@pytest.fixture
def eab(application: Application) -> tuple[str, str]:
    """A single-use EAB credential (the default): it binds one account."""
    key, hmac_key = services.create_eab_key(application, name="ci", actor=Actor(label="pytest"))
    return key.key_id, hmac_key


@pytest.fixture
def reusable_eab(application: Application) -> tuple[str, str]:
    """A reusable EAB credential: any number of accounts bind with it."""
    key, hmac_key = services.create_eab_key(
        application, name="fleet", actor=Actor(label="pytest"), reusable=True
    )
    return key.key_id, hmac_key


class AcmeSession:
    """Drives the ACME endpoints through Django's test client, one account key."""

    def __init__(self, client: Any, app: str, profile: str = "tls-server", key: Any = None) -> None:
        self.client = client
        self.base = f"http://testserver/acme/{app}/{profile}"
        self.key = key or jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        self.alg: jose.JWASignature = _alg_for(self.key)
        self.kid: str | None = None
        self._directory: dict[str, Any] | None = None

    @property
    def directory(self) -> dict[str, Any]:
        if self._directory is None:
            self._directory = self.client.get(self.base + "/directory").json()
        return self._directory

    def nonce(self) -> str:
        return self.client.head(self.directory["newNonce"])["Replay-Nonce"]

    def post(
        self,
        url: str,
        payload: dict[str, Any] | bytes | None,
        *,
        use_jwk: bool = False,
        nonce: str | None = None,
        signed_url: str | None = None,
        key: Any = None,
        alg: Any = None,
        kid: str | None = None,
    ) -> Any:
        body = sign(
            payload,
            key=key or self.key,
            alg=alg or self.alg,
            url=signed_url or url,
            nonce=nonce or self.nonce(),
            kid=None if use_jwk else (kid or self.kid),
        )
        # The test's transaction never commits: run on-commit work (validation) as if it had.
        with TestCase.captureOnCommitCallbacks(execute=True):
            return self.client.post(url, data=body, content_type="application/jose+json")

    def eab_binding(self, kid: str, hmac_key: str, key: Any = None) -> dict[str, Any]:
        directory = acme_messages.Directory.from_json(self.directory)
        return acme_messages.ExternalAccountBinding.from_data(
            (key or self.key).public_key(), kid, hmac_key, directory
        )

    def register(self, eab: tuple[str, str], **extra: Any) -> Any:
        payload = {
            "termsOfServiceAgreed": True,
            "contact": ["mailto:ops@example.test"],
            "externalAccountBinding": self.eab_binding(*eab),
            **extra,
        }
        response = self.post(self.directory["newAccount"], payload, use_jwk=True)
        if response.status_code in (200, 201):
            self.kid = response["Location"]
        return response

    def change_key(self, new_key: Any) -> Any:
        """keyChange (RFC 8555 7.3.5): the inner JWS, signed by new_key, names the old key."""
        url = self.directory["keyChange"]
        inner = sign(
            {"account": self.kid, "oldKey": self.key.public_key().to_json()},
            key=new_key,
            alg=_alg_for(new_key),
            url=url,
            nonce=None,
        )
        return self.post(url, inner.encode())

    def new_order(self, *names: str) -> Any:
        identifiers = [{"type": "dns", "value": n} for n in names]
        return self.post(self.directory["newOrder"], {"identifiers": identifiers})


def _alg_for(key: Any) -> jose.JWASignature:
    from issuance.acme import jws

    if isinstance(key, jose.JWKRSA):
        return jose.RS256
    if isinstance(key, jws.JWKOKP):
        return jws.EdDSA
    return jose.ES384 if key.key.curve.name == "secp384r1" else jose.ES256


@pytest.fixture
def acme(client: Any, application: Application) -> AcmeSession:
    return AcmeSession(client, application.name)
