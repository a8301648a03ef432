"""The Syncs tab: forms, actions, the certificate page's sync status, query counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from syncs import lifecycle
from syncs.choices import ItemStatus
from syncs.models import Connection, Sync, SyncItem
from syncs.tests.conftest import SECRET

pytestmark = pytest.mark.django_db


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_connection_form_seals_credentials_and_never_shows_them(personas, application):
    client = browser(personas["admin"])
    url = reverse("syncs:connection-new", kwargs={"slug": application.name})
    answer = client.post(
        url,
        {
            "name": "cf",
            "kind": "cloudflare",
            "api_token": "cf-token-for-the-form",
            "api_base_url": "",
        },
    )
    assert answer.status_code == 302
    connection = Connection.objects.get(name="cf")
    assert connection.credential_values() == {"api_token": "cf-token-for-the-form"}
    edit = client.get(
        reverse("syncs:connection", kwargs={"slug": application.name, "pk": connection.pk})
    )
    assert edit.status_code == 200 and b"cf-token-for-the-form" not in edit.content
    # Blank on edit keeps the stored token.
    client.post(edit.request["PATH_INFO"], {"name": "cf2", "kind": "cloudflare"})
    connection.refresh_from_db()
    assert connection.name == "cf2"
    assert connection.credential_values() == {"api_token": "cf-token-for-the-form"}


def test_connection_form_refuses_a_private_endpoint(personas, application):
    answer = browser(personas["admin"]).post(
        reverse("syncs:connection-new", kwargs={"slug": application.name}),
        {
            "name": "aws",
            "kind": "aws",
            "access_key_id": "AKID",
            "secret_access_key": "x",
            "endpoint_url": "http://10.0.0.5:4566",
        },
    )
    assert answer.status_code == 400
    assert b"private" in answer.content
    assert not Connection.objects.exists()


def test_sync_form_previews_then_saves(personas, application, connection, issue):
    issue("www.example.test")
    client = browser(personas["admin"])
    url = reverse("syncs:new", kwargs={"slug": application.name})
    data = {
        "name": "acm",
        "destination": "aws-acm",
        "connection": connection.pk,
        "selector": "profile",
        "profile": application.profiles.get().pk,
        "options": '{"region": "us-east-1"}',
        "include_private_key": "on",
        "remove_on_revoke": "on",
        "is_active": "on",
    }
    preview = client.post(url, {**data, "preview": "1"})
    assert preview.status_code == 200 and b"www.example.test" in preview.content
    assert not Sync.objects.exists()
    saved = client.post(url, data)
    assert saved.status_code == 302
    sync = Sync.objects.get()
    assert SyncItem.objects.get(sync=sync).status == ItemStatus.PENDING


def test_sync_form_shows_the_destination_error(personas, application, connection):
    answer = browser(personas["admin"]).post(
        reverse("syncs:new", kwargs={"slug": application.name}),
        {
            "name": "acm",
            "destination": "aws-acm",
            "connection": connection.pk,
            "selector": "profile",
            "profile": application.profiles.get().pk,
            "options": '{"region": "nowhere-1"}',
            "include_private_key": "on",
        },
    )
    assert answer.status_code == 400 and b"Unknown region" in answer.content


def test_a_failure_shows_on_the_sync_and_the_certificate_page(
    personas, application, acm_sync, issue, settings
):
    certificate = issue("fail.example.test")
    lifecycle.plan(acm_sync)
    assert lifecycle.push_due() == 0  # the endpoint is loopback: refused
    item = SyncItem.objects.get(sync=acm_sync, certificate=certificate)
    assert item.status == ItemStatus.FAILED and "Endpoint refused" in item.last_error
    client = browser(personas["auditor"])
    page = client.get(reverse("syncs:detail", kwargs={"slug": application.name, "pk": acm_sync.pk}))
    assert b"Endpoint refused" in page.content
    detail = client.get(
        reverse("issuance:certificate", kwargs={"slug": application.name, "pk": certificate.pk})
    )
    assert b"Endpoint refused" in detail.content and b"acm" in detail.content
    assert SECRET.encode() not in page.content + detail.content


def test_sync_pages_query_counts_do_not_grow_with_items(
    personas, application, acm_sync, issue, django_assert_max_num_queries
):
    client = browser(personas["auditor"])
    list_url = reverse("syncs:list", kwargs={"slug": application.name})
    detail_url = reverse("syncs:detail", kwargs={"slug": application.name, "pk": acm_sync.pk})
    client.get(list_url)
    issue("one.example.test")
    lifecycle.plan(acm_sync)
    with django_assert_max_num_queries(30) as few:
        client.get(detail_url)
    for n in range(5):
        issue(f"n{n}.example.test")
    lifecycle.plan(acm_sync)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(detail_url).status_code == 200
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(list_url).status_code == 200
