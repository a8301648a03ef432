"""EST operations through the Django test client: the pipeline issues, each refusal has
its status and writes nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.test import Client

from applications.models import AuditEvent
from issuance.choices import CertificateStatus, EnrollmentMethod
from issuance.est import messages
from issuance.est.models import EstEnrollment
from issuance.est.tests.conftest import multipart_parts, new_csr
from issuance.models import Certificate, CertificateRequest

pytestmark = pytest.mark.django_db


def certs_of(body: bytes) -> list[x509.Certificate]:
    info = cms.ContentInfo.load(base64.b64decode(body))
    assert info["content_type"].native == "signed_data"
    return [x509.load_der_x509_certificate(c.dump()) for c in info["content"]["certificates"]]


def counts() -> tuple[int, int, int]:
    return (
        CertificateRequest.objects.count(),
        Certificate.objects.count(),
        AuditEvent.objects.count(),
    )


def test_cacerts_is_the_profile_chain(enrollment: EstEnrollment, tls_profile: Any) -> None:
    response = Client().get(f"/.well-known/est/{enrollment.label}/cacerts")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/pkcs7-mime")
    # SET OF: DER order, not chain order.
    assert set(certs_of(response.content)) == set(tls_profile.issuing_ca.chain())


def test_default_label_is_application_dot_profile(enrollment: EstEnrollment) -> None:
    assert enrollment.label == "payments-api.tls-server"


def test_simpleenroll_with_basic_issues_through_the_pipeline(
    enrollment: EstEnrollment, basic: tuple[str, str], post_csr: Any, tls_profile: Any
) -> None:
    der, key = new_csr()
    response = post_csr(enrollment.label, "simpleenroll", base64.b64encode(der), auth=basic)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == messages.CERTS_ONLY
    [leaf] = certs_of(response.content)
    assert leaf.public_key() == key.public_key()
    leaf.verify_directly_issued_by(tls_profile.issuing_ca.certificate())
    row = Certificate.objects.get()
    assert row.method == EnrollmentMethod.EST
    assert row.requester_label == f"est:{enrollment.label}:device"
    assert AuditEvent.objects.filter(action="certificate.issued", object_id=str(row.pk)).exists()


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda der: base64.b64encode(der), id="one-line"),
        pytest.param(lambda der: base64.encodebytes(der), id="wrapped"),
        pytest.param(
            lambda der: x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM),
            id="pem",
        ),
    ],
)
@pytest.mark.parametrize("cte", [None, "base64"])
def test_simpleenroll_accepts_every_body_shape(
    enrollment: EstEnrollment, basic: Any, post_csr: Any, encode: Any, cte: str | None
) -> None:
    der, _ = new_csr()
    headers = {"HTTP_CONTENT_TRANSFER_ENCODING": cte} if cte else {}
    response = post_csr(enrollment.label, "simpleenroll", encode(der), auth=basic, **headers)
    assert response.status_code == 200, response.content


def test_default_enrollment_answers_at_the_bare_path(
    enrollment: EstEnrollment, basic: Any, post_csr: Any
) -> None:
    assert Client().get("/.well-known/est/cacerts").status_code == 404
    EstEnrollment.objects.filter(pk=enrollment.pk).update(is_default=True)
    der, _ = new_csr()
    assert post_csr("", "simpleenroll", base64.b64encode(der), auth=basic).status_code == 200
    assert Client().get("/.well-known/est/cacerts").status_code == 200


def test_unknown_label_is_404(db: Any, post_csr: Any) -> None:
    der, _ = new_csr()
    response = post_csr("nobody", "simpleenroll", base64.b64encode(der))
    assert response.status_code == 404
    assert Client().get("/.well-known/est/nobody/cacerts").status_code == 404


def test_missing_credentials_are_401_with_basic_challenge(
    enrollment: EstEnrollment, post_csr: Any
) -> None:
    der, _ = new_csr()
    before = counts()
    response = post_csr(enrollment.label, "simpleenroll", base64.b64encode(der))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert counts() == before


def test_wrong_password_is_401_and_throttled(
    enrollment: EstEnrollment, basic: tuple[str, str], post_csr: Any
) -> None:
    der, _ = new_csr()
    body = base64.b64encode(der)
    before = counts()
    for _ in range(5):
        response = post_csr(enrollment.label, "simpleenroll", body, auth=("device", "wrong"))
        assert response.status_code == 401
    # Locked now: even the right password is refused until the lock runs out.
    assert post_csr(enrollment.label, "simpleenroll", body, auth=basic).status_code == 429
    assert counts() == before


def test_revoked_and_expired_credentials_are_401(
    enrollment: EstEnrollment, basic: tuple[str, str], post_csr: Any
) -> None:
    from django.utils import timezone

    from issuance.est.models import EstCredential

    der, _ = new_csr()
    EstCredential.objects.update(expires_at=timezone.now())
    assert (
        post_csr(enrollment.label, "simpleenroll", base64.b64encode(der), auth=basic).status_code
        == 401
    )
    EstCredential.objects.update(expires_at=None, revoked_at=timezone.now())
    assert (
        post_csr(enrollment.label, "simpleenroll", base64.b64encode(der), auth=basic).status_code
        == 401
    )


def test_credential_is_stored_hashed(basic: tuple[str, str]) -> None:
    from issuance.est.models import EstCredential

    row = EstCredential.objects.get()
    assert basic[1] not in row.secret_hash
    assert len(row.secret_hash) == 64


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"not base64 !!!", "application/pkcs10", 400),
        (base64.b64encode(b"\x30\x03\x02\x01\x00"), "application/pkcs10", 400),
        (b"MII", "application/json", 415),
        (b"A" * 70000, "application/pkcs10", 413),
    ],
)
def test_bad_bodies_are_refused_and_write_nothing(
    enrollment: EstEnrollment,
    basic: Any,
    post_csr: Any,
    body: bytes,
    content_type: str,
    status: int,
) -> None:
    before = counts()
    response = post_csr(
        enrollment.label, "simpleenroll", body, auth=basic, content_type=content_type
    )
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/plain")
    assert counts() == before


def test_policy_violation_is_400_with_reason(
    enrollment: EstEnrollment, basic: Any, post_csr: Any
) -> None:
    der, _ = new_csr("evil.invalid", ("evil.invalid",))
    before = counts()
    response = post_csr(enrollment.label, "simpleenroll", base64.b64encode(der), auth=basic)
    assert response.status_code == 400
    assert b"evil.invalid" in response.content
    assert counts() == before


def test_fullcmc_is_501(enrollment: EstEnrollment) -> None:
    assert (
        Client()
        .post(
            f"/.well-known/est/{enrollment.label}/fullcmc",
            b"x",
            content_type="application/pkcs7-mime",
        )
        .status_code
        == 501
    )


def test_csrattrs_describe_the_profile(enrollment: EstEnrollment) -> None:
    response = Client().get(f"/.well-known/est/{enrollment.label}/csrattrs")
    assert response.status_code == 200
    attrs = messages.CsrAttrs.load(base64.b64decode(response.content))
    oids = {
        item.chosen.dotted if item.name == "oid" else item.chosen["type"].dotted for item in attrs
    }
    assert messages.OID_CHALLENGE_PASSWORD in oids
    assert messages.OID_EC_PUBLIC_KEY in oids
    assert messages.OID_EXTENSION_REQUEST in oids


def test_csrattrs_without_basic_auth_omit_challenge_password(
    enrollment: EstEnrollment,
) -> None:
    EstEnrollment.objects.filter(pk=enrollment.pk).update(basic_auth=False)
    response = Client().get(f"/.well-known/est/{enrollment.label}/csrattrs")
    attrs = messages.CsrAttrs.load(base64.b64decode(response.content))
    plain = {item.chosen.dotted for item in attrs if item.name == "oid"}
    assert messages.OID_CHALLENGE_PASSWORD not in plain


def test_csrattrs_with_nothing_to_say_are_empty() -> None:
    """The view answers 204 for an empty DER (a profile always names its key types, so
    only the encoder can be driven there)."""
    assert (
        messages.csr_attributes(
            key_algorithms=[], ec_curves=[], challenge_password=False, require_san=False
        )
        == b""
    )


def test_serverkeygen_returns_a_matching_key(
    enrollment: EstEnrollment, basic: Any, post_csr: Any
) -> None:
    der, _ = new_csr()
    response = post_csr(enrollment.label, "serverkeygen", base64.b64encode(der), auth=basic)
    assert response.status_code == 200, response.content
    parts = multipart_parts(response["Content-Type"], response.content)
    key = serialization.load_der_private_key(parts["application/pkcs8"], None)
    [leaf] = certs_of(base64.b64encode(parts["application/pkcs7-mime"]))
    assert leaf.public_key() == key.public_key()


def test_serverkeygen_refused_when_profile_forbids(
    enrollment: EstEnrollment, basic: Any, post_csr: Any, tls_profile: Any
) -> None:
    from certportal import generation
    from profiles.models import CertificateProfile

    CertificateProfile.objects.filter(pk=tls_profile.pk).update(allow_server_keygen=False)
    generation.changed()
    der, _ = new_csr()
    before = counts()
    response = post_csr(enrollment.label, "serverkeygen", base64.b64encode(der), auth=basic)
    assert response.status_code == 403
    assert counts() == before


def test_certificate_shows_in_inventory_as_est(
    enrollment: EstEnrollment, basic: Any, post_csr: Any
) -> None:
    der, _ = new_csr()
    post_csr(enrollment.label, "simpleenroll", base64.b64encode(der), auth=basic)
    assert (
        Certificate.objects.filter(
            method=EnrollmentMethod.EST, status=CertificateStatus.ACTIVE
        ).count()
        == 1
    )


def test_revocation_reaches_cached_credentials(
    enrollment: EstEnrollment, basic: tuple[str, str], post_csr: Any, redis_cache: str
) -> None:
    """With Redis, credentials are cached per process; revoking one moves the shared
    generation, so the next request is refused."""
    from issuance.est import services
    from issuance.est.models import EstCredential
    from issuance.est.tests.conftest import ACTOR

    body = base64.b64encode(new_csr()[0])
    assert post_csr(enrollment.label, "simpleenroll", body, auth=basic).status_code == 200
    services.revoke_credential(EstCredential.objects.get(), actor=ACTOR)
    assert post_csr(enrollment.label, "simpleenroll", body, auth=basic).status_code == 401
