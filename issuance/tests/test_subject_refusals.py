"""A subject the profile refuses reaches the user as a field error (API and form) and
writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from certportal.api import services as credentials
from certportal.events import Actor
from issuance.models import Certificate, CertificateRequest
from pki import csr as pki_csr
from pki import keys

URL = "/api/v1/applications/payments-api/certificates/"
WILDCARD_MESSAGE = (
    'Subject CN "a.*.example.test" is not a valid wildcard name: '
    "a wildcard '*' is only allowed as the entire leftmost label"
)


def _rows() -> tuple[int, int]:
    return CertificateRequest.objects.count(), Certificate.objects.count()


def _csr_with_organization(organization: str) -> str:
    key = keys.generate_private_key("EC_P256")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, "a.example.test"),
        ]
    )
    request = pki_csr.build_csr(key, subject=subject, dns_names=["a.example.test"])
    return request.public_bytes(Encoding.PEM).decode()


def _api(user: Any) -> APIClient:
    client = APIClient()
    token = credentials.create_token(user, name="test", actor=Actor(label="pytest"))[1]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.django_db
def test_api_names_the_subject_field_and_the_reason(personas: dict[str, Any]) -> None:
    api = _api(personas["operator"])
    before = _rows()
    response = api.post(
        URL,
        {"profile": "tls-server", "key_algorithm": "EC_P256", "common_name": "a.*.example.test"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        {"field": "common_name", "code": "bad_subject", "message": WILDCARD_MESSAGE}
    ]
    # A CSR's subject is refused on the csr field, with the attribute named.
    response = api.post(
        URL,
        {"profile": "tls-server", "csr": _csr_with_organization("Example\x00 AG")},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        {
            "field": "csr",
            "code": "bad_subject",
            "message": "Subject O contains a NUL character (U+0000)",
        }
    ]
    assert _rows() == before


@pytest.mark.django_db
def test_issue_form_shows_the_refusal_on_the_common_name_field(
    personas: dict[str, Any], application: Any
) -> None:
    client = Client()
    client.force_login(personas["operator"])
    before = _rows()
    response = client.post(
        reverse("issuance:issue", kwargs={"slug": application.name}),
        {
            "profile": "tls-server",
            "mode": "keygen",
            "common_name": "app.example.test.",
            "sans": "app.example.test",
            "key_algorithm": "EC_P256",
        },
    )
    assert response.status_code == 400
    message = 'Subject CN "app.example.test." ends with a dot'
    assert response.context["form"].errors["common_name"] == [message]
    assert "Subject CN &quot;app.example.test.&quot; ends with a dot" in response.content.decode()
    assert _rows() == before
