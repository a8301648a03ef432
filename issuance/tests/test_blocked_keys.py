"""A key revoked for keyCompromise is blocked: no later request may use it, from any
front (API, UI, renewal with the held key, approval of a held request);
ACME is in issuance/acme/tests/test_blocked_keys.py."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from applications.models import AuditEvent
from approvals.models import ApprovalPolicy
from certportal.api import services as credentials
from issuance import services
from issuance.choices import RequestState
from issuance.models import BlockedKey, Certificate, CertificateRequest
from pki import csr as pki_csr
from pki import keys

pytestmark = pytest.mark.django_db

COMPROMISED = "reported compromised"


def _csr(key, name: str = "app.example.test") -> bytes:
    return pki_csr.build_csr(key, name, dns_names=[name]).public_bytes(Encoding.PEM)


def _issue_csr(application, tls_profile, actor, csr: bytes) -> Certificate:
    submission = services.submit(
        application=application, profile=tls_profile, method="api", actor=actor, csr=csr
    )
    assert submission.certificate is not None
    return submission.certificate


def _api(user, actor) -> APIClient:
    _, token = credentials.create_token(user, name="t", actor=actor)
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def key():
    return keys.generate_private_key("EC_P256")


def test_key_compromise_blocks_the_key_and_other_reasons_do_not(
    application, tls_profile, actor, key
):
    first = _issue_csr(application, tls_profile, actor, _csr(key))
    other = _issue_csr(application, tls_profile, actor, _csr(keys.generate_private_key("EC_P256")))
    services.revoke(other, reason="superseded", actor=actor)
    assert not BlockedKey.objects.exists()
    services.revoke(first, reason="keyCompromise", actor=actor)
    blocked = BlockedKey.objects.get()
    assert blocked.spki_sha256 == keys.spki_sha256(key.public_key())
    assert blocked.certificate_id == first.pk
    event = AuditEvent.objects.get(action="certificate.revoked", object_id=str(first.pk))
    assert event.data["blocked_key_spki_sha256"] == blocked.spki_sha256


def test_a_hold_turned_into_key_compromise_blocks_too(application, tls_profile, actor, key):
    certificate = _issue_csr(application, tls_profile, actor, _csr(key))
    services.revoke(certificate, reason="certificateHold", actor=actor)
    services.revoke(certificate, reason="keyCompromise", actor=actor)
    assert BlockedKey.objects.filter(spki_sha256=keys.spki_sha256(key.public_key())).exists()


def test_api_refuses_a_csr_with_a_compromised_key(application, tls_profile, personas, actor, key):
    api = _api(personas["operator"], actor)
    base = f"/api/v1/applications/{application.name}/certificates/"
    csr = _csr(key).decode()
    issued = api.post(base, {"profile": tls_profile.slug, "csr": csr}, format="json")
    assert issued.status_code == 201
    revoked = api.post(
        f"{base}{issued.json()['id']}/revoke/", {"reason": "keyCompromise"}, format="json"
    )
    assert revoked.status_code == 200
    requests_before = CertificateRequest.objects.count()
    again = api.post(base, {"profile": tls_profile.slug, "csr": csr}, format="json")
    assert again.status_code == 400
    error = again.json()
    assert COMPROMISED in str(error)
    assert CertificateRequest.objects.count() == requests_before


def test_ui_issue_form_refuses_a_compromised_key(
    client, application, tls_profile, personas, actor, key
):
    services.revoke(
        _issue_csr(application, tls_profile, actor, _csr(key)), reason="keyCompromise", actor=actor
    )
    client.force_login(personas["operator"])
    response = client.post(
        reverse("issuance:issue", args=[application.name]),
        {
            "profile": tls_profile.slug,
            "mode": "csr",
            "csr": _csr(key).decode(),
            "key_algorithm": "EC_P256",
        },
    )
    assert response.status_code == 400
    assert COMPROMISED.encode() in response.content
    assert Certificate.objects.count() == 1


def test_renewal_with_the_held_key_is_refused_once_it_is_compromised(
    application, tls_profile, personas, actor
):
    original = services.submit(
        application=application,
        profile=tls_profile,
        method="ui",
        actor=actor,
        key_spec=services.KeySpec(algorithm="EC_P256", common_name="www.example.test"),
    ).certificate
    successor = services.renew(original, actor=actor, key_mode="reuse").certificate
    assert successor is not None and successor.private_key_pem() == original.private_key_pem()
    services.revoke(original, reason="keyCompromise", actor=actor)
    with pytest.raises(services.IssuanceRejected, match=COMPROMISED) as rejected:
        services.renew(successor, actor=actor, key_mode="reuse")
    assert rejected.value.code == "bad_key"
    url = f"/api/v1/applications/{application.name}/certificates/{successor.pk}/renew/"
    response = _api(personas["operator"], actor).post(url, {"key": "reuse"}, format="json")
    assert response.status_code == 400 and COMPROMISED in str(response.json())
    # A fresh key is still fine.
    assert services.renew(successor, actor=actor, key_mode="new").certificate is not None


def test_a_batch_costs_one_blocked_key_lookup_and_refuses_only_the_compromised_ask(
    application, tls_profile, actor, key
):
    services.revoke(
        _issue_csr(application, tls_profile, actor, _csr(key)), reason="keyCompromise", actor=actor
    )
    profile = services.attached_profile(application, tls_profile.slug)
    asks = [
        services.Ask(csr=_csr(keys.generate_private_key("EC_P256"), "a.example.test")),
        services.Ask(csr=_csr(key, "b.example.test")),
        services.Ask(csr=_csr(keys.generate_private_key("EC_P256"), "c.example.test")),
    ]
    with CaptureQueriesContext(connection) as captured:
        results = services.submit_many(
            application=application, profile=profile, method="api", actor=actor, asks=asks
        )
    lookups = [q for q in captured.captured_queries if "issuance_blockedkey" in q["sql"]]
    assert len(lookups) == 1
    assert isinstance(results[0], services.Submission) and isinstance(
        results[2], services.Submission
    )
    assert isinstance(results[1], services.IssuanceRejected) and results[1].code == "bad_key"


def test_server_generated_keys_need_no_lookup(application, tls_profile, actor):
    with CaptureQueriesContext(connection) as captured:
        services.submit(
            application=application,
            profile=tls_profile,
            method="ui",
            actor=actor,
            key_spec=services.KeySpec(algorithm="EC_P256", common_name="n.example.test"),
        )
    assert not [q for q in captured.captured_queries if "issuance_blockedkey" in q["sql"]]


def test_approving_a_held_request_fails_once_its_key_is_compromised(
    application, tls_profile, actor, key
):
    ApprovalPolicy.objects.create(application=application, name="all")
    held = services.submit(
        application=application, profile=tls_profile, method="api", actor=actor, csr=_csr(key)
    )
    assert held.pending
    other = services.submit(
        application=application,
        profile=tls_profile,
        method="ui",
        actor=actor,
        key_spec=services.KeySpec(algorithm="EC_P256", common_name="x.example.test"),
    )
    assert other.pending
    BlockedKey.objects.create(spki_sha256=keys.spki_sha256(key), reason="keyCompromise")
    outcome = services.issue_approved(held.request, actor=actor)
    assert outcome.certificate is None
    assert outcome.request.state == RequestState.FAILED
    assert COMPROMISED in outcome.request.reason
