"""Whole orders through Django's test client: challenges validated by the real task
(django-q2 sync mode) against local responders, finalize through the pipeline,
download, revocation, ARI and the approval hold."""

from __future__ import annotations

import josepy as jose
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from applications.models import AuditEvent
from certportal.events import Actor
from issuance import services as issuance
from issuance.acme import messages
from issuance.acme.models import Order
from issuance.acme.tests.support import http01_responder
from issuance.choices import CertificateStatus
from issuance.models import Certificate, CertificateRequest
from pki import csr as pki_csr
from pki import keys
from pki.certs import serial_hex

pytestmark = pytest.mark.django_db

ERR = "urn:ietf:params:acme:error:"


def csr_der(*names: str, key=None) -> bytes:
    key = key or keys.generate_private_key("EC_P256")
    return pki_csr.build_csr(key, None, dns_names=names).public_bytes(Encoding.DER)


def ready_order(acme, *names: str) -> dict:
    """An order whose authorizations passed http-01 through the validation task."""
    response = acme.new_order(*names)
    order = response.json()
    thumbprint = jose.encode_b64jose(acme.key.thumbprint())
    answers: dict[str, str] = {}
    with http01_responder(answers):
        for authz_url in order["authorizations"]:
            authz = acme.post(authz_url, None).json()
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            answers[challenge["token"]] = f"{challenge['token']}.{thumbprint}"
            answered = acme.post(challenge["url"], {})
            assert answered.status_code == 200
            assert f'<{authz_url}>;rel="up"' in answered["Link"]
    body = acme.post(response["Location"], None).json()
    body["url"] = response["Location"]
    return body


def finalize(acme, order: dict, der: bytes):
    return acme.post(order["finalize"], {"csr": jose.encode_b64jose(der)})


def test_http01_order_issues_through_the_pipeline(acme, eab, acme_settings, application):
    acme.register(eab)
    order = ready_order(acme, "app.example.test", "www.example.test")
    assert order["status"] == "ready"
    response = finalize(acme, order, csr_der("app.example.test", "www.example.test"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "valid"
    download = acme.post(response.json()["certificate"], None)
    assert download["Content-Type"] == "application/pem-certificate-chain"
    chain = x509.load_pem_x509_certificates(download.content)
    assert len(chain) == 2  # leaf + issuing CA, not the root
    leaf = Certificate.objects.get(application=application, method="acme")
    assert chain[0].serial_number == int(leaf.serial_number, 16)
    assert sorted(leaf.sans) == ["app.example.test", "www.example.test"]
    assert AuditEvent.objects.filter(action="acme.order_finalized").exists()


def test_failed_http01_makes_authorization_and_order_invalid(acme, eab, acme_settings):
    acme.register(eab)
    response = acme.new_order("app.example.test")
    authz_url = response.json()["authorizations"][0]
    challenge = next(
        c for c in acme.post(authz_url, None).json()["challenges"] if c["type"] == "http-01"
    )
    with http01_responder({challenge["token"]: "wrong"}):
        acme.post(challenge["url"], {})
    authz = acme.post(authz_url, None).json()
    assert authz["status"] == "invalid"
    failed = next(c for c in authz["challenges"] if c["type"] == "http-01")
    assert failed["error"]["type"] == ERR + "unauthorized"
    assert acme.post(response["Location"], None).json()["status"] == "invalid"


def test_private_targets_are_refused_unless_allowed(acme, eab, acme_settings):
    acme_settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    acme.register(eab)
    response = acme.new_order("app.example.test")
    authz_url = response.json()["authorizations"][0]
    challenge = next(
        c for c in acme.post(authz_url, None).json()["challenges"] if c["type"] == "http-01"
    )
    thumbprint = jose.encode_b64jose(acme.key.thumbprint())
    with http01_responder({challenge["token"]: f"{challenge['token']}.{thumbprint}"}):
        acme.post(challenge["url"], {})
    failed = next(
        c for c in acme.post(authz_url, None).json()["challenges"] if c["type"] == "http-01"
    )
    assert failed["status"] == "invalid"
    assert failed["error"]["type"] == ERR + "connection"


def test_csr_with_names_not_in_the_order_is_bad_csr(acme, eab, acme_settings):
    acme.register(eab)
    order = ready_order(acme, "app.example.test")
    response = finalize(acme, order, csr_der("app.example.test", "other.example.test"))
    assert response.status_code == 400
    assert response.json()["type"] == ERR + "badCSR"
    assert "other.example.test" in response.json()["detail"]
    # The order stays ready: a correct CSR still works.
    assert finalize(acme, order, csr_der("app.example.test")).json()["status"] == "valid"


def test_csr_refused_by_the_profile_policy_is_bad_csr(acme, eab, acme_settings):
    acme.register(eab)
    order = ready_order(acme, "app.example.test")
    weak = keys.generate_private_key("RSA_2048")
    from profiles.models import CertificateProfile

    for profile in CertificateProfile.objects.all():
        profile.key_algorithms = ["EC"]
        profile.save()
    response = finalize(acme, order, csr_der("app.example.test", key=weak))
    assert response.json()["type"] == ERR + "badCSR"


def test_approval_hold_keeps_order_processing_until_issued(
    acme, eab, acme_settings, monkeypatch, hold_every_request
):
    hold_every_request()
    acme.register(eab)
    order = ready_order(acme, "app.example.test")
    response = finalize(acme, order, csr_der("app.example.test"))
    assert response.json()["status"] == "processing"
    assert response["Retry-After"] == "1"
    polled = acme.post(order["url"], None)
    assert polled.json()["status"] == "processing"
    assert "certificate" not in polled.json()
    request = CertificateRequest.objects.get(state="pending_approval")
    issuance.issue_approved(request, actor=Actor(label="approver"))
    done = acme.post(order["url"], None).json()
    assert done["status"] == "valid"
    download = acme.post(done["certificate"], None)
    assert download.status_code == 200
    assert b"BEGIN CERTIFICATE" in download.content


def test_rejected_approval_makes_order_invalid(
    acme, eab, acme_settings, monkeypatch, hold_every_request
):
    hold_every_request()
    acme.register(eab)
    order = ready_order(acme, "app.example.test")
    finalize(acme, order, csr_der("app.example.test"))
    request = CertificateRequest.objects.get(state="pending_approval")
    issuance.reject_request(request, actor=Actor(label="approver"), reason="not this one")
    done = acme.post(order["url"], None).json()
    assert done["status"] == "invalid"
    assert done["error"]["detail"] == "not this one"


def _issue(acme, name: str = "app.example.test", key=None) -> tuple[x509.Certificate, dict]:
    order = ready_order(acme, name)
    done = finalize(acme, order, csr_der(name, key=key)).json()
    pem = acme.post(done["certificate"], None).content
    return x509.load_pem_x509_certificates(pem)[0], done


def test_revoke_by_account_and_refused_for_another_account(client, application, eab, acme_settings):
    from issuance.acme.tests.conftest import AcmeSession

    owner = AcmeSession(client, application.name)
    owner.register(eab)
    cert, _ = _issue(owner)
    payload = {"certificate": jose.encode_b64jose(cert.public_bytes(Encoding.DER)), "reason": 4}
    stranger = AcmeSession(client, application.name)
    stranger.register(eab)
    refused = stranger.post(owner.directory["revokeCert"], payload)
    assert refused.status_code == 403
    revoked = owner.post(owner.directory["revokeCert"], payload)
    assert revoked.status_code == 200, revoked.content
    stored = Certificate.objects.get(serial_number=serial_hex(cert.serial_number))
    assert (stored.status, stored.revocation_reason) == (CertificateStatus.REVOKED, "superseded")
    again = owner.post(owner.directory["revokeCert"], payload)
    assert again.json()["type"] == ERR + "alreadyRevoked"


def test_revoke_by_certificate_key(acme, eab, acme_settings):
    acme.register(eab)
    cert_key = ec.generate_private_key(ec.SECP256R1())
    cert, _ = _issue(acme, key=cert_key)
    payload = {"certificate": jose.encode_b64jose(cert.public_bytes(Encoding.DER))}
    response = acme.post(
        acme.directory["revokeCert"],
        payload,
        use_jwk=True,
        key=jose.JWKEC(key=cert_key),
        alg=jose.ES256,
    )
    assert response.status_code == 200, response.content
    assert (
        Certificate.objects.get(status=CertificateStatus.REVOKED).revocation_reason == "unspecified"
    )


def test_renewal_info_and_replaces_supersede_the_old_certificate(
    acme, eab, acme_settings, tls_profile
):
    acme.register(eab)
    cert, _ = _issue(acme)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    cert_id = messages.ari_cert_id(aki, cert.serial_number)
    info = acme.client.get(f"{acme.directory['renewalInfo']}/{cert_id}")
    assert info.status_code == 200
    window = info.json()["suggestedWindow"]
    stored = Certificate.objects.get()
    expected_start = stored.not_after - __import__("datetime").timedelta(
        days=tls_profile.renewal_window_days
    )
    assert window["start"] == messages.timestamp(expected_start)
    assert int(info["Retry-After"]) > 0
    # An order that replaces it; on issuance the old certificate is superseded.
    response = acme.post(
        acme.directory["newOrder"],
        {"identifiers": [{"type": "dns", "value": "app.example.test"}], "replaces": cert_id},
    )
    assert response.json()["replaces"] == cert_id
    order = ready_order_from(acme, response)
    assert finalize(acme, order, csr_der("app.example.test")).json()["status"] == "valid"
    stored.refresh_from_db()
    assert stored.status == CertificateStatus.SUPERSEDED
    assert (
        Order.objects.get(pk=response["Location"].rsplit("/", 1)[1]).certificate.replaces == stored
    )
    twice = acme.post(
        acme.directory["newOrder"],
        {"identifiers": [{"type": "dns", "value": "app.example.test"}], "replaces": cert_id},
    )
    assert twice.json()["type"] == ERR + "alreadyReplaced"


def ready_order_from(acme, response) -> dict:
    thumbprint = jose.encode_b64jose(acme.key.thumbprint())
    answers: dict[str, str] = {}
    with http01_responder(answers):
        for authz_url in response.json()["authorizations"]:
            authz = acme.post(authz_url, None).json()
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            answers[challenge["token"]] = f"{challenge['token']}.{thumbprint}"
            acme.post(challenge["url"], {})
    body = acme.post(response["Location"], None).json()
    body["url"] = response["Location"]
    return body


def test_renewal_info_for_unknown_certificate_is_not_found(acme):
    response = acme.client.get(f"{acme.directory['renewalInfo']}/AAAA.AQ")
    assert response.status_code == 404


def test_an_order_is_ready_only_once_every_authorization_is_valid(acme, eab, acme_settings):
    acme.register(eab)
    response = acme.new_order("app.example.test", "www.example.test")
    order_url, body = response["Location"], response.json()
    thumbprint = jose.encode_b64jose(acme.key.thumbprint())
    answers: dict[str, str] = {}
    with http01_responder(answers):
        for count, authz_url in enumerate(body["authorizations"], start=1):
            authz = acme.post(authz_url, None).json()
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            answers[challenge["token"]] = f"{challenge['token']}.{thumbprint}"
            assert acme.post(challenge["url"], {}).status_code == 200
            status = acme.post(order_url, None).json()["status"]
            assert status == ("ready" if count == 2 else "pending")


@pytest.mark.parametrize("cert_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_or_malformed_certificate_id_is_a_not_found_problem(acme, eab, cert_id):
    acme.register(eab)
    base = acme.kid.rsplit("/acct/", 1)[0]
    response = acme.post(f"{base}/cert/{cert_id}", None)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == ERR + "malformed"


@pytest.mark.parametrize("kind", ["order", "authz", "chall", "cert", "order/{}/finalize"])
@pytest.mark.parametrize("object_id", ["%00", "a%00b", "x" * 3000, "a.b", "a~b"])
def test_an_id_we_never_issued_is_a_not_found_problem(acme, eab, kind, object_id):
    acme.register(eab)
    base = acme.kid.rsplit("/acct/", 1)[0]
    path = kind.format(object_id) if "{}" in kind else f"{kind}/{object_id}"
    response = acme.post(f"{base}/{path}", None)
    assert response.status_code == 404
    assert response.json()["type"] == ERR + "malformed"


def test_a_csr_that_is_not_base64url_is_bad_csr(acme, eab, acme_settings):
    acme.register(eab)
    order = ready_order(acme, "app.example.test")
    response = acme.post(order["finalize"], {"csr": "a"})
    assert response.status_code == 400
    assert response.json()["type"] == ERR + "badCSR"


def test_a_revocation_whose_certificate_is_not_base64url_is_malformed(acme, eab):
    acme.register(eab)
    response = acme.post(acme.directory["revokeCert"], {"certificate": "a"})
    assert response.status_code == 400
    assert response.json()["type"] == ERR + "malformed"


@pytest.mark.parametrize("cert_id", ["a.b", "AAAA.a", "a%00b.c"])
def test_a_renewal_info_id_that_is_not_base64url_is_malformed(acme, cert_id):
    response = acme.client.get(f"{acme.directory['renewalInfo']}/{cert_id}")
    assert response.status_code in (400, 404)
    assert response.json()["type"] == ERR + "malformed"


def test_a_kid_that_could_not_be_ours_is_an_unknown_account(acme, eab):
    acme.register(eab)
    identifiers = [{"type": "dns", "value": "app.example.test"}]
    response = acme.post(
        acme.directory["newOrder"], {"identifiers": identifiers}, kid=acme.kid + "\x00"
    )
    assert response.status_code == 400
    assert response.json()["type"] == ERR + "accountDoesNotExist"
