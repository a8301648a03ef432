"""Product-admin pages for CAs and profiles: create, external CSR flow, inline validation."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from profiles.choices import CAStatus
from profiles.models import CertificateAuthority, CertificateProfile
from profiles.presets import preset_fields

pytestmark = pytest.mark.django_db


def _admin(product_admin: Any) -> Client:
    client = Client()
    client.force_login(product_admin)
    return client


def _ca_form(slug: str, **extra: Any) -> dict[str, Any]:
    return {"name": slug, "slug": slug, "common_name": f"{slug} CA", "key_algorithm": "EC_P256",
            "validity_days": 3650, **extra}  # fmt: skip


def test_product_admin_creates_root_then_intermediate(product_admin: Any) -> None:
    client = _admin(product_admin)
    assert (
        client.post(reverse("profiles:ca-create", args=["root"]), _ca_form("r1")).status_code == 302
    )
    response = client.post(
        reverse("profiles:ca-create", args=["intermediate"]), _ca_form("i1", parent="r1")
    )
    assert response.status_code == 302
    assert CertificateAuthority.objects.get(slug="i1").parent.slug == "r1"


def test_external_ca_shows_csr_then_refuses_a_non_ca_certificate(
    product_admin: Any, personas: dict, application: Any
) -> None:
    client = _admin(product_admin)
    client.post(reverse("profiles:ca-create", args=["external"]), _ca_form("ext"))
    ca = CertificateAuthority.objects.get(slug="ext")
    assert ca.status == CAStatus.PENDING_CERTIFICATE
    page = client.get(reverse("profiles:ca-detail", args=["ext"])).content.decode()
    assert "BEGIN CERTIFICATE REQUEST" in page
    leaf = application.profiles.first().issuing_ca.certificate_pem  # a CA, but wrong key
    response = client.post(reverse("profiles:ca-install", args=["ext"]), {"certificate_pem": leaf})
    assert response.status_code == 400
    assert "does not match" in response.content.decode()
    ca.refresh_from_db()
    assert ca.status == CAStatus.PENDING_CERTIFICATE


def test_profile_policy_error_shows_inline_and_saves_nothing(
    product_admin: Any, issuing_ca: Any
) -> None:
    fields = preset_fields("tls_server")
    data = {
        "name": "bad", "slug": "bad", "preset": "tls_server", "issuing_ca": issuing_ca.slug,
        "is_active": "on", "validity_days_default": 30, "validity_days_max": 397,
        "renewal_window_days": 30, "rsa_min_bits": 2048, "max_sans": 10,
        "key_usages": fields["key_usages"], "extended_key_usages": ["serverAuth"],
        "dns_rules": "example.test\n*.example.test", "subject_rules": "",
    }  # fmt: skip
    response = _admin(product_admin).post(reverse("profiles:profile-create"), data)
    assert response.status_code == 400
    assert "must be shorter than the default validity" in response.content.decode()
    assert not CertificateProfile.objects.filter(slug="bad").exists()
    data["renewal_window_days"] = 10
    assert _admin(product_admin).post(reverse("profiles:profile-create"), data).status_code == 302
    assert CertificateProfile.objects.get(slug="bad").dns_rules == [
        "example.test",
        "*.example.test",
    ]
