"""The SCEP section of the Enrollment tab and its pages: Admins enable SCEP and set the
static challenge, Operators mint one-time challenges, Auditors only read."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from issuance.scep import services
from issuance.scep.models import ScepChallenge, ScepEnrollment
from issuance.scep.tests.conftest import ACTOR
from issuance.scep.tests.support import Device, ScepClient
from pki.scep import PKIStatus

pytestmark = pytest.mark.django_db

ENROLLMENT_TAB = "/applications/payments-api/enrollment/"


def _as(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _secret(page: bytes) -> str:
    found = re.search(rb'<code class="scep-secret">([^<]+)</code>', page)
    assert found is not None, page
    return found.group(1).decode()


def test_admin_enables_scep_and_rotates_the_static_challenge(
    personas: dict[str, Any], client: Any
) -> None:
    admin = _as(personas["admin"])
    response = admin.post(
        "/applications/payments-api/scep/new",
        {"profile": "tls-server", "enabled": "on", "allow_renewal": "on",
         "max_outstanding_challenges": "10"},
    )  # fmt: skip
    assert response.status_code == 302
    enrollment = ScepEnrollment.objects.get()
    tab = admin.get(ENROLLMENT_TAB)
    assert b"/scep/payments-api/tls-server/pkiclient.exe" in tab.content
    shown = admin.post(f"/applications/payments-api/scep/{enrollment.pk}/challenge", {})
    assert shown.status_code == 200 and shown["Cache-Control"] == "no-store"
    secret = _secret(shown.content)
    scep = ScepClient(client, "/scep/payments-api/tls-server/pkiclient.exe")
    assert scep.enroll(Device("portal.example.test"), secret).status == PKIStatus.SUCCESS


def test_operator_mints_a_one_time_challenge(
    personas: dict[str, Any], application: Any, tls_profile: Any
) -> None:
    enrollment = services.enable(application, tls_profile, actor=ACTOR)
    operator = _as(personas["operator"])
    tab = operator.get(ENROLLMENT_TAB).content
    assert f"/scep/{enrollment.pk}/mint".encode() in tab
    assert f"/scep/{enrollment.pk}/challenge".encode() not in tab
    shown = operator.post(
        f"/applications/payments-api/scep/{enrollment.pk}/mint",
        {"expected_cn": "dev.example.test", "ttl_minutes": "30"},
    )
    assert shown.status_code == 200
    _secret(shown.content)
    assert ScepChallenge.objects.get().expected_cn == "dev.example.test"
    assert (
        operator.post(f"/applications/payments-api/scep/{enrollment.pk}/challenge", {}).status_code
        == 403
    )


def test_auditor_reads_without_buttons(
    personas: dict[str, Any], application: Any, tls_profile: Any
) -> None:
    enrollment = services.enable(application, tls_profile, actor=ACTOR)
    tab = _as(personas["auditor"]).get(ENROLLMENT_TAB).content
    assert b"pkiclient.exe" in tab
    for page in ("mint", "challenge", "edit"):
        assert f"/scep/{enrollment.pk}/{page}".encode() not in tab


def test_enrollment_tab_queries_do_not_grow_with_enrollments(
    personas: dict[str, Any], application: Any, tls_profile: Any, make_profile: Any, issuing_ca: Any
) -> None:
    admin = _as(personas["admin"])
    services.enable(application, tls_profile, actor=ACTOR)
    admin.get(ENROLLMENT_TAB)
    with CaptureQueriesContext(connection) as one:
        admin.get(ENROLLMENT_TAB)
    for slug in ("p2", "p3"):
        profile = make_profile(slug, issuing_ca)
        application.profiles.add(profile)
        services.enable(application, profile, actor=ACTOR)
    with CaptureQueriesContext(connection) as three:
        assert b"/scep/payments-api/p3/pkiclient.exe" in admin.get(ENROLLMENT_TAB).content
    assert len(three) <= len(one) + 1  # a cache refill may differ by one, never per row
