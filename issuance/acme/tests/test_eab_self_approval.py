"""Whoever created an EAB credential counts as the requester of what the ACME accounts
bound with it order: they may not approve it (web or API); another approver may."""

from __future__ import annotations

from typing import Any

import josepy as jose
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.test import Client
from rest_framework.test import APIClient

from applications.choices import Role
from applications.services import set_member_role
from approvals import services as approvals
from certportal.api import services as credentials
from certportal.events import Actor
from issuance.acme import services as acme_services
from issuance.acme.choices import AuthorizationStatus, OrderStatus
from issuance.acme.models import Authorization, ExternalAccountKey, Order
from issuance.choices import RequestState
from issuance.models import CertificateRequest
from pki import csr as pki_csr
from pki import keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def held_acme_request(acme: Any, application: Any, personas: Any) -> CertificateRequest:
    """An ACME order, by an account bound with the admin's EAB credential, held for an
    Admin's approval. Challenges are beside the point here: the authorization is valid."""
    admin = personas["admin"]
    eab, hmac_key = acme_services.create_eab_key(application, name="ci", actor=Actor(user=admin))
    assert ExternalAccountKey.objects.get(pk=eab.pk).created_by_user == admin
    approvals.save_policy(
        application,
        approvals.PolicySpec(name="all", steps=[approvals.StepSpec(required=1, role=Role.ADMIN)]),
        actor=Actor(label="pytest"),
    )
    assert acme.register((eab.key_id, hmac_key)).status_code == 201
    created = acme.new_order("app.example.test")
    order = Order.objects.get(pk=created["Location"].rstrip("/").rsplit("/", 1)[-1])
    Authorization.objects.filter(order=order).update(status=AuthorizationStatus.VALID)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.READY)
    key = keys.generate_private_key("EC_P256")
    der = pki_csr.build_csr(key, None, dns_names=["app.example.test"]).public_bytes(Encoding.DER)
    finalized = acme.post(created.json()["finalize"], {"csr": jose.encode_b64jose(der)})
    assert finalized.json()["status"] == "processing", finalized.content
    return CertificateRequest.objects.get(state=RequestState.PENDING_APPROVAL, method="acme")


def test_eab_creator_cannot_approve_on_the_web_or_over_the_api(
    held_acme_request: CertificateRequest, personas: Any, application: Any, make_user: Any
) -> None:
    admin = personas["admin"]
    web = Client()
    web.force_login(admin)
    assert b'waiting for you"' not in web.get("/approvals/").content
    response = web.post(f"/approvals/{held_acme_request.pk}/", {"verdict": "approve"})
    assert "EAB credential you created" in response.content.decode()
    api = APIClient()
    token = credentials.create_token(admin, name="t", actor=Actor(user=admin))[1]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/api/v1/applications/{application.name}/requests/{held_acme_request.pk}/approve/"
    response = api.post(url, {"comment": ""}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "own_request"
    held_acme_request.refresh_from_db()
    assert held_acme_request.state == RequestState.PENDING_APPROVAL

    other = make_user("second-admin")
    set_member_role(application, other, Role.ADMIN, actor=Actor(label="pytest"))
    approvals.decide(
        held_acme_request, user=other, verdict="approve", comment="", actor=Actor(user=other)
    )
    held_acme_request.refresh_from_db()
    assert held_acme_request.state == RequestState.ISSUED
