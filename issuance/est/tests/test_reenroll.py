"""simplereenroll and client-certificate authentication: the proxy's header is believed
only from a trusted proxy; the certificate must be this Application's, active, from the
profile's CA."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from applications.services import create_application
from issuance import services as issuance
from issuance.choices import CertificateStatus, EnrollmentMethod
from issuance.est import services
from issuance.est.models import EstEnrollment
from issuance.est.tests.conftest import ACTOR, new_csr
from issuance.models import Certificate, CertificateRequest
from pki import csr as pki_csr
from pki import keys

pytestmark = pytest.mark.django_db


def issue(
    application: Any, profile: Any, names: tuple[str, ...] = ("dev.example.test",)
) -> tuple[Certificate, Any]:
    key = keys.generate_private_key("EC_P256")
    csr = pki_csr.build_csr(key, names[0], dns_names=names).public_bytes(Encoding.PEM)
    submission = issuance.submit(
        application=application, profile=profile, method=EnrollmentMethod.EST, actor=ACTOR, csr=csr
    )
    assert submission.certificate is not None
    return submission.certificate, key


def renewal_csr(old: Certificate, names: tuple[str, ...] | None = None) -> bytes:
    """A new key, with the old certificate's subject and SANs (or other SANs)."""
    cert = old.as_x509()
    key = keys.generate_private_key("EC_P256")
    san_names = names if names is not None else tuple(old.sans)
    builder = x509.CertificateSigningRequestBuilder().subject_name(cert.subject)
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.DNSName(n) for n in san_names]), critical=False
    )
    return base64.b64encode(builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER))


def test_reenroll_with_new_key_supersedes_the_old_certificate(
    enrollment: EstEnrollment, application: Any, tls_profile: Any, post_csr: Any
) -> None:
    old, _ = issue(application, tls_profile)
    response = post_csr(
        enrollment.label, "simplereenroll", renewal_csr(old), client_cert_pem=old.certificate_pem
    )
    assert response.status_code == 200, response.content
    old.refresh_from_db()
    assert old.status == CertificateStatus.SUPERSEDED
    new = Certificate.objects.get(replaces=old)
    assert new.method == EnrollmentMethod.EST
    assert new.as_x509().public_key() != old.as_x509().public_key()


def test_reenroll_without_client_certificate_is_401(
    enrollment: EstEnrollment, application: Any, tls_profile: Any, post_csr: Any
) -> None:
    old, _ = issue(application, tls_profile)
    response = post_csr(enrollment.label, "simplereenroll", renewal_csr(old))
    assert response.status_code == 401


def test_reenroll_header_from_untrusted_address_is_ignored(
    enrollment: EstEnrollment, application: Any, tls_profile: Any, post_csr: Any, settings: Any
) -> None:
    old, _ = issue(application, tls_profile)
    settings.CERTPORTAL_TRUSTED_PROXIES = ["10.9.9.9"]
    before = Certificate.objects.count()
    response = post_csr(
        enrollment.label, "simplereenroll", renewal_csr(old), client_cert_pem=old.certificate_pem
    )
    assert response.status_code == 401
    assert Certificate.objects.count() == before
    old.refresh_from_db()
    assert old.status == CertificateStatus.ACTIVE


def test_reenroll_with_another_applications_certificate_is_403(
    enrollment: EstEnrollment, tls_profile: Any, post_csr: Any
) -> None:
    other = create_application(name="other-app", profiles=[tls_profile], actor=ACTOR)
    foreign, _ = issue(other, tls_profile)
    before = (Certificate.objects.count(), CertificateRequest.objects.count())
    response = post_csr(
        enrollment.label,
        "simplereenroll",
        renewal_csr(foreign),
        client_cert_pem=foreign.certificate_pem,
    )
    assert response.status_code == 403
    assert (Certificate.objects.count(), CertificateRequest.objects.count()) == before


def test_reenroll_with_revoked_certificate_is_403(
    enrollment: EstEnrollment, application: Any, tls_profile: Any, post_csr: Any
) -> None:
    old, _ = issue(application, tls_profile)
    issuance.revoke(old, reason="superseded", actor=ACTOR)
    before = Certificate.objects.count()
    response = post_csr(
        enrollment.label, "simplereenroll", renewal_csr(old), client_cert_pem=old.certificate_pem
    )
    assert response.status_code == 403
    assert b"revoked" in response.content
    assert Certificate.objects.count() == before


def test_reenroll_twice_with_the_same_certificate_is_403(
    enrollment: EstEnrollment, application: Any, tls_profile: Any, post_csr: Any
) -> None:
    old, _ = issue(application, tls_profile)
    first = post_csr(
        enrollment.label, "simplereenroll", renewal_csr(old), client_cert_pem=old.certificate_pem
    )
    assert first.status_code == 200
    second = post_csr(
        enrollment.label, "simplereenroll", renewal_csr(old), client_cert_pem=old.certificate_pem
    )
    assert second.status_code == 403


def test_reenroll_with_changed_sans_is_400_unless_allowed(
    enrollment: EstEnrollment, application: Any, tls_profile: Any, post_csr: Any
) -> None:
    old, _ = issue(application, tls_profile)
    body = renewal_csr(old, ("dev.example.test", "more.example.test"))
    before = Certificate.objects.count()
    refused = post_csr(
        enrollment.label, "simplereenroll", body, client_cert_pem=old.certificate_pem
    )
    assert refused.status_code == 400
    assert Certificate.objects.count() == before
    spec = services.EnrollmentSpec(
        profile=tls_profile, reenroll_allow_san_change=True, client_cert_auth=True
    )
    services.save_enrollment(application, spec, actor=ACTOR, enrollment=enrollment)
    allowed = post_csr(
        enrollment.label, "simplereenroll", body, client_cert_pem=old.certificate_pem
    )
    assert allowed.status_code == 200, allowed.content


def test_reenroll_with_changed_subject_is_400(
    enrollment: EstEnrollment, application: Any, tls_profile: Any, post_csr: Any
) -> None:
    old, _ = issue(application, tls_profile)
    der, _ = new_csr("other.example.test", ("dev.example.test",))
    response = post_csr(
        enrollment.label,
        "simplereenroll",
        base64.b64encode(der),
        client_cert_pem=old.certificate_pem,
    )
    assert response.status_code == 400


def test_simpleenroll_with_client_cert_from_profile_ca(
    enrollment: EstEnrollment, application: Any, tls_profile: Any, post_csr: Any
) -> None:
    old, _ = issue(application, tls_profile)
    der, _ = new_csr("new.example.test", ("new.example.test",))
    response = post_csr(
        enrollment.label, "simpleenroll", base64.b64encode(der), client_cert_pem=old.certificate_pem
    )
    assert response.status_code == 200, response.content


def _device_ca() -> tuple[x509.Certificate, Any]:
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Maker Device CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _device_cert(ca: x509.Certificate, ca_key: Any) -> x509.Certificate:
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "device-17")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )


def test_simpleenroll_with_device_cert_needs_the_uploaded_bundle(
    enrollment: EstEnrollment, application: Any, tls_profile: Any, post_csr: Any
) -> None:
    ca, ca_key = _device_ca()
    device = _device_cert(ca, ca_key).public_bytes(Encoding.PEM).decode()
    der, _ = new_csr()
    body = base64.b64encode(der)
    assert (
        post_csr(enrollment.label, "simpleenroll", body, client_cert_pem=device).status_code == 401
    )
    spec = services.EnrollmentSpec(
        profile=tls_profile,
        client_cert_auth=True,
        trust_bundle_pem=ca.public_bytes(Encoding.PEM).decode(),
    )
    services.save_enrollment(application, spec, actor=ACTOR, enrollment=enrollment)
    response = post_csr(enrollment.label, "simpleenroll", body, client_cert_pem=device)
    assert response.status_code == 200, response.content


def test_trust_bundle_refuses_leaf_certificates(
    enrollment: EstEnrollment, application: Any, tls_profile: Any
) -> None:
    ca, ca_key = _device_ca()
    leaf = _device_cert(ca, ca_key).public_bytes(Encoding.PEM).decode()
    spec = services.EnrollmentSpec(profile=tls_profile, trust_bundle_pem=leaf)
    with pytest.raises(services.EstConfigError):
        services.save_enrollment(application, spec, actor=ACTOR, enrollment=enrollment)
    with pytest.raises(services.EstConfigError):
        services.validate_trust_bundle(
            "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"
        )
