"""Only certificates a portal CA signed reach its CRL or OCSP answers.

An imported certificate is linked to a portal CA only when that CA's key verifiably
signed it and it is not a CA or OCSP responder certificate; everything else is external:
it is tracked, and revoking it marks the inventory only.
"""

from __future__ import annotations

from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp
from django.apps import apps as global_apps
from django.test import Client
from django.urls import reverse

from applications.models import Application, AuditEvent
from issuance import services
from issuance.choices import CertificateStatus, EnrollmentMethod
from issuance.models import Certificate
from issuance.services import CertificateFileError, import_certificate, revoke
from pki import export
from profiles.models import CertificateAuthority, ocsp_responder
from profiles.services import ensure_ocsp_signer
from tests import certfiles

pytestmark = pytest.mark.django_db


def crl_serials(client: Client, ca: CertificateAuthority) -> set[int]:
    response = client.get(reverse("issuance:crl", args=[ca.slug]))
    assert response.status_code == 200
    crl = x509.load_der_x509_crl(response.content)
    assert crl.is_signature_valid(ca.certificate().public_key())  # type: ignore[arg-type]
    return {entry.serial_number for entry in crl}


def ocsp_status(client: Client, ca: CertificateAuthority, serial: int) -> ocsp.OCSPCertStatus:
    """Ask the CA's responder about a serial (by the CA's key hash, as clients do)."""
    issuer = ca.certificate()
    request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        issuer_name_hash=_hash(issuer.subject.public_bytes()),
        issuer_key_hash=_hash(_key_bits(issuer)),
        serial_number=serial,
        algorithm=hashes.SHA1(),  # what openssl sends by default
    )
    response = client.post(
        reverse("issuance:ocsp", args=[ca.slug]),
        data=request.build().public_bytes(Encoding.DER),
        content_type="application/ocsp-request",
    )
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return answer.certificate_status


def _hash(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA1())
    digest.update(data)
    return digest.finalize()


def _key_bits(cert: x509.Certificate) -> bytes:
    spki = asn1_keys.PublicKeyInfo.load(
        cert.public_key().public_bytes(
            Encoding.DER,
            PublicFormat.SubjectPublicKeyInfo,
        )
    )
    return bytes(spki["public_key"])


@pytest.fixture
def issued(application: Application, tls_profile: Any, actor: Any) -> Certificate:
    submission = services.submit(
        application=application,
        profile=tls_profile,
        method=EnrollmentMethod.API,
        actor=actor,
        key_spec=services.KeySpec(algorithm="EC_P256", common_name="api.example.test"),
    )
    assert submission.certificate is not None
    return submission.certificate


@pytest.fixture
def other_app(application: Application, tls_profile: Any, actor: Any) -> Application:
    from applications.services import create_application

    return create_application(name="other-app", profiles=[tls_profile], actor=actor)


def test_forged_certificate_naming_the_intermediate_under_the_root_stays_off_crl_and_ocsp(
    client: Client, application: Application, root_ca: Any, issuing_ca: Any, actor: Any
) -> None:
    """The attack: the intermediate's own serial, "issued" by the root, chain = the root."""
    serial = int(issuing_ca.serial_number, 16)
    forged, key = certfiles.forged_under(root_ca, serial=serial)
    crl_before = crl_serials(client, root_ca)
    imported = import_certificate(
        application,
        actor=actor,
        certificate_pem=certfiles.pem(forged) + root_ca.certificate_pem,
        private_key_pem=certfiles.key_pem(key),
    )
    assert imported.ca_id is None and not imported.revocation_published
    assert imported.chain()[0] == root_ca.certificate()  # shown as supplied, trusted for nothing

    revoke(imported, reason="keyCompromise", actor=actor)

    assert serial not in crl_serials(client, root_ca)
    assert crl_serials(client, root_ca) == crl_before
    assert ocsp_status(client, root_ca, serial) == ocsp.OCSPCertStatus.UNKNOWN
    root_ca.refresh_from_db()
    assert root_ca.crl_stale is False  # an external revocation asks for no new CRL


def test_ca_certificate_signed_by_a_portal_ca_is_never_linked(
    client: Client, application: Application, root_ca: Any, issuing_ca: Any, actor: Any
) -> None:
    """The portal's own intermediate verifies under the root, but it is a CA certificate."""
    imported = import_certificate(
        application,
        actor=actor,
        certificate_pem=issuing_ca.certificate_pem + root_ca.certificate_pem,
    )
    assert imported.ca_id is None
    revoke(imported, reason="cACompromise", actor=actor)
    assert int(issuing_ca.serial_number, 16) not in crl_serials(client, root_ca)


def test_ocsp_responder_certificate_is_never_linked(
    client: Client, application: Application, issuing_ca: Any, actor: Any
) -> None:
    responder, _key = ocsp_responder(ensure_ocsp_signer(issuing_ca))
    imported = import_certificate(
        application,
        actor=actor,
        certificate_pem=export.pem(responder) + issuing_ca.certificate_pem,
    )
    assert imported.ca_id is None
    revoke(imported, reason="keyCompromise", actor=actor)
    assert responder.serial_number not in crl_serials(client, issuing_ca)


def test_certificate_the_ca_key_signed_outside_the_pipeline_is_linked_and_published(
    client: Client, application: Application, issuing_ca: Any, actor: Any
) -> None:
    cert, key = certfiles.signed_by(issuing_ca)
    bogus_chain = certfiles.self_signed()[0]
    imported = import_certificate(
        application,
        actor=actor,
        certificate_pem=certfiles.pem(cert) + certfiles.pem(bogus_chain),
        private_key_pem=certfiles.key_pem(key),
    )
    assert imported.ca_id == issuing_ca.pk and imported.revocation_published
    assert imported.chain()[0] == issuing_ca.certificate()  # the CA's chain, not the claim
    event = AuditEvent.objects.get(action="certificate.imported")
    assert event.data["linked_ca"] == issuing_ca.slug

    revoke(imported, reason="superseded", actor=actor)
    assert cert.serial_number in crl_serials(client, issuing_ca)
    assert ocsp_status(client, issuing_ca, cert.serial_number) == ocsp.OCSPCertStatus.REVOKED


def test_same_name_other_key_ca_does_not_vouch(
    client: Client, application: Application, make_ca: Any, issuing_ca: Any, actor: Any
) -> None:
    """A second portal CA with the same subject but another key: only the signer links."""
    twin = make_ca("twin", common_name="test-issuing CA")
    assert twin.subject == issuing_ca.subject
    cert, _key = certfiles.signed_by(twin)
    imported = import_certificate(application, actor=actor, certificate_pem=certfiles.pem(cert))
    assert imported.ca_id == twin.pk


def test_portal_certificate_imported_into_another_application_is_an_external_copy(
    client: Client, issued: Certificate, other_app: Application, issuing_ca: Any, actor: Any
) -> None:
    copy = import_certificate(other_app, actor=actor, certificate_pem=issued.certificate_pem)
    assert copy.ca_id is None and copy.fingerprint_sha256 == issued.fingerprint_sha256
    revoke(copy, reason="keyCompromise", actor=actor)

    serial = int(issued.serial_number, 16)
    assert serial not in crl_serials(client, issuing_ca)
    assert ocsp_status(client, issuing_ca, serial) == ocsp.OCSPCertStatus.GOOD
    issued.refresh_from_db()
    assert issued.status == CertificateStatus.ACTIVE


def test_duplicate_in_own_application_is_refused_without_naming_other_applications(
    issued: Certificate, application: Application, other_app: Application, actor: Any
) -> None:
    cert, _key = certfiles.self_signed()
    import_certificate(other_app, actor=actor, certificate_pem=certfiles.pem(cert))
    # Held by another Application: this one may import it, and learns nothing.
    mine = import_certificate(application, actor=actor, certificate_pem=certfiles.pem(cert))
    assert mine.application == application
    with pytest.raises(CertificateFileError, match="already in this Application") as raised:
        import_certificate(application, actor=actor, certificate_pem=issued.certificate_pem)
    assert "other-app" not in str(raised.value)


def test_another_certificate_with_a_serial_the_ca_already_used_is_a_form_error(
    issued: Certificate, other_app: Application, issuing_ca: Any, actor: Any
) -> None:
    clash, _key = certfiles.signed_by(issuing_ca, serial=int(issued.serial_number, 16))
    before = Certificate.objects.count(), AuditEvent.objects.count()
    with pytest.raises(CertificateFileError, match="another certificate with serial"):
        import_certificate(other_app, actor=actor, certificate_pem=certfiles.pem(clash))
    assert (Certificate.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.filterwarnings("ignore::UserWarning")  # cryptography's, about these very defects
@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (certfiles.duplicate_extension, "Duplicate"),
        (lambda: certfiles.with_serial(-5), "not positive"),
        (lambda: certfiles.with_serial(0), "not positive"),
        (lambda: certfiles.with_serial(2**200), "longer than 20 octets"),
        (
            lambda: certfiles.pem(certfiles.self_signed(common_name="x" * 300)[0]),
            "common name is longer than 255",
        ),
    ],
    ids=["duplicate-extension", "negative-serial", "zero-serial", "long-serial", "long-cn"],
)
def test_malformed_certificate_is_refused_with_a_message(
    application: Application, actor: Any, pem: Any, message: str
) -> None:
    before = Certificate.objects.count(), AuditEvent.objects.count()
    with pytest.raises(CertificateFileError, match=message) as raised:
        import_certificate(application, actor=actor, certificate_pem=pem())
    assert raised.value.field == "certificate_pem"
    assert (Certificate.objects.count(), AuditEvent.objects.count()) == before


def test_malformed_certificate_in_the_chain_is_refused(application: Application, actor: Any):
    cert, _key = certfiles.self_signed()
    with pytest.raises(CertificateFileError, match="Duplicate"):
        import_certificate(
            application,
            actor=actor,
            certificate_pem=certfiles.pem(cert) + certfiles.duplicate_extension(),
        )


def test_migration_unlinks_earlier_forged_imports_and_keeps_verified_ones(
    client: Client, application: Application, issuing_ca: Any, actor: Any
) -> None:
    """Rows the old code linked by the chain's name lose the link; real ones keep it."""
    import importlib

    migration = importlib.import_module("issuance.migrations.0006_unlink_unverified_imports")
    forged, _ = certfiles.forged_under(issuing_ca)
    genuine, _ = certfiles.signed_by(issuing_ca)
    responder, _ = certfiles.signed_by(issuing_ca, eku=x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING)
    rows = {}
    for label, cert in [("forged", forged), ("genuine", genuine), ("responder", responder)]:
        row = import_certificate(application, actor=actor, certificate_pem=certfiles.pem(cert))
        Certificate.objects.filter(pk=row.pk).update(
            ca=issuing_ca, status=CertificateStatus.REVOKED, revocation_reason="keyCompromise"
        )
        rows[label] = row
    crl_serials(client, issuing_ca)  # a fresh CRL that (wrongly) lists all three

    migration.unlink(global_apps, None)

    linked = dict(Certificate.objects.filter(method="import").values_list("pk", "ca_id"))
    assert linked[rows["forged"].pk] is None
    assert linked[rows["responder"].pk] is None
    assert linked[rows["genuine"].pk] == issuing_ca.pk
    assert crl_serials(client, issuing_ca) == {genuine.serial_number}


def test_api_revoke_of_an_external_certificate_says_it_is_not_published(
    client: Client, personas: dict[str, Any], application: Application, issuing_ca: Any,
    actor: Any,
) -> None:  # fmt: skip
    from rest_framework.test import APIClient

    from certportal.api import services as credentials

    forged, _key = certfiles.forged_under(issuing_ca)
    external = import_certificate(application, actor=actor, certificate_pem=certfiles.pem(forged))
    _token, raw = credentials.create_token(personas["operator"], name="t", actor=actor)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    url = f"/api/v1/applications/{application.name}/certificates/{external.pk}/"

    assert api.get(url).json()["revocation_published"] is False
    response = api.post(url + "revoke/", {"reason": "keyCompromise"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert response.json()["revocation_published"] is False
    assert forged.serial_number not in crl_serials(client, issuing_ca)


def test_detail_page_says_whether_revocation_is_published(
    personas: dict[str, Any], issued: Certificate, application: Application, issuing_ca: Any,
    actor: Any,
) -> None:  # fmt: skip
    forged, _key = certfiles.forged_under(issuing_ca)
    external = import_certificate(application, actor=actor, certificate_pem=certfiles.pem(forged))
    web = Client()
    web.force_login(personas["auditor"])
    page = web.get(reverse("issuance:certificate", args=[application.name, external.pk]))
    assert "Not published: an external certificate" in page.content.decode()
    page = web.get(reverse("issuance:certificate", args=[application.name, issued.pk]))
    assert f"Published by {issuing_ca.name} (CRL and OCSP)" in page.content.decode()
