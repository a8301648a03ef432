"""Bad form input shows a clear message and changes nothing; issue/import/revoke work."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from applications.models import Application, AuditEvent, Membership
from issuance import services
from issuance.choices import CertificateStatus, EnrollmentMethod
from issuance.models import Certificate
from pki import export, keys

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _counts() -> tuple[int, int, int, int]:
    return (
        Application.objects.count(),
        Certificate.objects.count(),
        Membership.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def held_cert(application: Any, tls_profile: Any, actor: Any) -> Certificate:
    return services.submit(
        application=application,
        profile=tls_profile,
        method=EnrollmentMethod.UI,
        actor=actor,
        key_spec=services.KeySpec(algorithm="EC_P256", common_name="api.example.test"),
    ).certificate


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("payments-api", "An Application with this name already exists."),
        ("Payments_API", "Use 1-63 lowercase letters"),
        ("-leading", "Use 1-63 lowercase letters"),
    ],
)
def test_bad_application_slug_is_refused_with_message(
    personas: dict, tls_profile: Any, name: str, message: str
) -> None:
    before = _counts()
    response = _client(personas["product_admin"]).post(
        reverse("applications:create"),
        {"name": name, "profiles": [tls_profile.pk], "first_admin": personas["admin"].username},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert _counts() == before


def test_product_admin_creates_application_with_profile_and_first_admin(
    personas: dict, tls_profile: Any
) -> None:
    response = _client(personas["product_admin"]).post(
        reverse("applications:create"),
        {
            "name": "billing",
            "description": "Billing services",
            "profiles": [tls_profile.pk],
            "first_admin": personas["operator"].username,
        },
    )
    assert response.status_code == 302
    app = Application.objects.get(name="billing")
    assert list(app.profiles.all()) == [tls_profile]
    assert app.memberships.get().user == personas["operator"]
    assert app.memberships.get().role == "admin"


def test_csr_for_name_outside_profile_is_rejected_inline(
    personas: dict, application: Any, tls_profile: Any, make_csr: Any
) -> None:
    before = _counts()
    response = _client(personas["operator"]).post(
        reverse("issuance:issue", kwargs={"slug": application.name}),
        {
            "profile": tls_profile.slug,
            "mode": "csr",
            "csr": make_csr("evil.example.com", ["evil.example.com"]).decode(),
            "key_algorithm": "EC_P256",
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "evil.example.com" in body
    assert 'id="id_sans_error"' in body or 'class="errorlist' in body
    assert _counts() == before


def test_operator_issues_with_server_key_and_sees_key_once(
    personas: dict, application: Any, tls_profile: Any
) -> None:
    client = _client(personas["operator"])
    response = client.post(
        reverse("issuance:issue", kwargs={"slug": application.name}),
        {
            "profile": tls_profile.slug,
            "mode": "keygen",
            "common_name": "shop.example.test",
            "sans": "shop.example.test, api.example.test",
            "key_algorithm": "EC_P256",
        },
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "BEGIN PRIVATE KEY" in response.content.decode()
    cert = Certificate.objects.get(common_name="shop.example.test")
    assert cert.has_private_key
    assert sorted(cert.sans) == ["api.example.test", "shop.example.test"]
    detail = client.get(reverse("issuance:certificate", args=[application.name, cert.pk]))
    assert "BEGIN PRIVATE KEY" not in detail.content.decode()


def test_oversized_import_upload_is_refused(personas: dict, application: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    before = _counts()
    big = SimpleUploadedFile("big.p12", b"\0" * (65 * 1024), "application/x-pkcs12")
    response = _client(personas["operator"]).post(
        reverse("issuance:import", kwargs={"slug": application.name}),
        {"pkcs12": big, "password": "whatever1"},
    )
    assert response.status_code == 400
    assert "too large" in response.content.decode()
    assert _counts() == before


def test_import_pkcs12_with_wrong_password_is_refused(
    personas: dict, application: Any, held_cert: Certificate, actor: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    p12 = services.export_pkcs12(held_cert, password="right-password", actor=actor)
    other_app = Application.objects.get(name="other-app")
    before = _counts()
    response = _client(personas["outsider"]).post(
        reverse("issuance:import", kwargs={"slug": other_app.name}),
        {"pkcs12": SimpleUploadedFile("c.p12", p12), "password": "wrong-password"},
    )
    assert response.status_code == 400
    assert "password" in response.content.decode().lower()
    assert _counts() == before


def _self_signed(cn: str) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = keys.generate_private_key("EC_P256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return export.pem(cert), keys.private_key_to_pem(key).decode()


def test_import_pem_certificate_with_key(personas: dict, application: Any) -> None:
    cert_pem, key_pem = _self_signed("legacy.example.org")
    response = _client(personas["operator"]).post(
        reverse("issuance:import", kwargs={"slug": application.name}),
        {"certificate_pem": cert_pem, "private_key_pem": key_pem},
    )
    assert response.status_code == 302
    imported = Certificate.objects.get(common_name="legacy.example.org")
    assert imported.method == EnrollmentMethod.IMPORT
    assert imported.has_private_key


def test_import_with_mismatched_key_is_refused(personas: dict, application: Any) -> None:
    cert_pem, _ = _self_signed("legacy.example.org")
    _, other_key = _self_signed("other.example.org")
    before = _counts()
    response = _client(personas["operator"]).post(
        reverse("issuance:import", kwargs={"slug": application.name}),
        {"certificate_pem": cert_pem, "private_key_pem": other_key},
    )
    assert response.status_code == 400
    assert "does not match" in response.content.decode()
    assert _counts() == before


def test_pkcs12_download_with_short_password_shows_error(
    personas: dict, application: Any, held_cert: Certificate
) -> None:
    before = AuditEvent.objects.count()
    response = _client(personas["operator"]).post(
        reverse("issuance:pkcs12", args=[application.name, held_cert.pk]), {"password": "short"}
    )
    assert response.status_code == 400
    assert "at least 8 characters" in response.content.decode()
    assert AuditEvent.objects.count() == before


def test_pkcs12_download_opens_with_chosen_password_and_is_audited(
    personas: dict, application: Any, held_cert: Certificate
) -> None:
    response = _client(personas["operator"]).post(
        reverse("issuance:pkcs12", args=[application.name, held_cert.pk]),
        {"password": "correct horse battery"},
    )
    assert response.status_code == 200
    key, cert, _chain = export.load_pkcs12(response.content, b"correct horse battery")
    assert key is not None
    assert export.pem(cert) == held_cert.certificate_pem
    event = AuditEvent.objects.filter(action="certificate.key_downloaded").get()
    assert event.actor == personas["operator"]
    assert event.source_ip == "127.0.0.1"


def test_revoke_needs_confirmation(
    personas: dict, application: Any, held_cert: Certificate
) -> None:
    url = reverse("issuance:revoke", args=[application.name, held_cert.pk])
    client = _client(personas["operator"])
    response = client.post(url, {"reason": "keyCompromise"})
    assert response.status_code == 400
    held_cert.refresh_from_db()
    assert held_cert.status == CertificateStatus.ACTIVE
    response = client.post(url, {"reason": "keyCompromise", "confirm": "on"})
    assert response.status_code == 302
    held_cert.refresh_from_db()
    assert held_cert.status == CertificateStatus.REVOKED
    assert held_cert.revocation_reason == "keyCompromise"


def test_last_admin_cannot_be_demoted_or_removed(personas: dict, application: Any) -> None:
    client = _client(personas["admin"])
    admin_id = personas["admin"].pk
    client.post(
        reverse("applications:member-role", args=[application.name, admin_id]), {"role": "auditor"}
    )
    response = client.post(
        reverse("applications:member-remove", args=[application.name, admin_id]), follow=True
    )
    assert "at least one Admin" in response.content.decode()
    assert application.memberships.get(user_id=admin_id).role == "admin"


def test_admin_adds_changes_and_removes_member(
    personas: dict, application: Any, make_user: Any
) -> None:
    newcomer = make_user("newcomer")
    client = _client(personas["admin"])
    client.post(
        reverse("applications:members", args=[application.name]),
        {"username": "newcomer", "role": "auditor"},
    )
    assert application.memberships.get(user=newcomer).role == "auditor"
    client.post(
        reverse("applications:member-role", args=[application.name, newcomer.pk]),
        {"role": "operator"},
    )
    assert application.memberships.get(user=newcomer).role == "operator"
    client.post(reverse("applications:member-remove", args=[application.name, newcomer.pk]))
    assert not application.memberships.filter(user=newcomer).exists()


def test_adding_unknown_user_shows_message(personas: dict, application: Any) -> None:
    before = _counts()
    response = _client(personas["admin"]).post(
        reverse("applications:members", args=[application.name]),
        {"username": "nobody", "role": "auditor"},
    )
    assert response.status_code == 400
    assert "No active user named" in response.content.decode()
    assert _counts() == before
