from __future__ import annotations

from typing import Any


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
