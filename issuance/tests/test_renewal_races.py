"""A certificate is renewed once: a second renewal (manual, automatic, approved, from any
front) is refused as a conflict with the reason, never an IntegrityError."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from applications.choices import Role
from applications.models import AuditEvent
from approvals import services as approvals
from certportal.api import services as credentials
from certportal.events import Actor
from certportal.models import OutboxEvent
from issuance import renewal, services
from issuance.choices import CertificateStatus, KeyMode, RequestState
from issuance.models import Certificate, CertificateRequest
from issuance.renewal import sweep

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="pytest")


@pytest.fixture
def held(application: Any, tls_profile: Any, personas: Any) -> Certificate:
    spec = services.KeySpec(algorithm="EC_P256", common_name="r.example.test")
    return services.submit(
        application=application,
        profile=tls_profile,
        method="ui",
        actor=Actor(user=personas["operator"]),
        key_spec=spec,
    ).certificate


def _rows() -> tuple[int, int]:
    return Certificate.objects.count(), CertificateRequest.objects.count()


def test_renewing_a_renewed_certificate_is_refused_with_its_successor(held: Certificate) -> None:
    successor = services.renew(held, actor=ACTOR).certificate
    assert successor is not None
    before = _rows()
    with pytest.raises(services.IssuanceRejected) as refused:
        services.renew(held, actor=ACTOR, key_mode="reuse")
    assert refused.value.code == "already_renewed"
    assert refused.value.message == (
        f"Certificate {held.serial_number} has already been renewed "
        f"by certificate {successor.serial_number}."
    )
    assert _rows() == before


def test_an_expired_certificate_is_renewed_once_too(held: Certificate) -> None:
    # Renewal supersedes only active certificates; the successor link still counts.
    Certificate.objects.filter(pk=held.pk).update(status=CertificateStatus.EXPIRED)
    held.refresh_from_db()
    services.renew(held, actor=ACTOR)
    with pytest.raises(services.IssuanceRejected) as refused:
        services.renew(held, actor=ACTOR)
    assert refused.value.code == "already_renewed"
    assert Certificate.objects.filter(replaces=held).count() == 1


def test_renewal_of_a_certificate_revoked_meanwhile_is_refused(held: Certificate) -> None:
    stale = Certificate.objects.get(pk=held.pk)  # loaded before the revocation
    services.revoke(held, reason="keyCompromise", actor=ACTOR)
    with pytest.raises(services.IssuanceRejected) as refused:
        services.renew(stale, actor=ACTOR)
    assert refused.value.code == "already_revoked"
    assert not Certificate.objects.filter(replaces=held).exists()


def test_renew_page_answers_409_for_a_renewed_certificate(personas: Any, held: Certificate) -> None:
    services.renew(held, actor=ACTOR)
    client = Client()
    client.force_login(personas["operator"])
    url = reverse("issuance:renew", args=[held.application.name, held.pk])
    before = _rows()
    response = client.post(url, {"key": "new"})
    assert response.status_code == 409
    assert "has already been renewed by certificate" in response.content.decode()
    assert _rows() == before
    # The detail page no longer offers to renew it.
    detail = client.get(reverse("issuance:certificate", args=[held.application.name, held.pk]))
    assert b"Renew\xe2\x80\xa6" not in detail.content


def _api(user: Any) -> APIClient:
    client = APIClient()
    token = credentials.create_token(user, name="t", actor=ACTOR)[1]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_api_renew_answers_409_for_a_renewed_certificate(personas: Any, held: Certificate) -> None:
    services.renew(held, actor=ACTOR)
    url = f"/api/v1/applications/{held.application.name}/certificates/{held.pk}/renew/"
    response = _api(personas["operator"]).post(url, {"key": "new"}, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "already_renewed"
    assert "has already been renewed by certificate" in body["message"]


def test_sweep_counts_a_certificate_renewed_meanwhile_as_nothing_to_do(
    held: Certificate,
) -> None:
    stale = Certificate.objects.select_related("profile", "application").get(pk=held.pk)
    services.renew(held, actor=ACTOR)  # the manual renewal commits first
    result = renewal.BatchResult()
    failures: list[tuple[Certificate, str]] = []
    sweep._renew_group([stale], KeyMode.NEW, result, failures)
    assert (result.total, failures) == (0, [])
    assert Certificate.objects.filter(replaces=held).count() == 1
    assert not OutboxEvent.objects.filter(event_type="certificate.renewal_failed").exists()


# --- A held renewal approved after the certificate was renewed another way --------------


@pytest.fixture
def held_renewal(application: Any, held: Certificate, personas: Any) -> CertificateRequest:
    """A renewal of `held` by the operator, waiting for an Admin; then the certificate is
    renewed another way (an unchanged renewal, which bypasses approval)."""
    approvals.save_policy(
        application,
        approvals.PolicySpec(name="all", steps=[approvals.StepSpec(required=1, role=Role.ADMIN)]),
        actor=ACTOR,
    )
    approvals.set_renewals_bypass(application, False, actor=ACTOR)
    pending = services.renew(held, actor=Actor(user=personas["operator"]))
    assert pending.pending
    approvals.set_renewals_bypass(application, True, actor=ACTOR)
    assert services.renew(held, actor=ACTOR).certificate is not None
    return pending.request


def _closed(request: CertificateRequest) -> None:
    request.refresh_from_db()
    assert request.state == RequestState.FAILED
    assert "has already been renewed" in request.reason
    assert "closed without issuing" in request.reason
    assert AuditEvent.objects.filter(action="request.failed", object_id=str(request.pk)).exists()
    assert Certificate.objects.filter(replaces=request.replaces).count() == 1


def test_inbox_approval_of_a_renewal_made_moot_answers_409_and_closes_it(
    personas: Any, held_renewal: CertificateRequest
) -> None:
    client = Client()
    client.force_login(personas["admin"])
    response = client.post(f"/approvals/{held_renewal.pk}/", {"verdict": "approve", "comment": ""})
    assert response.status_code == 409
    assert "has already been renewed by certificate" in response.content.decode()
    _closed(held_renewal)
    assert b'waiting for you"' not in client.get("/approvals/").content


def test_api_approval_of_a_renewal_made_moot_answers_409_and_closes_it(
    personas: Any, held_renewal: CertificateRequest
) -> None:
    url = (
        f"/api/v1/applications/{held_renewal.application.name}/requests/{held_renewal.pk}/approve/"
    )
    response = _api(personas["admin"]).post(url, {"comment": "ok"}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "already_renewed"
    _closed(held_renewal)


def test_issue_approved_fails_a_renewal_made_moot(held_renewal: CertificateRequest) -> None:
    # Called directly, past the inbox's own check: the pipeline's lock still refuses it.
    outcome = services.issue_approved(held_renewal, actor=ACTOR)
    assert outcome.certificate is None
    assert outcome.request.state == RequestState.FAILED
    assert "has already been renewed" in outcome.request.reason
