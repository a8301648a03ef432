"""A service account is a member of its own Application only: neither the web forms nor
the API nor the service itself make it a member, or first Admin, of another."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from applications import services as members
from applications.choices import Role
from applications.models import Application, Membership
from applications.services import MembershipError, create_application, set_member_role
from certportal.api import services as credentials
from certportal.events import Actor

pytestmark = pytest.mark.django_db

TEST_ACTOR = Actor(label="pytest")


@pytest.fixture
def foreign_account(personas: dict) -> Any:
    """A service account of other-app (where the outsider is Admin)."""
    other = Application.objects.get(name="other-app")
    return members.create_service_account(
        other, name="deployer", role=Role.OPERATOR, actor=TEST_ACTOR
    )


def test_web_member_form_refuses_another_applications_service_account(
    personas: dict, application: Application, foreign_account: Any
) -> None:
    client = Client()
    client.force_login(personas["admin"])
    response = client.post(
        reverse("applications:members", args=[application.name]),
        {"username": foreign_account.user.username, "role": Role.ADMIN},
    )
    assert response.status_code == 400
    assert "No active user named" in response.content.decode()
    assert not Membership.objects.filter(application=application, user=foreign_account.user)


def test_web_create_form_refuses_a_service_account_as_first_admin(
    personas: dict, tls_profile: Any, foreign_account: Any
) -> None:
    client = Client()
    client.force_login(personas["product_admin"])
    response = client.post(
        reverse("applications:create"),
        {"name": "borrowed", "profiles": [tls_profile.pk],
         "first_admin": foreign_account.user.username},
    )  # fmt: skip
    assert response.status_code in (200, 400)
    assert "No active user named" in response.content.decode()
    assert not Application.objects.filter(name="borrowed").exists()


def test_api_refuses_another_applications_service_account(
    personas: dict, application: Application, foreign_account: Any
) -> None:
    token = credentials.create_token(personas["admin"], name="t", actor=TEST_ACTOR)[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(
        f"/api/v1/applications/{application.name}/members/",
        {"username": foreign_account.user.username, "role": "admin"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "username"


def test_the_service_refuses_it_whichever_front_calls(
    application: Application, foreign_account: Any
) -> None:
    with pytest.raises(MembershipError, match="its own Application"):
        set_member_role(application, foreign_account.user, Role.AUDITOR, actor=TEST_ACTOR)
    with pytest.raises(MembershipError):
        create_application(name="borrowed", first_admin=foreign_account.user, actor=TEST_ACTOR)
    assert not Application.objects.filter(name="borrowed").exists()


def test_a_service_accounts_role_in_its_own_application_can_change(
    foreign_account: Any,
) -> None:
    membership = set_member_role(
        foreign_account.application, foreign_account.user, Role.AUDITOR, actor=TEST_ACTOR
    )
    assert membership.role == Role.AUDITOR
