"""certportal.web: download names, scoped lookups, htmx detection, the actor."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.test import RequestFactory
from rest_framework.request import Request

from certportal import permissions
from certportal.web import (
    FILENAME_MAX,
    actor_for,
    attachment,
    is_htmx,
    safe_filename,
    scoped_application,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("www.example.com", "www.example.com"),
        ('evil"; filename="x.exe', "evil___filename__x.exe"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("line\r\nSet-Cookie: a=b", "line__Set-Cookie__a_b"),
        ("bücher.example", "b_cher.example"),
        ("*.example.com", "_.example.com"),
        (".hidden", "hidden"),
        ("", "download"),
        ("...", "download"),
    ],
)
def test_safe_filename_keeps_only_safe_characters(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_safe_filename_is_bounded() -> None:
    assert len(safe_filename("a" * 1000)) == FILENAME_MAX


def test_attachment_names_the_download() -> None:
    response = attachment(HttpResponse(b"x"), 'a"b', "fullchain.pem")
    assert response["Content-Disposition"] == 'attachment; filename="a_b.fullchain.pem"'


def _request(user: Any, headers: dict[str, str] | None = None) -> Any:
    request = RequestFactory().get("/", headers=headers or {}, REMOTE_ADDR="192.0.2.7")
    request.user = user
    return request


@pytest.mark.django_db
def test_an_application_outside_the_users_scope_is_not_found(
    personas: Any, application: Any
) -> None:
    with pytest.raises(Http404):
        scoped_application(_request(personas["outsider"]), application.name)
    with pytest.raises(Http404):
        scoped_application(_request(personas["admin"]), "no-such-application")


@pytest.mark.django_db
def test_a_member_without_the_permission_is_forbidden_or_not_shown(
    personas: Any, application: Any
) -> None:
    auditor = _request(personas["auditor"])
    assert scoped_application(auditor, application.name) == application
    with pytest.raises(PermissionDenied):
        scoped_application(auditor, application.name, permissions.ISSUE)
    with pytest.raises(Http404):
        scoped_application(auditor, application.name, permissions.MANAGE, hide=True)
    admin = _request(personas["admin"])
    assert scoped_application(admin, application.name, permissions.MANAGE, hide=True) == application


def test_htmx_requests_are_told_apart_from_history_restores() -> None:
    assert is_htmx(_request(None, {"HX-Request": "true"}))
    assert not is_htmx(_request(None))
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert not is_htmx(_request(None, restore))


@pytest.mark.django_db
def test_the_actor_is_the_user_and_address_for_pages_and_api_views(personas: Any) -> None:
    page = _request(personas["operator"])
    assert (actor_for(page).user, actor_for(page).source_ip) == (personas["operator"], "192.0.2.7")
    api = Request(page)
    api.user = personas["operator"]
    assert (actor_for(api).user, actor_for(api).source_ip) == (personas["operator"], "192.0.2.7")
