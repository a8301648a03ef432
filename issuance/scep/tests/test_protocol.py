"""The SCEP endpoint through Django's test client and the asn1crypto-based client:
capabilities, CA certificates, enrollment, retries, challenges, renewal, algorithms."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from applications.models import Application, AuditEvent
from issuance import services as issuance
from issuance.choices import CertificateStatus, EnrollmentMethod
from issuance.models import Certificate, CertificateRequest
from issuance.scep import services
from issuance.scep.models import ScepChallenge, ScepEnrollment, ScepTransaction
from issuance.scep.tests.conftest import ACTOR, STATIC
from issuance.scep.tests.support import Device, ScepClient, assert_failure, csr_der, is_ca
from pki import scep as wire
from pki.scep import FailInfo, MessageType, PKIStatus
from profiles.models import CertificateProfile

pytestmark = pytest.mark.django_db


def rows() -> tuple[int, ...]:
    """What a refused request must leave unchanged."""
    return (
        CertificateRequest.objects.count(),
        Certificate.objects.count(),
        ScepTransaction.objects.count(),
        AuditEvent.objects.count(),
        ScepChallenge.objects.filter(used_at__isnull=False).count(),
    )


def test_capabilities_follow_the_live_settings(
    scep: ScepClient, enrollment: ScepEnrollment
) -> None:
    caps = scep.get("operation=GetCACaps").content.decode().split()
    assert {
        "POSTPKIOperation",
        "SHA-256",
        "SHA-512",
        "AES",
        "SCEPStandard",
        "GetNextCACert",
        "Renewal",
    } <= set(caps)
    assert "DES3" not in caps and "SHA-1" not in caps
    services.update(enrollment, actor=ACTOR, allow_legacy=True, allow_renewal=False)
    caps = scep.get("operation=GetCACaps").content.decode().split()
    assert "DES3" in caps and "SHA-1" in caps and "Renewal" not in caps


def test_ca_certificates_are_the_rsa_ra_then_the_ca_chain(
    scep: ScepClient, tls_profile: CertificateProfile
) -> None:
    response = scep.get("operation=GetCACert")
    assert response["Content-Type"] == "application/x-x509-ca-ra-cert"
    certs = wire.read_certs_only(response.content)[0]
    [ra] = [c for c in certs if not is_ca(c)]
    assert isinstance(ra.public_key(), rsa.RSAPublicKey)
    chain = tls_profile.issuing_ca.chain()
    assert sorted(c.serial_number for c in certs) == sorted(c.serial_number for c in [ra, *chain])
    ra.verify_directly_issued_by(chain[0])
    usage = ra.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment and usage.digital_signature


def test_ra_key_is_sealed_at_rest(enrollment: ScepEnrollment) -> None:
    stored = ScepEnrollment.objects.get(pk=enrollment.pk)
    assert stored.ra_private_key.startswith("v2:")
    assert "PRIVATE KEY" not in stored.ra_private_key
    assert stored.challenge_hash and STATIC not in stored.challenge_hash


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_static_challenge_enrolls_and_is_audited(
    scep: ScepClient, tls_profile: CertificateProfile, method: str
) -> None:
    device = Device("device1.example.test")
    reply = scep.enroll(device, STATIC, method=method)
    assert reply.status == PKIStatus.SUCCESS
    assert reply.message.transaction_id == device.transaction_id()
    assert reply.message.recipient_nonce  # the sender nonce, echoed
    [leaf] = reply.certificates
    leaf.verify_directly_issued_by(tls_profile.issuing_ca.certificate())
    assert leaf.public_key() == device.key.public_key()
    row = Certificate.objects.get(fingerprint_sha256=_fp(leaf))
    assert row.method == EnrollmentMethod.SCEP
    assert AuditEvent.objects.filter(action="certificate.issued", object_id=str(row.pk)).exists()


def _fp(cert: x509.Certificate) -> str:
    from pki.certs import fingerprint_sha256

    return fingerprint_sha256(cert)


def test_recipient_nonce_echoes_the_sender_nonce(scep: ScepClient) -> None:
    device = Device("nonce.example.test")
    body = wire.build_request(
        MessageType.PKCS_REQ,
        csr_der(device.key, device.cn, STATIC),
        signer=device.cert,
        key=device.key,
        recipient=scep.ra,
        transaction_id="t-nonce",
        sender_nonce=b"0123456789abcdef",
    )
    reply = scep.reply(device, scep.send(body))
    assert reply.message.recipient_nonce == b"0123456789abcdef"
    assert reply.message.transaction_id == "t-nonce"


def test_url_without_pkiclient_exe(client: Any, enrollment: ScepEnrollment) -> None:
    scep = ScepClient(client, "/scep/payments-api/tls-server")
    assert scep.enroll(Device("short.example.test"), STATIC).status == PKIStatus.SUCCESS


def test_unknown_enrollment_is_404(client: Any, enrollment: ScepEnrollment) -> None:
    assert (
        client.get("/scep/payments-api/nope/pkiclient.exe?operation=GetCACaps").status_code == 404
    )
    services.update(enrollment, actor=ACTOR, enabled=False)
    assert client.get("/scep/payments-api/tls-server?operation=GetCACaps").status_code == 404


def test_retry_gets_the_same_answer_and_a_changed_csr_is_refused(scep: ScepClient) -> None:
    device = Device("retry.example.test")
    first = scep.enroll(device, STATIC)
    again = scep.enroll(device, STATIC)
    assert again.certificates == first.certificates
    before = rows()
    other_csr = csr_der(device.key, "other.example.test", STATIC)
    assert_failure(scep.enroll(device, STATIC, csr=other_csr), FailInfo.BAD_REQUEST)
    assert rows() == before


def test_wrong_or_missing_challenge_is_refused_and_writes_nothing(scep: ScepClient) -> None:
    before = rows()
    assert_failure(
        scep.enroll(Device("a.example.test"), "wrong-challenge-xxxxxxxx"), FailInfo.BAD_REQUEST
    )
    assert_failure(scep.enroll(Device("b.example.test"), None), FailInfo.BAD_REQUEST)
    assert rows() == before


def test_policy_refusal_is_a_failure_with_the_reason(scep: ScepClient) -> None:
    before = rows()
    reply = scep.enroll(Device("host.elsewhere.test"), STATIC)
    assert_failure(reply, FailInfo.BAD_REQUEST)
    assert "not allowed" in reply.message.fail_info_text
    assert rows() == before


def test_one_time_challenge_is_single_use(scep: ScepClient, enrollment: ScepEnrollment) -> None:
    _, secret = services.mint_challenge(enrollment, actor=ACTOR)
    assert scep.enroll(Device("once.example.test"), secret).status == PKIStatus.SUCCESS
    before = rows()
    assert_failure(scep.enroll(Device("twice.example.test"), secret), FailInfo.BAD_REQUEST)
    assert rows() == before


def test_expired_one_time_challenge_is_refused(
    scep: ScepClient, enrollment: ScepEnrollment
) -> None:
    challenge, secret = services.mint_challenge(enrollment, actor=ACTOR)
    ScepChallenge.objects.filter(pk=challenge.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    before = rows()
    reply = scep.enroll(Device("late.example.test"), secret)
    assert_failure(reply, FailInfo.BAD_REQUEST)
    assert "expired" in reply.message.fail_info_text
    assert rows() == before


def test_one_time_challenge_bound_to_a_cn(scep: ScepClient, enrollment: ScepEnrollment) -> None:
    _, secret = services.mint_challenge(enrollment, actor=ACTOR, expected_cn="kiosk.example.test")
    before = rows()
    assert_failure(scep.enroll(Device("other.example.test"), secret), FailInfo.BAD_REQUEST)
    assert rows() == before
    assert scep.enroll(Device("kiosk.example.test"), secret).status == PKIStatus.SUCCESS


def test_challenge_of_another_profile_is_refused(
    client: Any,
    scep: ScepClient,
    application: Application,
    make_profile: Any,
    issuing_ca: Any,
) -> None:
    other_profile = make_profile("device", issuing_ca)
    application.profiles.add(other_profile)
    other = services.enable(application, other_profile, actor=ACTOR)
    _, secret = services.mint_challenge(other, actor=ACTOR)
    services.set_static_challenge(other, actor=ACTOR, challenge="another-static-challenge")
    before = rows()
    assert_failure(scep.enroll(Device("x.example.test"), secret), FailInfo.BAD_REQUEST)
    assert_failure(
        scep.enroll(Device("y.example.test"), "another-static-challenge"), FailInfo.BAD_REQUEST
    )
    assert rows() == before


def test_outstanding_challenges_are_capped(enrollment: ScepEnrollment) -> None:
    services.update(enrollment, actor=ACTOR, max_outstanding_challenges=2)
    services.mint_challenge(enrollment, actor=ACTOR)
    services.mint_challenge(enrollment, actor=ACTOR)
    with pytest.raises(services.ScepConfigError):
        services.mint_challenge(enrollment, actor=ACTOR)
    with pytest.raises(services.ScepConfigError):
        services.mint_challenge(enrollment, actor=ACTOR, ttl=timedelta(hours=25))


def test_short_static_challenge_is_refused(enrollment: ScepEnrollment) -> None:
    with pytest.raises(services.ScepConfigError):
        services.set_static_challenge(enrollment, actor=ACTOR, challenge="short")


def _enrolled(scep: ScepClient, cn: str) -> tuple[Device, x509.Certificate]:
    device = Device(cn)
    [leaf] = scep.enroll(device, STATIC).certificates
    return Device(cn, key=device.key, cert=leaf), leaf


@pytest.mark.parametrize("message_type", [MessageType.RENEWAL_REQ, MessageType.PKCS_REQ])
def test_renewal_signed_with_the_issued_certificate_needs_no_challenge(
    scep: ScepClient, message_type: MessageType
) -> None:
    device, old = _enrolled(scep, "renew.example.test")
    reply = scep.enroll(device, None, message_type=message_type)
    assert reply.status == PKIStatus.SUCCESS, reply.message.fail_info_text
    [new] = reply.certificates
    assert new.serial_number != old.serial_number
    row = Certificate.objects.get(fingerprint_sha256=_fp(new))
    assert row.replaces is not None and row.replaces.fingerprint_sha256 == _fp(old)
    assert row.replaces.status == CertificateStatus.SUPERSEDED


def test_renewal_refusals(scep: ScepClient, enrollment: ScepEnrollment) -> None:
    device, old = _enrolled(scep, "refuse.example.test")
    before = rows()
    other_subject = csr_der(device.key, "someone-else.example.test")
    assert_failure(
        scep.enroll(device, None, message_type=MessageType.RENEWAL_REQ, csr=other_subject),
        FailInfo.BAD_REQUEST,
    )
    services.update(enrollment, actor=ACTOR, allow_renewal=False)
    before = rows()
    assert_failure(
        scep.enroll(device, None, message_type=MessageType.RENEWAL_REQ), FailInfo.BAD_REQUEST
    )
    assert rows() == before
    services.update(enrollment, actor=ACTOR, allow_renewal=True)
    issuance.revoke(
        Certificate.objects.get(fingerprint_sha256=_fp(old)), reason="unspecified", actor=ACTOR
    )
    before = rows()
    assert_failure(
        scep.enroll(device, None, message_type=MessageType.RENEWAL_REQ), FailInfo.BAD_CERT_ID
    )
    assert rows() == before


def test_renewal_with_a_stranger_certificate_is_refused(scep: ScepClient) -> None:
    stranger = Device("stranger.example.test")
    signer = Device("stranger.example.test", key=stranger.key, cert=_issued_elsewhere(stranger))
    before = rows()
    assert_failure(
        scep.enroll(signer, None, message_type=MessageType.RENEWAL_REQ), FailInfo.BAD_CERT_ID
    )
    assert rows() == before


def _issued_elsewhere(device: Device) -> x509.Certificate:
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives import hashes

    from issuance.scep.tests.support import rsa_key, self_signed

    ca_key = rsa_key()
    ca = self_signed(ca_key, "Other CA")
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(device.cert.subject)
        .issuer_name(ca.subject)
        .public_key(device.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("cipher", "digest"), [("tripledes_3key", "sha256"), ("aes256_cbc", "sha1"), ("des", "sha1")]
)
def test_legacy_algorithms_only_when_switched_on(
    scep: ScepClient, enrollment: ScepEnrollment, cipher: str, digest: str
) -> None:
    device = Device("legacy.example.test")
    before = rows()
    assert_failure(scep.enroll(device, STATIC, cipher=cipher, digest=digest), FailInfo.BAD_ALG)
    assert rows() == before
    services.update(enrollment, actor=ACTOR, allow_legacy=True)
    reply = scep.enroll(device, STATIC, cipher=cipher, digest=digest)
    assert reply.status == PKIStatus.SUCCESS
    assert reply.message.digest_algorithm == digest
    # Answered with the requester's own cipher.
    from asn1crypto import cms

    enveloped = cms.ContentInfo.load(reply.message.content)["content"]
    assert (
        enveloped["encrypted_content_info"]["content_encryption_algorithm"]["algorithm"].native
        == cipher
    )


@pytest.mark.parametrize("cipher", ["aes128_cbc", "aes192_cbc"])
def test_reply_uses_the_requesters_aes_cipher(scep: ScepClient, cipher: str) -> None:
    from asn1crypto import cms

    reply = scep.enroll(
        Device(f"{cipher.replace('_', '-')}.example.test"), STATIC, cipher=cipher, digest="sha512"
    )
    assert reply.status == PKIStatus.SUCCESS
    enveloped = cms.ContentInfo.load(reply.message.content)["content"]
    assert (
        enveloped["encrypted_content_info"]["content_encryption_algorithm"]["algorithm"].native
        == cipher
    )
    assert reply.message.digest_algorithm == "sha512"
