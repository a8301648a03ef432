"""No one approves their own request through a machine identity: service accounts never
decide, and the people behind a service account or its tokens count as its requester."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from applications import services as members
from applications.choices import Role
from applications.services import set_member_role
from approvals import services
from approvals.models import ApprovalFlow
from certportal.api import services as credentials
from certportal.api.models import ApiToken, ServiceAccount
from certportal.events import Actor
from issuance.choices import RequestState
from issuance.models import CertificateRequest

pytestmark = pytest.mark.django_db

ISSUE = "/api/v1/applications/payments-api/certificates/"


def _api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _token(user: Any, minted_by: Any) -> str:
    return credentials.create_token(user, name="t", actor=Actor(user=minted_by))[1]


def _web(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _approve_url(request: CertificateRequest) -> str:
    return f"/api/v1/applications/payments-api/requests/{request.pk}/approve/"


@pytest.fixture
def every_request_held(application: Any) -> Any:
    spec = services.PolicySpec(name="all", steps=[services.StepSpec(required=1, role=Role.ADMIN)])
    return services.save_policy(application, spec, actor=Actor(label="pytest"))


@pytest.fixture
def second_admin(application: Any, make_user: Any) -> Any:
    user = make_user("second-admin")
    set_member_role(application, user, Role.ADMIN, actor=Actor(label="pytest"))
    return user


def _request_with(token: str) -> CertificateRequest:
    response = _api(token).post(
        ISSUE,
        {"profile": "tls-server", "key_algorithm": "EC_P256", "common_name": "m.example.test"},
        format="json",
    )
    assert response.status_code == 202, response.content
    return CertificateRequest.objects.get(pk=response.json()["request_id"])


def _still_pending(request: CertificateRequest) -> None:
    request.refresh_from_db()
    assert request.state == RequestState.PENDING_APPROVAL


def test_creator_and_token_minter_are_recorded(application: Any, personas: Any) -> None:
    admin = personas["admin"]
    account = members.create_service_account(
        application, name="ci", role=Role.OPERATOR, actor=Actor(user=admin)
    )
    _token(account.user, minted_by=admin)
    assert ServiceAccount.objects.get(pk=account.pk).created_by == admin
    assert ApiToken.objects.get(user=account.user).created_by == admin


def test_admin_cannot_mint_a_service_account_to_approve_their_own_request(
    personas: Any, every_request_held: Any
) -> None:
    admin = personas["admin"]
    held = _request_with(_token(admin, minted_by=admin))
    made = _api(_token(admin, minted_by=admin)).post(
        "/api/v1/applications/payments-api/service-accounts/",
        {"name": "rubber-stamp", "role": "admin"},
        format="json",
    )
    assert made.status_code == 201, made.content
    stamp = ServiceAccount.objects.get(name="rubber-stamp")
    response = _api(_token(stamp.user, minted_by=admin)).post(
        _approve_url(held), {"comment": "lgtm"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["message"] == (
        "A service account cannot decide on requests; a person must."
    )
    _still_pending(held)
    assert services.inbox(stamp.user) == []
    assert not services.eligible(ApprovalFlow.objects.get(request=held), stamp.user)


def test_service_account_cannot_be_a_named_approver(application: Any, personas: Any) -> None:
    account = members.create_service_account(
        application, name="ci", role=Role.ADMIN, actor=Actor(user=personas["admin"])
    )
    spec = services.PolicySpec(
        name="named", steps=[services.StepSpec(required=1, users=[account.user])]
    )
    with pytest.raises(services.ApprovalError) as refused:
        services.save_policy(application, spec, actor=Actor(label="pytest"))
    assert (refused.value.code, refused.value.field) == ("service_account", "steps")
    from approvals.forms import StepForm

    choices = StepForm(application=application).fields["users"].queryset  # type: ignore[attr-defined]
    assert account.user not in choices and personas["admin"] in choices


@pytest.fixture
def machine_request(
    application: Any, personas: Any, every_request_held: Any
) -> tuple[CertificateRequest, ServiceAccount]:
    """A request by a service account the admin created and minted a token for."""
    admin = personas["admin"]
    account = members.create_service_account(
        application, name="deployer", role=Role.OPERATOR, actor=Actor(user=admin)
    )
    return _request_with(_token(account.user, minted_by=admin)), account


def test_creator_of_the_service_account_cannot_approve_its_request_on_the_web(
    personas: Any, second_admin: Any, machine_request: Any
) -> None:
    held, _ = machine_request
    admin = _web(personas["admin"])
    assert b'value="approve"' not in admin.get(f"/approvals/{held.pk}/").content
    assert b'waiting for you"' not in admin.get("/approvals/").content
    response = admin.post(f"/approvals/{held.pk}/", {"verdict": "approve", "comment": ""})
    assert response.status_code == 200
    assert "service account, API token or EAB credential you created" in response.content.decode()
    _still_pending(held)
    # Another Admin may.
    other = _web(second_admin)
    response = other.post(f"/approvals/{held.pk}/", {"verdict": "approve", "comment": ""})
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.state == RequestState.ISSUED


def test_creator_of_the_service_account_cannot_approve_its_request_over_the_api(
    personas: Any, machine_request: Any
) -> None:
    held, _ = machine_request
    admin = personas["admin"]
    response = _api(_token(admin, minted_by=admin)).post(
        _approve_url(held), {"comment": ""}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "own_request"
    _still_pending(held)


def test_whoever_minted_the_token_counts_as_requester_too(
    application: Any, personas: Any, second_admin: Any, every_request_held: Any
) -> None:
    account = members.create_service_account(
        application, name="deployer", role=Role.OPERATOR, actor=Actor(user=personas["admin"])
    )
    held = _request_with(_token(account.user, minted_by=second_admin))
    for person in (personas["admin"], second_admin):
        with pytest.raises(services.ApprovalError) as refused:
            services.decide(
                held, user=person, verdict="approve", comment="", actor=Actor(user=person)
            )
        assert refused.value.code == "own_request"
    _still_pending(held)


def test_deleting_the_service_account_does_not_free_its_creator_to_approve(
    personas: Any, machine_request: Any
) -> None:
    held, account = machine_request
    members.delete_service_account(account, actor=Actor(user=personas["admin"]))
    response = _web(personas["admin"]).post(
        f"/approvals/{held.pk}/", {"verdict": "approve", "comment": ""}
    )
    assert "you created" in response.content.decode()
    _still_pending(held)


def test_existing_credentials_get_their_creator_from_the_audit_trail(
    application: Any, personas: Any
) -> None:
    import importlib

    from django.apps import apps

    admin = personas["admin"]
    account = members.create_service_account(
        application, name="old", role=Role.OPERATOR, actor=Actor(user=admin)
    )
    _token(account.user, minted_by=admin)
    unrecorded = members.create_service_account(
        application, name="scripted", role=Role.OPERATOR, actor=Actor(label="bootstrap")
    )
    ServiceAccount.objects.update(created_by=None)
    ApiToken.objects.update(created_by=None)
    migration = importlib.import_module(
        "certportal.api.migrations.0002_service_account_and_token_creators"
    )
    migration.creators_from_audit(apps, None)
    assert ServiceAccount.objects.get(pk=account.pk).created_by == admin
    assert ApiToken.objects.get(user=account.user).created_by == admin
    assert ServiceAccount.objects.get(pk=unrecorded.pk).created_by is None


def test_the_badge_counts_no_request_of_a_service_account_its_creator_made(
    personas: Any, second_admin: Any, machine_request: Any
) -> None:
    from approvals.inbox import waiting_count

    assert waiting_count(personas["admin"]) == len(services.inbox(personas["admin"])) == 0
    assert waiting_count(second_admin) == len(services.inbox(second_admin)) == 1
    assert waiting_count(machine_request[1].user) == 0  # a service account decides nothing
