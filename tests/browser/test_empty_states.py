"""Empty pages in a real browser, for each role: what to do next on an Application
without certificates, and a product admin's first steps on an empty portal."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.django_db(transaction=True)


def _login(browser: Browser, base: str, username: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page


def test_product_admin_follows_the_first_steps_of_an_empty_portal(
    browser: Browser, live_server: Any, product_admin: Any, shot: Any
) -> None:
    page = _login(browser, live_server.url, product_admin.get_username())
    page.goto(f"{live_server.url}/")
    steps = page.locator("#setup-steps li")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("certificate authority")
    expect(steps.nth(1)).to_contain_text("profile")
    expect(steps.nth(2)).to_contain_text("Application")
    shot(page, "empty-01-portal-setup")
    page.get_by_role("link", name="Create a certificate profile").click()
    expect(page.get_by_text("No profiles yet")).to_be_visible()
    page.get_by_role("link", name="create one first").click()
    expect(page).to_have_url(re.compile(r"/cas/$"))
    expect(page.get_by_text("No certificate authorities yet")).to_be_visible()
    expect(page.get_by_role("link", name="create a root")).to_be_visible()
    page.goto(f"{live_server.url}/applications/")
    expect(page.get_by_text("No Applications yet")).to_be_visible()
    page.context.close()


@pytest.mark.parametrize(
    ("role", "issues", "adds_members"),
    [("admin", True, True), ("operator", True, False), ("auditor", False, False)],
)
def test_overview_and_lists_of_an_empty_application_by_role(
    browser: Browser,
    live_server: Any,
    personas: dict[str, Any],
    application: Any,
    role: str,
    issues: bool,
    adds_members: bool,
    shot: Any,
) -> None:
    page = _login(browser, live_server.url, personas[role].get_username())
    page.goto(f"{live_server.url}/applications/{application.name}/")
    steps = page.locator("#next-steps")
    expect(steps).to_contain_text("No certificates yet")
    expect(page.get_by_role("link", name="Issue a certificate")).to_have_count(int(issues))
    expect(steps.get_by_role("link", name="Issue one")).to_have_count(int(issues))
    directory = steps.locator("code.acme-directory")
    expect(directory).to_have_count(1 if issues else 0)
    if issues:
        expect(directory).to_contain_text(f"/acme/{application.name}/")
    else:
        expect(steps).to_contain_text("once an Operator or Admin of this Application issues")
    expect(steps.get_by_role("link", name="Add members")).to_have_count(1 if adds_members else 0)
    shot(page, f"empty-02-overview-{role}")

    page.get_by_role("link", name="Certificates", exact=True).click()
    expect(page.get_by_text("No certificates yet")).to_be_visible()
    expect(page.get_by_role("link", name="import one")).to_have_count(1 if issues else 0)
    page.get_by_role("link", name="Syncs").click()
    expect(page.get_by_text("No syncs yet")).to_be_visible()
    expect(page.get_by_text("An Admin of this Application sets them up")).to_have_count(
        0 if adds_members else 1
    )
    page.goto(f"{live_server.url}/approvals/")
    expect(page.get_by_text("Nothing waits for you")).to_be_visible()
    if adds_members:
        page.goto(f"{live_server.url}/applications/{application.name}/alerts/")
        expect(page.get_by_text("No channels yet")).to_be_visible()
        expect(page.get_by_text("No rules yet")).to_be_visible()
    page.context.close()


def test_product_admin_sees_next_steps_on_an_application_without_members(
    browser: Browser, live_server: Any, product_admin: Any, tls_profile: Any
) -> None:
    from applications.services import create_application
    from certportal.events import Actor

    create_application(name="fresh", profiles=[tls_profile], actor=Actor(label="t"))
    page = _login(browser, live_server.url, product_admin.get_username())
    page.goto(f"{live_server.url}/applications/fresh/")
    page.locator("#next-steps").get_by_role("link", name="Add members").click()
    expect(page.get_by_text("No members yet")).to_be_visible()
    expect(page.get_by_role("button", name="Add member")).to_be_visible()
    page.context.close()
