"""Importing an existing certificate over the API: PEM with its key, or PKCS#12 as
base64; the same refusals as the import page."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12
from rest_framework.test import APIClient

from issuance.models import Certificate
from tests import certfiles

pytestmark = pytest.mark.django_db

URL = "/api/v1/applications/payments-api/certificates/import/"


def client_for(user: Any) -> APIClient:
    api = APIClient()
    api.force_login(user)
    return api


def test_operator_imports_pem_with_its_key(personas: dict[str, Any]) -> None:
    cert, key = certfiles.self_signed()
    body = {"certificate_pem": certfiles.pem(cert), "private_key_pem": certfiles.key_pem(key)}
    response = client_for(personas["operator"]).post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["common_name"] == "imported.example.test"
    assert response.json()["has_private_key"] is True
    assert Certificate.objects.get().method == "import"


def test_pkcs12_as_base64(personas: dict[str, Any]) -> None:
    cert, key = certfiles.self_signed()
    p12 = pkcs12.serialize_key_and_certificates(b"x", key, cert, None, NoEncryption())
    body = {"pkcs12": base64.b64encode(p12).decode()}
    response = client_for(personas["operator"]).post(URL, body, format="json")
    assert response.status_code == 201, response.content


def test_neither_or_a_wrong_key_is_refused(personas: dict[str, Any]) -> None:
    client = client_for(personas["operator"])
    neither = client.post(URL, {}, format="json")
    assert neither.json()["message"] == "Paste a PEM certificate or upload a PKCS#12 file (one)."
    cert, _ = certfiles.self_signed()
    _, other = certfiles.self_signed()
    body = {"certificate_pem": certfiles.pem(cert), "private_key_pem": certfiles.key_pem(other)}
    wrong = client.post(URL, body, format="json")
    assert wrong.status_code == 400
    assert not Certificate.objects.exists()


def test_auditors_may_not_import(personas: dict[str, Any]) -> None:
    cert, _ = certfiles.self_signed()
    body = {"certificate_pem": certfiles.pem(cert)}
    assert client_for(personas["auditor"]).post(URL, body, format="json").status_code == 403
