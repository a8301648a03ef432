"""API tokens and permission grants cached per process (with Redis): a repeated request
reads neither from the database, and revocation, deactivation, expiry and a lost role are
seen by the very next request. Without Redis nothing is cached."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from applications.services import remove_member
from certportal.api import services as credentials
from certportal.api.models import ApiToken
from certportal.events import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="pytest")


@pytest.fixture
def cached(redis_cache: str, settings: Any) -> None:
    settings.CERTPORTAL_CONFIG_CACHE_SECONDS = 60


def _list(api: Any, application: Any, persona: str = "operator") -> tuple[int, list[str]]:
    """GET the Application's certificates: (status, the tables the request read)."""
    with CaptureQueriesContext(connection) as ctx:
        response = api(persona).get(f"/api/v1/applications/{application.name}/certificates/")
    tables = [t for q in ctx.captured_queries for t in _TABLES if t in q["sql"]]
    return response.status_code, tables


_TABLES = ('FROM "api_apitoken"', '"guardian_userobjectpermission"')


def test_with_redis_a_repeated_request_reads_no_token_and_no_grant(cached, api, application):
    status, tables = _list(api, application)
    assert status == 200 and tables  # the first request reads both
    assert _list(api, application) == (200, [])


def test_without_redis_every_request_reads_the_token_and_the_grant(settings, api, application):
    settings.CERTPORTAL_CONFIG_CACHE_SECONDS = 60
    _list(api, application)
    status, tables = _list(api, application)
    assert status == 200 and set(tables) == set(_TABLES)


def test_revocation_is_seen_by_the_next_request(cached, api, application, tokens):
    assert _list(api, application)[0] == 200
    token = ApiToken.objects.get(key_id=tokens["operator"][4:16])
    credentials.revoke_token(token, actor=ACTOR)
    assert _list(api, application)[0] == 401


def test_expiry_is_checked_on_every_request(cached, api, application, tokens):
    token = ApiToken.objects.get(key_id=tokens["operator"][4:16])
    token.expires_at = timezone.now() + timedelta(hours=1)
    token.save()
    assert _list(api, application)[0] == 200
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert _list(api, application)[0] == 401


def test_a_deactivated_user_is_refused_at_the_next_request(cached, api, application, personas):
    assert _list(api, application)[0] == 200
    personas["operator"].is_active = False
    personas["operator"].save()
    assert _list(api, application)[0] == 401


def test_a_removed_member_loses_the_application_at_the_next_request(
    cached, api, application, personas
):
    assert _list(api, application)[0] == 200
    remove_member(application, personas["operator"], actor=ACTOR)
    assert _list(api, application)[0] == 404


def test_last_use_is_written_once_a_minute_though_the_token_is_cached(
    cached, api, application, tokens
):
    key_id = tokens["operator"][4:16]
    with CaptureQueriesContext(connection) as ctx:
        for _ in range(3):
            assert _list(api, application)[0] == 200
    writes = [q for q in ctx.captured_queries if q["sql"].startswith('UPDATE "api_apitoken"')]
    assert len(writes) == 1
    assert ApiToken.objects.get(key_id=key_id).last_used_at is not None
    later = timezone.now() + timedelta(minutes=2)
    with time_machine.travel(later), CaptureQueriesContext(connection) as ctx:
        assert _list(api, application)[0] == 200
    assert [q for q in ctx.captured_queries if q["sql"].startswith('UPDATE "api_apitoken"')]


def test_a_login_keeps_the_caches_but_a_profile_change_does_not(cached, client, personas):
    from certportal import generation

    user = personas["operator"]
    before = generation.current()
    user.set_password("a long enough password")
    user.save()  # the password (and every other field) may matter: caches move on
    moved = generation.current()
    assert moved != before
    assert client.login(username=user.username, password="a long enough password")
    assert generation.current() == moved  # only last_login was written
