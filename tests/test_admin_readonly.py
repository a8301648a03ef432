"""The Django admin is a read-only window for product admins: no add, change or delete,
no sealed value on any page, a fixed number of queries per list."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from issuance.models import Certificate
from issuance.services import KeySpec, submit

MODELS = [
    "issuance/certificate",
    "issuance/certificaterequest",
    "issuance/blockedkey",
    "applications/auditevent",
    "certportal/outboxevent",
    "alerts/delivery",
]


def _issue(application: Any, profile: Any, actor: Any, n: int) -> list[Certificate]:
    return [
        submit(
            application=application,
            profile=profile,
            method="ui",
            actor=actor,
            key_spec=KeySpec(algorithm="EC_P256", common_name=f"h{i}.example.test"),
        ).certificate
        for i in range(n)
    ]


@pytest.mark.parametrize("model", MODELS)
def test_product_admin_reads_each_list(client, personas, model):
    client.force_login(personas["product_admin"])
    assert client.get(f"/admin/{model}/").status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_nothing_can_be_added(client, personas, model):
    client.force_login(personas["product_admin"])
    assert client.get(f"/admin/{model}/add/").status_code == 403


def test_a_certificate_can_be_viewed_not_changed_or_deleted(
    client, personas, application, tls_profile, actor
):
    (certificate,) = _issue(application, tls_profile, actor, 1)
    sealed = Certificate.objects.get(pk=certificate.pk).private_key
    client.force_login(personas["product_admin"])
    url = reverse("admin:issuance_certificate_change", args=[certificate.pk])
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "h0.example.test" in body
    assert sealed[:40] not in body and "PRIVATE KEY" not in body
    assert 'name="_save"' not in body
    post = client.post(url, {"common_name": "changed.example.test"})
    assert post.status_code == 403
    delete = client.post(
        reverse("admin:issuance_certificate_delete", args=[certificate.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert Certificate.objects.get(pk=certificate.pk).common_name == "h0.example.test"


@pytest.mark.parametrize("who", ["admin", "operator", "auditor", "outsider"])
def test_members_are_not_let_in(client, personas, who):
    client.force_login(personas[who])
    response = client.get("/admin/issuance/certificate/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_who_are_not_product_admins_see_nothing(client, make_user):
    client.force_login(make_user("staff-only", is_staff=True))
    assert client.get("/admin/issuance/certificate/").status_code == 403


@pytest.mark.parametrize("model", ["issuance/certificate", "applications/auditevent"])
def test_lists_cost_the_same_queries_for_two_rows_or_eight(
    client, personas, application, tls_profile, actor, model
):
    client.force_login(personas["product_admin"])
    _issue(application, tls_profile, actor, 2)
    client.get(f"/admin/{model}/")  # warm per-process caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"/admin/{model}/").status_code == 200
    _issue(application, tls_profile, actor, 6)
    with CaptureQueriesContext(connection) as many:
        assert client.get(f"/admin/{model}/").status_code == 200
    assert len(many) == len(few)
