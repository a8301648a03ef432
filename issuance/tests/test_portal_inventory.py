"""The Certificates tab: search, filters, sort, pagination, CSV; overview; login throttle."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from certportal import paging
from certportal.events import SYSTEM
from issuance import inventory, revocation, services
from issuance.choices import CertificateStatus, EnrollmentMethod
from issuance.models import Certificate

pytestmark = pytest.mark.django_db


@pytest.fixture
def certificates(application: Any, tls_profile: Any, actor: Any) -> list[Certificate]:
    names = ["alpha.example.test", "beta.example.test", "gamma.example.test", "localhost"]
    issued = [
        services.submit(
            application=application, profile=tls_profile, method=EnrollmentMethod.UI,
            actor=actor, key_spec=services.KeySpec("EC_P256", common_name=n,
                                                   sans=[n, f"san-{i}.example.test"]),
            validity_days=10 + 30 * i,
        ).certificate
        for i, n in enumerate(names)
    ]  # fmt: skip
    services.revoke(issued[1], reason="superseded", actor=actor)
    return issued


def _names(queryset: Any) -> list[str]:
    return [c.common_name for c in queryset]


def test_search_matches_cn_san_serial_and_fingerprint(
    application: Any, certificates: list[Certificate]
) -> None:
    base = Certificate.objects.filter(application=application)
    alpha = certificates[0]
    assert _names(inventory.filter_certificates(base, q="ALPHA")) == ["alpha.example.test"]
    assert _names(inventory.filter_certificates(base, q="san-2")) == ["gamma.example.test"]
    serial = ":".join(alpha.serial_number[i : i + 2] for i in range(0, 20, 2)).lower()
    assert _names(inventory.filter_certificates(base, q=alpha.serial_number)) == [alpha.common_name]
    assert serial  # colon-separated prefixes are not exact serials: no crash, no false match
    fp = alpha.fingerprint_sha256.upper()
    assert _names(inventory.filter_certificates(base, q=fp)) == ["alpha.example.test"]
    assert _names(inventory.filter_certificates(base, q="nothing-like-this")) == []


def test_filters_status_profile_method_and_expiring(
    application: Any, certificates: list[Certificate], tls_profile: Any
) -> None:
    base = Certificate.objects.filter(application=application)
    revoked = inventory.filter_certificates(base, status=CertificateStatus.REVOKED)
    assert _names(revoked) == ["beta.example.test"]
    assert inventory.filter_certificates(base, status="bogus").count() == 0
    assert inventory.filter_certificates(base, profile=tls_profile.slug).count() == 4
    assert inventory.filter_certificates(base, profile="nope").count() == 0
    assert inventory.filter_certificates(base, method=EnrollmentMethod.ACME).count() == 0
    soon = inventory.filter_certificates(base, expiring_within_days=45, sort="not_after")
    assert _names(soon) == ["alpha.example.test"]  # beta (40 d) is revoked
    by_expiry = _names(inventory.filter_certificates(base, sort="-not_after"))
    assert by_expiry[0] == "localhost"


def _issue_more(application: Any, profile: Any, count: int) -> None:
    services.submit_many(
        application=application, profile=profile, method=EnrollmentMethod.API, actor=SYSTEM,
        asks=[
            services.Ask(key_spec=services.KeySpec("EC_P256", common_name=f"n{i}.example.test"))
            for i in range(count)
        ],
    )  # fmt: skip


def test_inventory_query_count_does_not_grow_with_page_size(
    personas: dict, application: Any, certificates: list[Certificate],
    django_assert_num_queries: Any,
) -> None:  # fmt: skip
    _issue_more(application, certificates[0].profile, 130)
    client = Client()
    client.force_login(personas["auditor"])
    url = reverse("issuance:certificates", args=[application.name])
    client.get(url)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url, {"per_page": "25", "status": "active"}).status_code == 200
    counts = len(small.captured_queries)
    assert counts > 0
    with django_assert_num_queries(counts):
        response = client.get(url, {"per_page": "100", "status": "active"})
    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 100  # 133 active: a next page each


def test_inventory_pages_past_the_count_cap_without_a_total(
    personas: dict, application: Any, certificates: list[Certificate],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _issue_more(application, certificates[0].profile, 30)
    monkeypatch.setattr(paging, "COUNT_CAP", 20)
    client = Client()
    client.force_login(personas["auditor"])
    url = reverse("issuance:certificates", args=[application.name])
    first = client.get(url, {"per_page": "25"}).content.decode()
    assert "More than 20 certificates" in first
    assert "<span>Page 1</span>" in first  # no "of N": the count stopped at the cap
    assert 'rel="next"' in first and 'rel="prev"' not in first
    assert "page=2" in first
    last = client.get(url, {"per_page": "25", "page": "2"}).content.decode()
    assert "34 certificates" in last  # the last page knows the total: 25 + 9
    assert "<span>Page 2 of 2</span>" in last
    assert 'rel="prev"' in last and 'rel="next"' not in last
    past = client.get(url, {"per_page": "25", "page": "7"})
    assert past.context["page"].number == 2


def test_a_substring_search_is_not_counted(
    personas: dict, application: Any, certificates: list[Certificate]
) -> None:
    _issue_more(application, certificates[0].profile, 30)
    client = Client()
    client.force_login(personas["auditor"])
    url = reverse("issuance:certificates", args=[application.name])
    with CaptureQueriesContext(connection) as queries:
        body = client.get(url, {"q": "example", "per_page": "25"}).content.decode()
    assert "More than 25 certificates" in body and 'rel="next"' in body
    counts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT COUNT")]
    assert not [sql for sql in counts if '"issuance_certificate"' in sql]
    last = client.get(url, {"q": "example", "per_page": "25", "page": "2"}).content.decode()
    assert "34 certificates" in last  # the 30 and the four (localhost by its SAN)


def test_inventory_below_the_cap_shows_the_count_and_no_pages(
    personas: dict, application: Any, certificates: list[Certificate]
) -> None:
    client = Client()
    client.force_login(personas["auditor"])
    body = client.get(reverse("issuance:certificates", args=[application.name])).content.decode()
    assert "4 certificates" in body
    assert 'aria-label="Pages"' not in body


def test_inventory_paginates_and_htmx_gets_only_the_table(
    personas: dict, application: Any, certificates: list[Certificate]
) -> None:
    client = Client()
    client.force_login(personas["operator"])
    url = reverse("issuance:certificates", args=[application.name])
    full = client.get(url, {"q": "example"})
    assert b"<html" in full.content and b"Issue a certificate" in full.content
    partial = client.get(url, {"q": "alpha"}, headers={"HX-Request": "true"})
    assert b"<html" not in partial.content
    assert b"alpha.example.test" in partial.content and b"beta.example.test" not in partial.content


def test_csv_export_streams_filtered_rows(
    personas: dict, application: Any, certificates: list[Certificate]
) -> None:
    client = Client()
    client.force_login(personas["auditor"])
    response = client.get(
        reverse("issuance:certificates-csv", args=[application.name]), {"status": "active"}
    )
    assert response.streaming
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    lines = body.decode().strip().splitlines()
    assert lines[0].startswith("common_name,sans,serial_number")
    assert len(lines) == 1 + 3
    assert not any("beta.example.test" in line for line in lines)


def test_csv_export_row_holds_each_column(
    personas: dict, application: Any, certificates: list[Certificate], tls_profile: Any
) -> None:
    client = Client()
    client.force_login(personas["auditor"])
    response = client.get(
        reverse("issuance:certificates-csv", args=[application.name]), {"status": "revoked"}
    )
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    [header, row] = list(csv.reader(io.StringIO(body)))
    values = dict(zip(header, row, strict=True))
    beta = Certificate.objects.get(pk=certificates[1].pk)
    assert values == {
        "common_name": "beta.example.test",
        "sans": "beta.example.test san-1.example.test",
        "serial_number": beta.serial_number,
        "fingerprint_sha256": beta.fingerprint_sha256,
        "status": "revoked",
        "profile": tls_profile.slug,
        "method": "ui",
        "key_algorithm": beta.key_algorithm,
        "not_before": beta.not_before.isoformat(),
        "not_after": beta.not_after.isoformat(),
        "revoked_at": beta.revoked_at.isoformat(),
        "revocation_reason": "superseded",
        "issuer": beta.issuer,
        "created_at": beta.created_at.isoformat(),
    }


def test_certificate_page_does_not_load_the_ca_crl(
    personas: dict, application: Any, certificates: list[Certificate]
) -> None:
    revocation.rebuild_crl(certificates[0].ca_id, force=True)
    client = Client()
    client.force_login(personas["auditor"])
    url = reverse("issuance:certificate", args=[application.name, certificates[0].pk])
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    assert not [q["sql"] for q in queries.captured_queries if "crl_der" in q["sql"]]


def test_overview_shows_counts_expiring_and_svg_chart(
    personas: dict, application: Any, certificates: list[Certificate]
) -> None:
    client = Client()
    client.force_login(personas["auditor"])
    body = client.get(reverse("applications:overview", args=[application.name])).content.decode()
    assert '<svg class="chart"' in body
    # Active: 10, 70 and 100 days (beta, 40 days, is revoked); two fall within 90 days.
    assert "2 active certificates expire in this period" in body
    assert "alpha.example.test" in body  # expires within 30 days
    assert "gamma.example.test" not in body


def test_login_is_throttled_per_username_after_failures(personas: dict) -> None:
    from django.core.cache import cache

    cache.clear()
    client = Client()
    url = reverse("login")
    for _ in range(5):
        client.post(url, {"username": "app-operator", "password": "wrong"})
    response = client.post(url, {"username": "app-operator", "password": "pw-app-operator"})
    assert "Too many failed log-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    other = client.post(url, {"username": "app-auditor", "password": "pw-app-auditor"})
    assert other.status_code == 302
    cache.clear()


def test_login_is_throttled_per_ip_across_usernames(personas: dict) -> None:
    from django.core.cache import cache

    from certportal import auth

    cache.clear()
    client = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(auth.ADDRESS.failures):
        client.post(reverse("login"), {"username": f"guess{i}", "password": "x"})
    response = client.post(
        reverse("login"), {"username": "app-auditor", "password": "pw-app-auditor"}
    )
    assert "Too many failed log-in attempts" in response.content.decode()
    assert (
        Client(REMOTE_ADDR="198.51.100.1")
        .post(reverse("login"), {"username": "app-auditor", "password": "pw-app-auditor"})
        .status_code
        == 302
    )
    cache.clear()


def test_audit_log_filters_by_action(personas: dict, application: Any, certificates: Any) -> None:
    client = Client()
    client.force_login(personas["auditor"])
    url = reverse("applications:audit", args=[application.name])
    body = client.get(url, {"action": "certificate.revoked"}).content.decode()
    assert "certificate.revoked" in body and "certificate.issued" not in body
