"""Each list page, empty, says what would appear there and how to get it, for the
viewer's role; the Overview of an Application without certificates says what to do
next; a product admin on an empty portal sees the order of work."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from applications.services import create_application
from certportal.events import Actor

pytestmark = pytest.mark.django_db


def page(user: Any, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def app_url(name: str, application: Any, **query: str) -> str:
    url = reverse(name, kwargs={"slug": application.name})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_product_admin_on_an_empty_portal_sees_the_order_of_work(product_admin):
    html = page(product_admin, reverse("home"))
    ca, profile, app = (
        html.index(reverse("profiles:ca-list")),
        html.index(reverse("profiles:profile-list")),
        html.index(reverse("applications:create")),
    )
    assert "Set up the portal" in html
    assert ca < profile < app
    assert "(done)" not in html


def test_the_order_of_work_marks_what_is_done_and_goes_once_all_is(product_admin, tls_profile):
    html = page(product_admin, reverse("home"))
    assert html.count("(done)") == 2  # the CA and the profile
    create_application(name="first", profiles=[tls_profile], actor=Actor(label="t"))
    assert "Set up the portal" not in page(product_admin, reverse("home"))


def test_a_member_of_nothing_is_told_who_adds_them(make_user):
    user = make_user("newcomer")
    assert "Set up the portal" not in page(user, reverse("home"))
    html = page(user, reverse("applications:list"))
    assert "Ask an Application Admin to add you" in html
    assert reverse("applications:create") not in html


def test_empty_application_list_offers_creation_to_product_admins(product_admin):
    html = page(product_admin, reverse("applications:list"))
    assert "No Applications yet" in html
    assert reverse("applications:create") in html


def test_empty_ca_and_profile_lists_point_to_the_step_before(product_admin):
    html = page(product_admin, reverse("profiles:ca-list"))
    assert "No certificate authorities yet" in html
    assert reverse("profiles:ca-create", args=["root"]) in html
    assert reverse("profiles:ca-import") in html
    html = page(product_admin, reverse("profiles:profile-list"))
    assert "No profiles yet" in html
    assert "It needs a CA" in html


def test_empty_profile_list_with_a_ca_points_to_applications(product_admin, issuing_ca):
    html = page(product_admin, reverse("profiles:profile-list"))
    assert "No profiles yet" in html
    assert "It needs a CA" not in html
    assert reverse("applications:list") in html


@pytest.mark.parametrize(
    ("role", "issue", "acme", "members"),
    [
        ("admin", True, True, True),
        ("operator", True, True, False),
        ("auditor", False, False, False),
        ("product_admin", True, True, True),
    ],
)
def test_overview_without_certificates_shows_next_steps_for_the_role(
    personas, application, tls_profile, role, issue, acme, members
):
    html = page(personas[role], app_url("applications:overview", application))
    assert "No certificates yet" in html
    issue_url = reverse("issuance:issue", kwargs={"slug": application.name})
    assert ("Issue a certificate" in html and issue_url in html) is issue
    directory = f"/acme/{application.name}/{tls_profile.slug}/directory"
    assert (directory in html) is acme
    assert (f'{app_url("applications:members", application)}">Add members' in html) is members
    if role == "auditor":
        assert "Certificates appear here once an Operator or Admin" in html


def test_overview_without_an_active_profile_says_who_attaches_one(personas, make_user):
    bare = create_application(name="bare", profiles=[], actor=Actor(label="t"))
    html = page(personas["product_admin"], app_url("applications:overview", bare))
    assert "No active profile is attached" in html
    assert "Issue a certificate" not in html
    assert app_url("applications:edit", bare) in html


@pytest.mark.parametrize(("role", "issue"), [("operator", True), ("auditor", False)])
def test_empty_inventory_says_how_certificates_arrive(personas, application, role, issue):
    html = page(personas[role], app_url("issuance:certificates", application))
    assert "No certificates yet" in html
    assert (reverse("issuance:import", kwargs={"slug": application.name}) in html) is issue
    assert app_url("applications:enrollment", application) in html


def test_an_inventory_filter_without_match_is_not_an_empty_inventory(personas, application):
    html = page(personas["operator"], app_url("issuance:certificates", application, q="zzz"))
    assert "No certificates match these filters" in html
    assert "No certificates yet" not in html
    html = page(
        personas["operator"],
        app_url("issuance:certificates", application, q="", sort="-created_at"),
    )
    assert "No certificates yet" in html


def test_empty_approvals_inbox_says_what_would_appear(personas):
    html = page(personas["admin"], reverse("approvals:inbox"))
    assert "Nothing waits for you" in html
    assert "approval policy holds a request at a step you approve" in html


def test_empty_alerting_explains_channels_then_rules(personas, application):
    html = page(personas["admin"], app_url("alerts:alerting", application))
    assert "No channels yet" in html
    assert "No rules yet" in html
    assert "Add a channel first" in html


@pytest.mark.parametrize(("role", "manage"), [("admin", True), ("auditor", False)])
def test_empty_syncs_say_who_sets_them_up(personas, application, role, manage):
    html = page(personas[role], app_url("syncs:list", application))
    assert "No syncs yet" in html
    assert "No connections yet" in html
    assert ("An Admin of this Application sets them up" in html) is not manage
    assert (reverse("syncs:connection-new", kwargs={"slug": application.name}) in html) is manage


def test_members_of_an_application_without_any(product_admin, tls_profile):
    bare = create_application(name="nobody", profiles=[tls_profile], actor=Actor(label="t"))
    html = page(product_admin, app_url("applications:members", bare))
    assert "No members yet" in html
    assert "Add them below" in html


def test_audit_log_filter_without_match(personas, application):
    html = page(
        personas["auditor"], app_url("applications:audit", application, action="zzz.nothing")
    )
    assert "No audit events match these filters" in html
