"""EST fixtures: an enrollment of the test Application's tls-server profile with one
Basic credential, and helpers to send CSRs the way EST clients do."""

from __future__ import annotations

import base64
import email
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.test import Client

from applications.models import Application
from certportal.events import Actor
from issuance.est import services
from issuance.est.models import EstEnrollment
from pki import csr as pki_csr
from pki import keys
from profiles.models import CertificateProfile

ACTOR = Actor(label="pytest")
PROXY_HEADER = "X-SSL-Client-Cert"


@pytest.fixture
def est_settings(settings: Any) -> Any:
    settings.CERTPORTAL_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.CERTPORTAL_EST_CLIENT_CERT_HEADER = PROXY_HEADER
    return settings


@pytest.fixture
def enrollment(application: Application, tls_profile: CertificateProfile) -> EstEnrollment:
    spec = services.EnrollmentSpec(profile=tls_profile, client_cert_auth=True)
    return services.save_enrollment(application, spec, actor=ACTOR)


@pytest.fixture
def basic(enrollment: EstEnrollment) -> tuple[str, str]:
    _credential, password = services.create_credential(enrollment, username="device", actor=ACTOR)
    return "device", password


def auth_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def new_csr(
    common_name: str = "dev.example.test",
    dns_names: tuple[str, ...] = ("dev.example.test",),
    algorithm: str = "EC_P256",
) -> tuple[bytes, Any]:
    """A DER CSR and its key."""
    key = keys.generate_private_key(algorithm)
    csr = pki_csr.build_csr(key, common_name, dns_names=dns_names)
    return csr.public_bytes(Encoding.DER), key


def multipart_parts(content_type: str, body: bytes) -> dict[str, bytes]:
    """The decoded parts of a multipart/mixed answer, by content type."""
    message = email.message_from_bytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = {}
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if not part.is_multipart() and isinstance(payload, bytes):
            parts[part.get_content_type()] = payload
    return parts


@pytest.fixture
def post_csr(est_settings: Any) -> Callable[..., Any]:
    """POST a body to an EST operation of a label, as the trusted proxy would forward it."""

    def post(
        label: str,
        operation: str,
        body: bytes,
        *,
        auth: tuple[str, str] | None = None,
        content_type: str = "application/pkcs10",
        client_cert_pem: str | None = None,
        **headers: str,
    ) -> Any:
        extra: dict[str, Any] = dict(headers)
        if auth is not None:
            extra["HTTP_AUTHORIZATION"] = auth_header(*auth)
        if client_cert_pem is not None:
            from urllib.parse import quote

            extra["HTTP_X_SSL_CLIENT_CERT"] = quote(client_cert_pem)
        url = f"/.well-known/est/{label}/{operation}" if label else f"/.well-known/est/{operation}"
        return Client().post(url, body, content_type=content_type, **extra)

    return post
