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


def test_the_certificate_list_does_not_load_the_ca_crl(api: Any, make_csr: Any) -> None:
    """A CRL of 100k entries is megabytes; the list joins the CA once per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from issuance import revocation
    from issuance.models import Certificate

    client = api("operator")
    csr = make_csr("www.example.test", ["www.example.test"]).decode()
    url = "/api/v1/applications/payments-api/certificates/"
    client.post(url, {"profile": "tls-server", "csr": csr}, format="json")
    revocation.rebuild_crl(Certificate.objects.get().ca_id, force=True)
    with CaptureQueriesContext(connection) as queries:
        assert len(client.get(url).json()["results"]) == 1
    assert not [q["sql"] for q in queries.captured_queries if "crl_der" in q["sql"]]
