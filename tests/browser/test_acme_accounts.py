"""ACME account control in a real browser: an Auditor reads the accounts list on the
Enrollment tab, an Admin deactivates one account and then revokes the credential that
bound the others, deactivating them too."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from applications.models import Application
from certportal.events import Actor
from issuance.acme import services
from issuance.acme.models import Account

pytestmark = pytest.mark.django_db(transaction=True)


def _login(browser: Browser, base: str, username: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page


def _accounts(application: Application, tls_profile: Any, count: int) -> list[Account]:
    eab, _ = services.create_eab_key(
        application, name="fleet", actor=Actor(label="pytest"), reusable=True
    )
    return [
        Account.objects.create(
            application=application,
            profile=tls_profile,
            eab_key=eab,
            jwk={},
            thumbprint=f"thumb-{i}".ljust(43, "x"),
            contact=[f"mailto:host{i}@example.test"],
        )
        for i in range(count)
    ]


def test_acme_accounts_list_and_deactivate_in_browser(
    browser: Browser, live_server: Any, personas: dict, application: Any, tls_profile: Any,
    shot: Any,
) -> None:  # fmt: skip
    first, *_ = _accounts(application, tls_profile, 3)
    base = live_server.url

    page = _login(browser, base, "app-auditor")
    page.goto(f"{base}/applications/{application.name}/")
    page.get_by_role("link", name="Enrollment", exact=True).click()
    rows = page.locator("tr.acme-account")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text=first.thumbprint)).to_contain_text("host0@example.test")
    expect(page.get_by_role("link", name="Deactivate…")).to_have_count(0)
    page.context.close()

    page = _login(browser, base, "app-admin")
    page.goto(f"{base}/applications/{application.name}/enrollment/")
    row = page.locator("tr.acme-account", has_text=first.thumbprint)
    row.get_by_role("link", name="Deactivate…").click()
    shot(page, "acme-01-deactivate-confirm")
    page.get_by_role("button", name="Deactivate account").click()
    expect(page.get_by_role("status").first).to_contain_text("ACME account deactivated")
    expect(page.locator("tr.acme-account", has_text=first.thumbprint)).to_contain_text(
        "Deactivated"
    )
    page.get_by_role("link", name="Revoke…").click()
    expect(page.get_by_label("Also deactivate 2 accounts bound with this key")).to_be_checked()
    shot(page, "acme-02-revoke-eab-confirm")
    page.get_by_role("button", name="Revoke EAB credential").click()
    expect(page.get_by_role("status").first).to_contain_text("2 account(s) deactivated")
    shot(page, "acme-03-accounts-deactivated")
    page.context.close()
    assert set(Account.objects.values_list("status", flat=True)) == {"deactivated"}
