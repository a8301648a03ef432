"""Revocation, CRLs and OCSP through the Django test client."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from django.urls import reverse

from applications.models import AuditEvent
from issuance import tasks
from issuance.choices import CertificateStatus
from issuance.services import RevocationError, revoke
from profiles.models import CertificateAuthority

pytestmark = pytest.mark.django_db


def fetch_crl(client, ca) -> x509.CertificateRevocationList:
    response = client.get(reverse("issuance:crl", args=[ca.slug]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pkix-crl"
    return x509.load_der_x509_crl(response.content)


def test_revoked_serial_appears_on_crl_with_reason_and_number_grows(
    client, leaf, actor, issuing_ca
):
    first = fetch_crl(client, issuing_ca)
    number = first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert first.get_revoked_certificate_by_serial_number(int(leaf.serial_number, 16)) is None
    assert first.is_signature_valid(issuing_ca.certificate().public_key())

    revoke(leaf, reason="keyCompromise", actor=actor)
    second = fetch_crl(client, issuing_ca)
    entry = second.get_revoked_certificate_by_serial_number(int(leaf.serial_number, 16))
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        == x509.ReasonFlags.key_compromise
    )
    assert second.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number
    # A fresh CRL is served as stored, not rebuilt on every fetch.
    third = fetch_crl(client, issuing_ca)
    assert third.public_bytes(Encoding.DER) == second.public_bytes(Encoding.DER)


def test_crl_is_rebuilt_before_next_update(client, issuing_ca, settings):
    fetch_crl(client, issuing_ca)
    ca = CertificateAuthority.objects.get(pk=issuing_ca.pk)
    CertificateAuthority.objects.filter(pk=ca.pk).update(
        crl_next_update=ca.crl_next_update - timedelta(hours=settings.CERTPORTAL_CRL_VALIDITY_HOURS)
    )
    assert tasks.refresh_due_crls() >= 1
    ca.refresh_from_db()
    assert ca.crl_next_update > ca.crl_this_update + timedelta(hours=1)
    assert tasks.refresh_due_crls() == 0  # nothing due any more


def test_revocation_is_audited_and_cannot_repeat(leaf, actor):
    revoke(leaf, reason="superseded", actor=actor)
    leaf.refresh_from_db()
    assert leaf.status == CertificateStatus.REVOKED and leaf.revocation_reason == "superseded"
    assert (
        AuditEvent.objects.filter(action="certificate.revoked", object_id=str(leaf.pk)).count() == 1
    )
    with pytest.raises(RevocationError, match="already revoked"):
        revoke(leaf, reason="keyCompromise", actor=actor)


def test_unknown_revocation_reason_is_refused(leaf, actor):
    with pytest.raises(RevocationError, match="Unknown revocation reason 'oops'"):
        revoke(leaf, reason="oops", actor=actor)
    leaf.refresh_from_db()
    assert leaf.status == CertificateStatus.ACTIVE


def _ocsp_request(leaf, issuing_ca, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        x509.load_pem_x509_certificate(leaf.certificate_pem.encode()),
        issuing_ca.certificate(),
        hashes.SHA1(),
    )
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def test_ocsp_get_answers_good_then_revoked(client, leaf, issuing_ca, actor):
    encoded = base64.b64encode(_ocsp_request(leaf, issuing_ca)).decode()
    url = reverse("issuance:ocsp", args=[issuing_ca.slug]) + "/" + encoded.replace("/", "%2F")
    response = client.get(url)
    assert response["Content-Type"] == "application/ocsp-response"
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    revoke(leaf, reason="cessationOfOperation", actor=actor)
    answer = ocsp.load_der_ocsp_response(client.get(url).content)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.cessation_of_operation


def test_ocsp_post_echoes_nonce(client, leaf, issuing_ca):
    nonce = b"0123456789abcdef"
    response = client.post(
        reverse("issuance:ocsp", args=[issuing_ca.slug]),
        data=_ocsp_request(leaf, issuing_ca, nonce),
        content_type="application/ocsp-request",
    )
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


@pytest.mark.parametrize("body", [b"", b"garbage", b"\x30\x03\x02\x01", b"A" * 20000])
def test_malformed_ocsp_request_gets_malformed_status_not_500(client, issuing_ca, body):
    response = client.post(
        reverse("issuance:ocsp", args=[issuing_ca.slug]),
        data=body,
        content_type="application/ocsp-request",
    )
    assert response.status_code == 200
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ocsp_get_with_bad_base64_is_malformed(client, issuing_ca):
    url = reverse("issuance:ocsp", args=[issuing_ca.slug]) + "/%%%not-base64"
    answer = ocsp.load_der_ocsp_response(client.get(url).content)
    assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_unknown_ca_is_404(client):
    assert client.get("/pki/crl/nope.crl").status_code == 404
    assert client.get("/pki/ca/nope.crt").status_code == 404
    assert (
        client.post(
            "/pki/ocsp/nope", data=b"x", content_type="application/ocsp-request"
        ).status_code
        == 404
    )


def test_ca_certificate_and_chain_downloads(client, issuing_ca, root_ca):
    der = client.get(reverse("issuance:ca-certificate", args=[issuing_ca.slug]))
    assert der["Content-Type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der.content) == issuing_ca.certificate()
    chain = client.get(reverse("issuance:ca-chain", args=[issuing_ca.slug])).content
    certs = x509.load_pem_x509_certificates(chain)
    assert [c.subject for c in certs] == [
        issuing_ca.certificate().subject,
        root_ca.certificate().subject,
    ]


def _ocsp_answer(client, leaf, issuing_ca) -> ocsp.OCSPResponse:
    response = client.post(
        reverse("issuance:ocsp", args=[issuing_ca.slug]),
        data=_ocsp_request(leaf, issuing_ca),
        content_type="application/ocsp-request",
    )
    return ocsp.load_der_ocsp_response(response.content)


def test_ocsp_is_signed_by_a_delegated_responder_that_is_reused(client, leaf, issuing_ca):
    first = _ocsp_answer(client, leaf, issuing_ca)
    [signer] = first.certificates
    eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku
    assert signer.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert signer.issuer == issuing_ca.certificate().subject
    # The response verifies under the signer's key (raises InvalidSignature otherwise).
    signer_key = signer.public_key()
    assert isinstance(signer_key, ec.EllipticCurvePublicKey)
    signer_key.verify(
        first.signature, first.tbs_response_bytes, ec.ECDSA(first.signature_hash_algorithm)
    )
    assert (
        first.responder_key_hash
        == x509.SubjectKeyIdentifier.from_public_key(signer.public_key()).digest
    )
    second = _ocsp_answer(client, leaf, issuing_ca)
    assert second.certificates[0].serial_number == signer.serial_number


def test_delegated_responder_is_replaced_before_it_expires(client, leaf, issuing_ca):
    import time_machine

    signer = _ocsp_answer(client, leaf, issuing_ca).certificates[0]
    with time_machine.travel(signer.not_valid_after_utc - timedelta(days=3), tick=False):
        renewed = _ocsp_answer(client, leaf, issuing_ca).certificates[0]
    assert renewed.serial_number != signer.serial_number


def test_ca_mode_signs_with_the_ca_key(client, leaf, issuing_ca, settings):
    settings.CERTPORTAL_OCSP_RESPONDER = "ca"
    answer = _ocsp_answer(client, leaf, issuing_ca)
    assert answer.certificates == []
    assert (
        answer.responder_key_hash
        == x509.SubjectKeyIdentifier.from_public_key(issuing_ca.certificate().public_key()).digest
    )
