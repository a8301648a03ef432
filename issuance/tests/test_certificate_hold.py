"""certificateHold: a held certificate can be released (valid again, off the next CRL,
good in OCSP) or revoked for good; anything else cannot be released."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from django.urls import reverse
from rest_framework.test import APIClient

from applications.models import AuditEvent
from certportal.api import services as credentials
from certportal.models import OutboxEvent
from issuance.choices import CertificateStatus
from issuance.services import KeySpec, RevocationError, release_hold, renew, revoke, submit
from issuance.tests.test_revocation import _ocsp_request, fetch_crl
from profiles.models import CertificateAuthority

pytestmark = pytest.mark.django_db


def _openssl_crl_text(client, ca, tmp_path: Path) -> str:
    """The CA's CRL fetched over HTTP, as `openssl crl -text` prints it."""
    response = client.get(reverse("issuance:crl", args=[ca.slug]))
    assert response.status_code == 200
    der = response.content
    path = tmp_path / "ca.crl"
    path.write_bytes(der)
    result = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(path), "-noout", "-text"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _serial_as_openssl_prints_it(certificate) -> str:
    digits = f"{int(certificate.serial_number, 16):X}"
    return "SERIAL NUMBER: " + digits.zfill(len(digits) + len(digits) % 2)  # whole bytes


@pytest.mark.interop
def test_released_hold_leaves_the_next_crl(client, personas, leaf, issuing_ca, actor, tmp_path):
    revoke(leaf, reason="certificateHold", actor=actor)
    held = _openssl_crl_text(client, issuing_ca, tmp_path)
    serial = _serial_as_openssl_prints_it(leaf)
    assert serial in held.upper()
    assert "Certificate Hold" in held
    number = fetch_crl(client, issuing_ca).extensions.get_extension_for_class(x509.CRLNumber)

    client.force_login(personas["operator"])
    page = client.get(reverse("issuance:certificate", args=[leaf.application.name, leaf.pk]))
    assert b"Release hold" in page.content
    response = client.post(reverse("issuance:release-hold", args=[leaf.application.name, leaf.pk]))
    assert response.status_code == 302

    released = _openssl_crl_text(client, issuing_ca, tmp_path)
    assert serial not in released.upper()
    assert "No Revoked Certificates" in released
    # A full CRL drops the entry; removeFromCRL belongs to delta CRLs (RFC 5280 5.3.1).
    assert "Remove From CRL" not in released
    after = fetch_crl(client, issuing_ca).extensions.get_extension_for_class(x509.CRLNumber)
    assert after.value.crl_number > number.value.crl_number


def test_release_marks_the_crl_stale_queues_a_refresh_and_is_audited(
    leaf, issuing_ca, actor, django_capture_on_commit_callbacks
):
    revoke(leaf, reason="certificateHold", actor=actor)
    CertificateAuthority.objects.filter(pk=issuing_ca.pk).update(crl_stale=False)
    with django_capture_on_commit_callbacks() as callbacks:
        release_hold(leaf, actor=actor)
    assert callbacks, "a CRL refresh is queued after commit"
    assert CertificateAuthority.objects.get(pk=issuing_ca.pk).crl_stale
    leaf.refresh_from_db()
    assert leaf.status == CertificateStatus.ACTIVE
    assert leaf.revoked_at is None and leaf.revocation_reason == ""
    assert AuditEvent.objects.filter(
        action="certificate.hold_released", object_id=str(leaf.pk)
    ).exists()
    assert OutboxEvent.objects.filter(
        event_type="certificate.hold_released", object_id=str(leaf.pk)
    ).exists()


def test_ocsp_answers_good_after_the_release(client, leaf, issuing_ca, actor):
    def status():
        response = client.post(
            reverse("issuance:ocsp", args=[issuing_ca.slug]),
            data=_ocsp_request(leaf, issuing_ca),
            content_type="application/ocsp-request",
        )
        answer = ocsp.load_der_ocsp_response(response.content)
        return answer.certificate_status, answer.revocation_reason

    revoke(leaf, reason="certificateHold", actor=actor)
    assert status()[1] == x509.ReasonFlags.certificate_hold
    release_hold(leaf, actor=actor)
    assert status() == (ocsp.OCSPCertStatus.GOOD, None)


@pytest.mark.parametrize("reason", [None, "keyCompromise", "superseded"])
def test_only_a_hold_can_be_released(leaf, actor, reason):
    if reason:
        revoke(leaf, reason=reason, actor=actor)
    with pytest.raises(RevocationError, match="not on hold"):
        release_hold(leaf, actor=actor)
    leaf.refresh_from_db()
    assert leaf.revocation_reason == (reason or "")


def test_a_held_certificate_can_be_revoked_for_good_keeping_its_hold_date(leaf, actor):
    revoke(leaf, reason="certificateHold", actor=actor)
    held_at = leaf.revoked_at
    revoke(leaf, reason="keyCompromise", actor=actor)
    leaf.refresh_from_db()
    assert leaf.revocation_reason == "keyCompromise" and leaf.revoked_at == held_at
    with pytest.raises(RevocationError, match="already revoked"):
        revoke(leaf, reason="certificateHold", actor=actor)


def test_a_hold_cannot_be_placed_twice(leaf, actor):
    revoke(leaf, reason="certificateHold", actor=actor)
    with pytest.raises(RevocationError, match="already revoked"):
        revoke(leaf, reason="certificateHold", actor=actor)


def test_a_released_certificate_renews_again(application, tls_profile, actor):
    held = submit(
        application=application,
        profile=tls_profile,
        method="ui",
        actor=actor,
        key_spec=KeySpec(algorithm="EC_P256", common_name="renew.example.test"),
    ).certificate
    revoke(held, reason="certificateHold", actor=actor)
    release_hold(held, actor=actor)
    assert renew(held, actor=actor, key_mode="reuse").certificate is not None


def _api(user, actor) -> APIClient:
    _, token = credentials.create_token(user, name="t", actor=actor)
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")


def test_api_release_hold(personas, leaf, actor):
    url = f"/api/v1/applications/{leaf.application.name}/certificates/{leaf.pk}/"
    operator = _api(personas["operator"], actor)
    assert operator.post(url + "release-hold/").status_code == 409
    held = operator.post(url + "revoke/", {"reason": "certificateHold"}, format="json")
    assert held.status_code == 200 and held.json()["status"] == "revoked"
    assert _api(personas["auditor"], actor).post(url + "release-hold/").status_code == 403
    assert _api(personas["outsider"], actor).post(url + "release-hold/").status_code == 404
    released = operator.post(url + "release-hold/")
    assert released.status_code == 200
    assert released.json()["status"] == "active"
    assert released.json()["revocation_reason"] in ("", None)
