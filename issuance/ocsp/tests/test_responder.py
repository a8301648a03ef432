"""Pre-signed OCSP answers: stored at issuance, rewritten on revocation, served as stored
for nonce-free SHA-1 requests with RFC 5019 caching headers, refreshed before
nextUpdate; everything else signed live."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from django.urls import reverse
from django.utils import timezone

from issuance.choices import CertificateStatus
from issuance.models import Certificate
from issuance.ocsp import signing
from issuance.ocsp.models import OCSPResponse
from issuance.services import release_hold, revoke, submit

pytestmark = pytest.mark.django_db

SHA1 = hashes.SHA1()


def request_for(
    leaf: Certificate,
    issuing_ca: Any,
    *,
    nonce: bytes | None = None,
    algorithm: hashes.HashAlgorithm = SHA1,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        leaf.as_x509(), issuing_ca.certificate(), algorithm
    )
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def post(client: Any, ca: Any, body: bytes) -> Any:
    return client.post(
        reverse("issuance:ocsp", args=[ca.slug]), data=body, content_type="application/ocsp-request"
    )


def get_url(ca: Any, body: bytes) -> str:
    encoded = base64.b64encode(body).decode().replace("/", "%2F").replace("+", "%2B")
    return reverse("issuance:ocsp", args=[ca.slug]) + "/" + encoded


def verify(answer: ocsp.OCSPResponse, issuing_ca: Any) -> None:
    """The answer is signed by the CA or by a responder the CA certified for OCSP."""
    issuer = issuing_ca.certificate()
    signer = answer.certificates[0] if answer.certificates else issuer
    if signer != issuer:
        signer.verify_directly_issued_by(issuer)
        usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert x509.ExtendedKeyUsageOID.OCSP_SIGNING in usage
    public_key: Any = signer.public_key()
    from cryptography.hazmat.primitives.asymmetric import ec

    public_key.verify(
        answer.signature, answer.tbs_response_bytes, ec.ECDSA(answer.signature_hash_algorithm)
    )


def stored(leaf: Certificate) -> OCSPResponse:
    return OCSPResponse.objects.get(ca_id=leaf.ca_id, serial_number=leaf.serial_number)


def test_issuance_stores_a_signed_good_answer(leaf: Certificate, issuing_ca: Any) -> None:
    row = stored(leaf)
    answer = ocsp.load_der_ocsp_response(bytes(row.response_der))
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == int(leaf.serial_number, 16)
    assert answer.hash_algorithm.name == "sha1"
    assert answer.next_update_utc == row.next_update
    verify(answer, issuing_ca)


def test_nonce_free_request_is_served_as_stored_in_one_query(
    client: Any, leaf: Certificate, issuing_ca: Any, django_assert_num_queries: Any
) -> None:
    body = request_for(leaf, issuing_ca)
    with django_assert_num_queries(1):
        response = post(client, issuing_ca, body)
    assert response.status_code == 200
    assert response.content == bytes(stored(leaf).response_der)


def test_get_carries_rfc5019_caching_headers_and_answers_304(
    client: Any, leaf: Certificate, issuing_ca: Any, settings: Any
) -> None:
    url = get_url(issuing_ca, request_for(leaf, issuing_ca))
    response = client.get(url)
    row = stored(leaf)
    assert response.content == bytes(row.response_der)
    cache_control = response["Cache-Control"]
    max_age = int(cache_control.split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= settings.CERTPORTAL_OCSP_VALIDITY_HOURS * 3600
    assert "public" in cache_control and "no-transform" in cache_control
    assert response["ETag"].startswith('"') and response["Last-Modified"] and response["Expires"]
    again = client.get(url, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again.content == b""
    since = client.get(url, HTTP_IF_MODIFIED_SINCE=response["Last-Modified"])
    assert since.status_code == 304
    other = client.get(url, HTTP_IF_NONE_MATCH='"something-else"')
    assert other.status_code == 200 and other.content == response.content


def test_revocation_rewrites_the_stored_answer(
    client: Any, leaf: Certificate, issuing_ca: Any, actor: Any
) -> None:
    body = request_for(leaf, issuing_ca)
    before = post(client, issuing_ca, body).content
    revoke(leaf, reason="keyCompromise", actor=actor)
    after = post(client, issuing_ca, body).content
    assert after != before and after == bytes(stored(leaf).response_der)
    answer = ocsp.load_der_ocsp_response(after)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise
    leaf.refresh_from_db()
    assert answer.revocation_time_utc == leaf.revoked_at.replace(microsecond=0)
    verify(answer, issuing_ca)


def test_hold_and_release_are_answered_at_once(
    client: Any, leaf: Certificate, issuing_ca: Any, actor: Any
) -> None:
    body = request_for(leaf, issuing_ca)
    revoke(leaf, reason="certificateHold", actor=actor)
    answer = ocsp.load_der_ocsp_response(post(client, issuing_ca, body).content)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.certificate_hold
    release_hold(leaf, actor=actor)
    answer = ocsp.load_der_ocsp_response(post(client, issuing_ca, body).content)
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


def test_a_failed_revocation_leaves_the_stored_answer(
    leaf: Certificate, actor: Any, monkeypatch: Any
) -> None:
    before = bytes(stored(leaf).response_der)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit log down")

    monkeypatch.setattr("issuance.services.revocation.record", fail)
    with pytest.raises(RuntimeError):
        revoke(leaf, reason="superseded", actor=actor)
    assert bytes(stored(leaf).response_der) == before
    leaf.refresh_from_db()
    assert leaf.status == CertificateStatus.ACTIVE


def test_nonce_is_signed_live_and_not_stored(
    client: Any, leaf: Certificate, issuing_ca: Any
) -> None:
    row = stored(leaf)
    response = post(client, issuing_ca, request_for(leaf, issuing_ca, nonce=b"n" * 16))
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16
    assert response["Cache-Control"] == "no-store" and "ETag" not in response
    assert bytes(stored(leaf).response_der) == bytes(row.response_der)
    verify(answer, issuing_ca)


def test_sha256_certid_is_answered_live_with_its_own_certid(
    client: Any, leaf: Certificate, issuing_ca: Any
) -> None:
    response = post(client, issuing_ca, request_for(leaf, issuing_ca, algorithm=hashes.SHA256()))
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.hash_algorithm.name == "sha256"
    assert OCSPResponse.objects.filter(serial_number=leaf.serial_number).count() == 1


def test_a_certificate_without_a_stored_answer_gets_one(
    client: Any, leaf: Certificate, issuing_ca: Any, django_assert_max_num_queries: Any
) -> None:
    stored(leaf).delete()
    body = request_for(leaf, issuing_ca)
    first = post(client, issuing_ca, body)
    assert ocsp.load_der_ocsp_response(first.content).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert first.content == bytes(stored(leaf).response_der)
    with django_assert_max_num_queries(1):
        assert post(client, issuing_ca, body).content == first.content


def test_unknown_serial_is_unknown_and_not_stored(
    client: Any, leaf: Certificate, issuing_ca: Any
) -> None:
    response = post(client, issuing_ca, request_for_serial(issuing_ca, 0x0102030405))
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    assert not OCSPResponse.objects.filter(serial_number="0102030405").exists()


def request_for_serial(issuing_ca: Any, serial: int, *, key_hash: bytes | None = None) -> bytes:
    from pki import ocsp as pki_ocsp

    issuer = issuing_ca.certificate()
    return (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            pki_ocsp.issuer_name_hash(issuer, SHA1),
            key_hash or pki_ocsp.issuer_key_hash(issuer, SHA1),
            serial,
            SHA1,
        )
        .build()
        .public_bytes(Encoding.DER)
    )


def test_another_issuers_certid_is_unauthorized(
    client: Any, leaf: Certificate, issuing_ca: Any
) -> None:
    body = request_for_serial(issuing_ca, int(leaf.serial_number, 16), key_hash=b"\x01" * 20)
    answer = ocsp.load_der_ocsp_response(post(client, issuing_ca, body).content)
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_unknown_ca_is_404_and_malformed_is_malformed(client: Any, issuing_ca: Any) -> None:
    body = request_for_serial(issuing_ca, 5)
    assert client.post("/pki/ocsp/no-such-ca", body, content_type="x").status_code == 404
    response = client.get(reverse("issuance:ocsp", args=[issuing_ca.slug]) + "/not*base64")
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_refresh_resigns_what_is_due_and_keeps_revocations(
    leaf: Certificate, application: Any, tls_profile: Any, make_csr: Any, actor: Any
) -> None:
    other = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("other.example.test"),
    ).certificate
    revoke(leaf, reason="superseded", actor=actor)
    assert signing.refresh_due() == 0  # nothing is due yet
    later = timezone.now() + timedelta(hours=11)
    assert signing.refresh_due(now=later) == 2
    for certificate, status in ((leaf, "REVOKED"), (other, "GOOD")):
        row = stored(certificate)
        assert row.this_update == later.replace(microsecond=0)
        answer = ocsp.load_der_ocsp_response(bytes(row.response_der))
        assert answer.certificate_status is getattr(ocsp.OCSPCertStatus, status)
    assert signing.refresh_due(now=later) == 0


def test_refresh_drops_answers_of_long_expired_certificates(leaf: Certificate) -> None:
    Certificate.objects.filter(pk=leaf.pk).update(not_after=timezone.now() - timedelta(days=3))
    assert signing.refresh_due(now=timezone.now() + timedelta(hours=11)) == 0
    assert not OCSPResponse.objects.filter(serial_number=leaf.serial_number).exists()


def test_expired_stored_answer_is_not_served(
    client: Any, leaf: Certificate, issuing_ca: Any
) -> None:
    OCSPResponse.objects.filter(serial_number=leaf.serial_number).update(
        next_update=timezone.now() - timedelta(minutes=1)
    )
    answer = ocsp.load_der_ocsp_response(
        post(client, issuing_ca, request_for(leaf, issuing_ca)).content
    )
    assert answer.next_update_utc > timezone.now()
