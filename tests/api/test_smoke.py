from __future__ import annotations

import functools
from typing import Any

import pytest


def test_operator_issues_with_csr_and_reads_it_back(api: Any, make_csr: Any) -> None:
    csr = make_csr("www.example.test", ["www.example.test"]).decode()
    client = api("operator")
    response = client.post(
        "/api/v1/applications/payments-api/certificates/",
        {"profile": "tls-server", "csr": csr},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["common_name"] == "www.example.test"
    assert body["private_key"] is None
    listed = client.get("/api/v1/applications/payments-api/certificates/").json()
    assert [c["id"] for c in listed["results"]] == [body["id"]]


def test_a_certificate_without_profile_renders_profile_as_null() -> None:
    from issuance.api.serializers import CertificateSerializer
    from issuance.models import Certificate

    data = CertificateSerializer(Certificate(serial_number="01", profile=None, ca=None)).data
    assert data["profile"] is None
    assert data["chain"] == ""
    assert data["serial_number"] == "01"


@pytest.mark.django_db
def test_the_fast_representation_is_what_the_declared_fields_render(
    application, tls_profile, make_csr, actor
):
    """CertificateSerializer writes its output without DRF's field machinery; it must be
    exactly what its declared fields would render, for every shape of certificate."""
    from rest_framework import serializers

    from issuance import services
    from issuance.api.serializers import CertificateSerializer, IssuedCertificateSerializer
    from issuance.models import Certificate

    submit = functools.partial(
        services.submit, application=application, profile=tls_profile, method="api", actor=actor
    )
    first = submit(csr=make_csr("a.example.test", ["a.example.test", "b.example.test"]))
    keyed = submit(
        key_spec=services.KeySpec("EC_P256", "k.example.test", ["k.example.test"]),
        replaces=first.certificate,
    )
    services.revoke(first.certificate, reason="keyCompromise", actor=actor)
    shapes = [
        *Certificate.objects.select_related("ca", "profile"),
        Certificate(serial_number="01", profile=None, ca=None),
    ]
    assert len(shapes) == 3
    for certificate in shapes:
        declared = serializers.Serializer.to_representation(CertificateSerializer(), certificate)
        assert CertificateSerializer(certificate).data == dict(declared)
    issued = IssuedCertificateSerializer(
        keyed.certificate, context={"private_key_pem": keyed.private_key_pem}
    )
    declared = serializers.Serializer.to_representation(issued, keyed.certificate)
    assert issued.data == dict(declared)
    assert issued.data["private_key"] == keyed.private_key_pem
