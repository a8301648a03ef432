"""http-01 and tls-alpn-01 targets are held to certportal.outbound's address rules: every
address the identifier resolves to is checked before anything connects."""

from __future__ import annotations

import pytest

from issuance.acme import validation
from issuance.acme.tests.support import http01_responder

TOKEN = "tok3n"
PROOF = f"{TOKEN}.thumbprint"


@pytest.fixture
def public_only(acme_settings):
    acme_settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    return acme_settings


@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        ("app.example.test", "127.0.0.1 is not a public address (loopback)"),
        ("169.254.169.254", "link-local"),
        ("::ffff:127.0.0.1", "IPv4-mapped 127.0.0.1, loopback"),
        ("64:ff9b::a9fe:a9fe", "NAT64"),
        ("2002:a9fe:a9fe::1", "6to4 of 169.254.169.254"),
    ],
)
def test_internal_targets_are_refused(public_only, identifier, reason):
    with http01_responder({TOKEN: PROOF}):
        kind, detail = validation.http01(identifier, TOKEN, PROOF) or ("", "")
    assert kind == "connection"
    assert reason in detail
    kind, detail = validation.tls_alpn01(identifier, PROOF) or ("", "")
    assert kind == "connection"
    assert reason in detail


def test_one_unusable_address_refuses_the_name_even_in_a_lab(acme_settings, dns_server):
    # The A record (127.0.0.1) answers with the proof; the AAAA record is multicast.
    dns_server.aaaa["mixed.example.test"] = "ff02::1"
    with http01_responder({TOKEN: PROOF}):
        assert validation.http01("mixed.example.test", TOKEN, PROOF) == (
            "connection",
            "ff02::1 is not a public address (multicast).",
        )
