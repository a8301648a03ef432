"""Renewing from the certificate page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from issuance.choices import CertificateStatus
from issuance.models import Certificate
from issuance.services import KeySpec, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(application, tls_profile, actor):
    spec = KeySpec(algorithm="EC_P256", common_name="r.example.test")
    return submit(
        application=application, profile=tls_profile, method="ui", actor=actor, key_spec=spec
    ).certificate


def test_operator_renews_with_a_new_key_and_lands_on_the_new_certificate(client, personas, held):
    client.force_login(personas["operator"])
    url = reverse("issuance:renew", args=[held.application.name, held.pk])
    response = client.post(url, {"key": "new"})
    new = Certificate.objects.get(replaces=held)
    assert response.status_code == 302 and str(new.pk) in response["Location"]
    held.refresh_from_db()
    assert held.status == CertificateStatus.SUPERSEDED
    assert new.common_name == "r.example.test" and new.method == "ui"


def test_csr_mode_needs_a_csr_and_writes_nothing_without_one(client, personas, held):
    client.force_login(personas["operator"])
    url = reverse("issuance:renew", args=[held.application.name, held.pk])
    before = Certificate.objects.count()
    response = client.post(url, {"key": "csr", "csr": ""})
    assert response.status_code == 400
    assert "Paste the CSR" in response.content.decode()
    assert Certificate.objects.count() == before


def test_csr_for_other_names_is_refused_with_the_policy_reason(client, personas, held, make_csr):
    client.force_login(personas["operator"])
    url = reverse("issuance:renew", args=[held.application.name, held.pk])
    response = client.post(url, {"key": "csr", "csr": make_csr("evil.test").decode()})
    assert response.status_code == 400
    assert "evil.test" in response.content.decode()
    assert not Certificate.objects.filter(replaces=held).exists()


def test_certificate_without_held_key_offers_only_csr(
    client, personas, application, tls_profile, actor, make_csr
):
    cert = submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("c.example.test"),
    ).certificate
    client.force_login(personas["operator"])
    url = reverse("issuance:renew", args=[application.name, cert.pk])
    page = client.get(url).content.decode()
    assert 'value="csr"' in page and 'value="new"' not in page
    response = client.post(url, {"key": "new"})
    assert response.status_code == 400
    assert not Certificate.objects.filter(replaces=cert).exists()
