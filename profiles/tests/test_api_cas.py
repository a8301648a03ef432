"""Product admins' CA pages over the API: a CA with the full subject and name
constraints, an external CA's CSR and its signed certificate, and an imported CA."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from django.utils import timezone
from rest_framework.test import APIClient

from applications.models import AuditEvent
from pki import certs, export, keys, names
from profiles.models import CertificateAuthority
from profiles.tests.test_authorities import _sign_external

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(product_admin: Any) -> APIClient:
    api = APIClient()
    api.force_login(product_admin)
    return api


def test_root_with_subject_and_name_constraints(client: APIClient) -> None:
    body = {
        "name": "Lab root",
        "slug": "lab-root",
        "common_name": "Lab Root",
        "organizational_unit": "Platform",
        "country": "de",
        "permitted_dns": ["example.test"],
    }
    response = client.post("/api/v1/cas/", body, format="json")
    assert response.status_code == 201, response.content
    cert = CertificateAuthority.objects.get(slug="lab-root").certificate()
    assert "OU=Platform" in cert.subject.rfc4514_string()
    assert "C=DE" in cert.subject.rfc4514_string()
    constraints = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    assert [n.value for n in constraints.permitted_subtrees or []] == ["example.test"]


def test_external_ca_csr_then_install(client: APIClient) -> None:
    body = {"name": "Ext", "slug": "ext", "common_name": "Ext Issuing", "external": True}
    created = client.post("/api/v1/cas/", body, format="json").json()
    assert created["status"] == "pending_certificate"
    assert "CERTIFICATE REQUEST" in created["csr"]
    bundle, _ = _sign_external(created["csr"])
    installed = client.post("/api/v1/cas/ext/install/", {"certificate_pem": bundle}, format="json")
    assert installed.status_code == 200, installed.content
    assert installed.json()["status"] == "active"
    again = client.post("/api/v1/cas/ext/install/", {"certificate_pem": bundle}, format="json")
    assert again.status_code == 400
    assert again.json()["message"] == "This CA is not waiting for a certificate."


def test_import_ca_with_its_key_never_shows_the_key(client: APIClient) -> None:
    key = keys.generate_private_key("EC_P256")
    now = timezone.now()
    cert = certs.build_root_ca(
        key, names.build_name("Imported Root"), not_before=now, not_after=now + timedelta(days=365)
    )
    key_pem = keys.private_key_to_pem(key).decode()
    body = {
        "name": "Imported",
        "slug": "imported",
        "certificate_pem": export.pem(cert),
        "private_key_pem": key_pem,
    }
    response = client.post("/api/v1/cas/import/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "imported"
    assert key_pem not in response.content.decode()
    assert AuditEvent.objects.filter(
        object_id=str(CertificateAuthority.objects.get(slug="imported").pk)
    ).exists()
    mismatched = {
        **body,
        "slug": "other",
        "private_key_pem": keys.private_key_to_pem(keys.generate_private_key("EC_P256")).decode(),
    }
    refused = client.post("/api/v1/cas/import/", mismatched, format="json")
    assert refused.status_code == 400
    assert "does not match" in refused.content.decode()
