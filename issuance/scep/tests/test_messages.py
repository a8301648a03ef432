"""CertPoll through an approval, GetCert, GetCRL, GetNextCACert and the RA rollover,
and every kind of bad input: each its FAILURE (with failInfo) or HTTP 400, and no row
written."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from django.utils import timezone

from applications.choices import Role
from applications.models import Application
from approvals import services as approvals
from issuance.models import Certificate
from issuance.scep import services, tasks
from issuance.scep.models import ScepEnrollment, ScepTransaction
from issuance.scep.tests.conftest import ACTOR, STATIC
from issuance.scep.tests.support import (
    Device,
    ScepClient,
    assert_failure,
    csr_der,
    rsa_key,
    self_signed,
)
from issuance.scep.tests.test_protocol import rows
from pki import scep as wire
from pki.scep import FailInfo, MessageType, PKIStatus
from profiles.models import CertificateProfile

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(application: Application) -> None:
    """An approval policy that holds every request for an Admin's approval."""
    spec = approvals.PolicySpec(
        name="hold", steps=[approvals.StepSpec(required=1, role=Role.ADMIN)]
    )
    approvals.save_policy(application, spec, actor=ACTOR)


def test_certpoll_pending_then_success_after_approval(
    scep: ScepClient, held: None, personas: dict[str, Any], tls_profile: CertificateProfile
) -> None:
    device = Device("held.example.test")
    assert scep.enroll(device, STATIC).status == PKIStatus.PENDING
    ca = tls_profile.issuing_ca.certificate()
    assert scep.poll(device, ca).status == PKIStatus.PENDING
    # The same PKCSReq again is a retry, not a second request.
    assert scep.enroll(device, STATIC).status == PKIStatus.PENDING
    [transaction] = ScepTransaction.objects.select_related("request")
    approvals.decide(
        transaction.request, user=personas["admin"], verdict="approve", comment="", actor=ACTOR
    )
    reply = scep.poll(device, ca)
    assert reply.status == PKIStatus.SUCCESS
    [leaf] = reply.certificates
    assert leaf.public_key() == device.key.public_key()


def test_certpoll_failure_after_rejection(
    scep: ScepClient, held: None, personas: dict[str, Any], tls_profile: CertificateProfile
) -> None:
    device = Device("rejected.example.test")
    assert scep.enroll(device, STATIC).status == PKIStatus.PENDING
    [transaction] = ScepTransaction.objects.select_related("request")
    approvals.decide(
        transaction.request, user=personas["admin"], verdict="reject", comment="no", actor=ACTOR
    )
    assert_failure(scep.poll(device, tls_profile.issuing_ca.certificate()), FailInfo.BAD_REQUEST)


def test_certpoll_of_an_unknown_transaction(
    scep: ScepClient, tls_profile: CertificateProfile
) -> None:
    assert_failure(
        scep.poll(Device("ghost.example.test"), tls_profile.issuing_ca.certificate()),
        FailInfo.BAD_CERT_ID,
    )


def test_getcert_returns_this_applications_certificate(
    scep: ScepClient, tls_profile: CertificateProfile
) -> None:
    device = Device("getcert.example.test")
    [leaf] = scep.enroll(device, STATIC).certificates
    asker = Device("asker.example.test")
    reply = scep.reply(
        asker, scep.send(scep.message(asker, MessageType.GET_CERT, wire.issuer_and_serial(leaf)))
    )
    assert reply.status == PKIStatus.SUCCESS
    assert reply.certificates == [leaf]
    # A serial this Application does not hold, and an issuer that is not the CA.
    stranger = self_signed(rsa_key(), "stranger")
    reply = scep.reply(
        asker,
        scep.send(scep.message(asker, MessageType.GET_CERT, wire.issuer_and_serial(stranger))),
    )
    assert_failure(reply, FailInfo.BAD_CERT_ID)


def test_getcert_does_not_reach_another_applications_certificates(
    scep: ScepClient, tls_profile: CertificateProfile, make_csr: Any
) -> None:
    from applications.services import create_application
    from issuance import services as issuance

    other = create_application(name="other-team", profiles=[tls_profile], actor=ACTOR)
    theirs = issuance.submit(
        application=other,
        profile=tls_profile,
        method="api",
        actor=ACTOR,
        csr=make_csr("theirs.example.test", ["theirs.example.test"]),
    ).certificate
    assert theirs is not None
    cert = x509.load_pem_x509_certificate(theirs.certificate_pem.encode())
    asker = Device("asker.example.test")
    reply = scep.reply(
        asker, scep.send(scep.message(asker, MessageType.GET_CERT, wire.issuer_and_serial(cert)))
    )
    assert_failure(reply, FailInfo.BAD_CERT_ID)


def test_getcrl_returns_the_cas_crl(scep: ScepClient, tls_profile: CertificateProfile) -> None:
    device = Device("crl.example.test")
    [leaf] = scep.enroll(device, STATIC).certificates
    reply = scep.reply(
        device, scep.send(scep.message(device, MessageType.GET_CRL, wire.issuer_and_serial(leaf)))
    )
    assert reply.status == PKIStatus.SUCCESS
    [crl_der] = reply.crls
    crl = x509.load_der_x509_crl(crl_der)
    assert crl.issuer == tls_profile.issuing_ca.certificate().subject
    assert crl.is_signature_valid(tls_profile.issuing_ca.certificate().public_key())  # type: ignore[arg-type]


def test_ra_rollover_is_announced_then_switched(
    scep: ScepClient, client: Any, enrollment: ScepEnrollment
) -> None:
    assert client.get(scep.url + "?operation=GetNextCACert").status_code == 404
    old_ra = scep.ra
    assert tasks.roll_ra_certificates() == 0  # a fresh RA needs nothing
    soon = old_ra.not_valid_after_utc - timedelta(days=20)
    assert services.roll_ra(enrollment.pk, now=soon) == "announced"
    response = client.get(scep.url + "?operation=GetNextCACert")
    assert response["Content-Type"] == "application/x-x509-next-ca-cert"
    from asn1crypto import cms

    info = cms.ContentInfo.load(response.content)
    inner = info["content"]["encap_content_info"]["content"].native
    following, _ = wire.read_certs_only(inner)
    [next_ra] = [c for c in following if c.subject == old_ra.subject]
    assert next_ra.serial_number != old_ra.serial_number
    # A client that already uses the announced RA is understood before the switch.
    device = Device("early.example.test")
    body = scep.message(
        device, MessageType.PKCS_REQ, csr_der(device.key, device.cn, STATIC), recipient=next_ra
    )
    assert scep.reply(device, scep.send(body)).status == PKIStatus.SUCCESS
    assert services.roll_ra(enrollment.pk, now=soon) == ""
    assert (
        services.roll_ra(enrollment.pk, now=old_ra.not_valid_after_utc - timedelta(days=3))
        == "switched"
    )
    fresh = ScepClient(client, scep.url)
    assert fresh.ra == next_ra
    assert fresh.enroll(Device("after.example.test"), STATIC).status == PKIStatus.SUCCESS
    assert client.get(scep.url + "?operation=GetNextCACert").status_code == 404


# --------------------------------------------------------------------------- bad input


def _pki(client: Any, url: str, body: bytes) -> Any:
    return client.post(
        f"{url}?operation=PKIOperation", data=body, content_type="application/x-pki-message"
    )


@pytest.mark.parametrize("body", [b"garbage", b"\x30\x82\x01", b"\x00" * 10])
def test_undecodable_messages_are_400(scep: ScepClient, client: Any, body: bytes) -> None:
    before = rows()
    response = _pki(client, scep.url, body)
    assert response.status_code == 400
    assert b"pkiMessage" in response.content
    assert rows() == before


def test_truncated_cms_is_400(scep: ScepClient, client: Any) -> None:
    device = Device("trunc.example.test")
    body = scep.message(device, MessageType.PKCS_REQ, csr_der(device.key, device.cn, STATIC))
    before = rows()
    assert _pki(client, scep.url, body[: len(body) // 2]).status_code == 400
    assert rows() == before


def test_bad_get_message_and_unknown_operation_are_400(scep: ScepClient, client: Any) -> None:
    assert client.get(scep.url + "?operation=PKIOperation&message=%%%").status_code == 400
    assert client.get(scep.url + "?operation=PKIOperation").status_code == 400
    assert client.get(scep.url + "?operation=Nope").status_code == 400


def test_get_accepts_url_safe_base64(scep: ScepClient, client: Any) -> None:
    device = Device("urlsafe.example.test")
    body = scep.message(device, MessageType.PKCS_REQ, csr_der(device.key, device.cn, STATIC))
    response = client.get(
        scep.url + "?operation=PKIOperation&message=" + base64.urlsafe_b64encode(body).decode()
    )
    assert scep.reply(device, response).status == PKIStatus.SUCCESS


def test_wrong_recipient_is_bad_message_check(scep: ScepClient) -> None:
    device = Device("wrongrcpt.example.test")
    elsewhere = self_signed(rsa_key(), "Some other RA")
    body = scep.message(
        device, MessageType.PKCS_REQ, csr_der(device.key, device.cn, STATIC), recipient=elsewhere
    )
    before = rows()
    assert_failure(scep.reply(device, scep.send(body)), FailInfo.BAD_MESSAGE_CHECK)
    assert rows() == before


def test_tampered_signature_is_bad_message_check(scep: ScepClient) -> None:
    from asn1crypto import cms

    device = Device("tamper.example.test")
    body = scep.message(device, MessageType.PKCS_REQ, csr_der(device.key, device.cn, STATIC))
    info = cms.ContentInfo.load(body)
    signer_info = info["content"]["signer_infos"][0]
    signature = bytearray(signer_info["signature"].native)
    signature[10] ^= 0xFF
    signer_info["signature"] = bytes(signature)
    before = rows()
    reply = scep.reply(device, scep.send(info.dump(force=True)))
    assert_failure(reply, FailInfo.BAD_MESSAGE_CHECK)
    assert rows() == before


def test_tampered_content_is_bad_message_check(scep: ScepClient) -> None:
    from asn1crypto import cms

    device = Device("tamper2.example.test")
    body = scep.message(device, MessageType.PKCS_REQ, csr_der(device.key, device.cn, STATIC))
    info = cms.ContentInfo.load(body)
    encap = info["content"]["encap_content_info"]
    content = bytearray(encap["content"].native)
    content[-5] ^= 0x01
    encap["content"] = bytes(content)
    before = rows()
    assert_failure(scep.reply(device, scep.send(info.dump(force=True))), FailInfo.BAD_MESSAGE_CHECK)
    assert rows() == before


def test_stale_signing_time_is_bad_time(scep: ScepClient, monkeypatch: pytest.MonkeyPatch) -> None:
    device = Device("clock.example.test")
    body = scep.message(device, MessageType.PKCS_REQ, csr_der(device.key, device.cn, STATIC))
    before = rows()
    later = timezone.now() + timedelta(days=2)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    assert_failure(scep.reply(device, scep.send(body)), FailInfo.BAD_TIME)
    assert rows() == before


def test_unknown_message_type_is_bad_request(scep: ScepClient) -> None:
    device = Device("type.example.test")
    body = scep.message(device, MessageType.CERT_REP, b"whatever")
    assert_failure(scep.reply(device, scep.send(body)), FailInfo.BAD_REQUEST)


def test_garbage_csr_in_a_valid_envelope_is_bad_request(scep: ScepClient) -> None:
    device = Device("garbagecsr.example.test")
    before = rows()
    assert_failure(scep.enroll(device, STATIC, csr=b"\x30\x03\x02\x01\x00"), FailInfo.BAD_REQUEST)
    assert rows() == before


def test_issued_certificates_show_in_the_inventory(
    scep: ScepClient, client: Any, personas: dict[str, Any]
) -> None:
    [leaf] = scep.enroll(Device("inventory.example.test"), STATIC).certificates
    assert leaf.subject.rfc4514_string().startswith("CN=inventory.example.test")
    client.force_login(personas["auditor"])
    page = client.get("/applications/payments-api/certificates/")
    assert page.status_code == 200, page.status_code
    assert b"inventory.example.test" in page.content
    assert Certificate.objects.filter(common_name="inventory.example.test", method="scep").exists()


def test_corrupted_messages_never_answer_500(scep: ScepClient, client: Any) -> None:
    """Flip one byte at a time across a valid request: every answer is a CertRep (200)
    or a 400, and none of them writes anything."""
    import random

    device = Device("fuzz.example.test")
    body = scep.message(
        device, MessageType.PKCS_REQ, csr_der(device.key, device.cn, "wrong-challenge-xxxxxx")
    )
    before = rows()
    chooser = random.Random(8894)
    for position in sorted(chooser.sample(range(len(body)), 150)):
        corrupted = bytearray(body)
        corrupted[position] ^= 1 << chooser.randrange(8)
        response = _pki(client, scep.url, bytes(corrupted))
        assert response.status_code in (200, 400), (position, response.status_code)
    assert rows() == before


@pytest.mark.parametrize(
    "message_type", [MessageType.GET_CERT, MessageType.GET_CRL, MessageType.CERT_POLL]
)
@pytest.mark.parametrize("data", [b"", b"garbage", b"\x30\x03\x02\x01\x05", b"\x30\x02\x31\x00"])
def test_malformed_message_data_is_bad_request(
    scep: ScepClient, message_type: MessageType, data: bytes
) -> None:
    device = Device("inner.example.test")
    reply = scep.reply(device, scep.send(scep.message(device, message_type, data)))
    assert reply.status == PKIStatus.FAILURE
    assert reply.message.fail_info in {
        str(int(FailInfo.BAD_REQUEST)),
        str(int(FailInfo.BAD_CERT_ID)),
    }
