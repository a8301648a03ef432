"""API tokens: CERTPORTAL_API_TOKEN_MAX_DAYS bounds a new token's life, and a token
never creates a token that outlives it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from applications import services as members
from applications.choices import Role
from certportal.api import services as credentials
from certportal.api.models import ApiToken
from certportal.events import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="pytest")


def _session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _bearer(user: Any, expires_at: Any = None) -> tuple[APIClient, ApiToken]:
    token, raw = credentials.create_token(user, name="parent", actor=ACTOR, expires_at=expires_at)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, token


def _create(client: APIClient, expires_in: timedelta | None = None) -> Any:
    body: dict[str, Any] = {"name": "child"}
    if expires_in is not None:
        body["expires_at"] = (timezone.now() + expires_in).isoformat()
    return client.post("/api/v1/tokens/", body, format="json")


def _expires_in(response: Any) -> timedelta:
    row = ApiToken.objects.get(pk=response.json()["id"])
    assert row.expires_at is not None
    return row.expires_at - timezone.now()


def _field_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert error["field"] == "expires_at"
    return error


def test_without_a_maximum_a_token_may_never_expire(personas: dict) -> None:
    response = _create(_session(personas["operator"]))
    assert response.status_code == 201
    assert response.json()["expires_at"] is None


def test_an_expiry_beyond_the_maximum_is_refused(personas: dict, settings: Any) -> None:
    settings.CERTPORTAL_API_TOKEN_MAX_DAYS = 30
    before = ApiToken.objects.count()
    error = _field_error(_create(_session(personas["operator"]), timedelta(days=31)))
    assert "at most 30 days" in error["message"]
    assert ApiToken.objects.count() == before


def test_no_expiry_gets_the_maximum(personas: dict, settings: Any) -> None:
    settings.CERTPORTAL_API_TOKEN_MAX_DAYS = 30
    response = _create(_session(personas["operator"]))
    assert response.status_code == 201
    assert timedelta(days=29, hours=23) < _expires_in(response) <= timedelta(days=30)
    inside = _create(_session(personas["operator"]), timedelta(days=7))
    assert inside.status_code == 201
    assert _expires_in(inside) <= timedelta(days=7)


def test_a_token_cannot_create_a_token_that_outlives_it(personas: dict) -> None:
    client, parent = _bearer(personas["operator"], timezone.now() + timedelta(days=5))
    error = _field_error(_create(client, timedelta(days=6)))
    assert "cannot outlive the token that creates it" in error["message"]
    unbounded = _create(client)
    assert unbounded.status_code == 201
    assert ApiToken.objects.get(pk=unbounded.json()["id"]).expires_at == parent.expires_at
    assert _create(client, timedelta(days=4)).status_code == 201


def test_the_nearer_of_parent_and_maximum_wins(personas: dict, settings: Any) -> None:
    settings.CERTPORTAL_API_TOKEN_MAX_DAYS = 3
    client, parent = _bearer(personas["operator"], timezone.now() + timedelta(days=3))
    settings.CERTPORTAL_API_TOKEN_MAX_DAYS = 10
    assert _create(client, timedelta(days=4)).status_code == 400  # beyond the parent
    response = _create(client)
    assert ApiToken.objects.get(pk=response.json()["id"]).expires_at == parent.expires_at


def test_a_service_account_token_cannot_outlive_the_admins_token(
    personas: dict, application: Any
) -> None:
    members.create_service_account(application, name="ci", role=Role.OPERATOR, actor=ACTOR)
    client, parent = _bearer(personas["admin"], timezone.now() + timedelta(days=2))
    url = f"/api/v1/applications/{application.name}/service-accounts/ci/tokens/"
    later = (timezone.now() + timedelta(days=30)).isoformat()
    _field_error(client.post(url, {"name": "deploy", "expires_at": later}, format="json"))
    response = client.post(url, {"name": "deploy"}, format="json")
    assert response.status_code == 201
    assert ApiToken.objects.get(pk=response.json()["id"]).expires_at == parent.expires_at
