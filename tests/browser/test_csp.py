"""The Content-Security-Policy holds in a real browser: every main page, the admin and
the API docs load and work with no violation reported."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from certportal.events import Actor
from issuance import services as issuance

pytestmark = pytest.mark.django_db(transaction=True)

# Collects every violation the page reports, including ones raised before load.
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""

PORTAL_PAGES = [
    "/",
    "/applications/",
    "/applications/payments-api/",
    "/applications/payments-api/certificates/",
    "/applications/payments-api/certificates/issue/",
    "/applications/payments-api/certificates/import/",
    "/applications/payments-api/members/",
    "/applications/payments-api/enrollment/",
    "/applications/payments-api/audit/",
    "/applications/payments-api/approvals/",
    "/applications/payments-api/alerts/",
    "/applications/payments-api/renewal/",
    "/applications/payments-api/edit/",
    "/applications/new/",
    "/approvals/",
    "/audit/",
    "/cas/",
    "/cas/test-root/",
    "/profiles/",
    "/profiles/tls-server/",
    "/admin/",
    "/admin/auth/user/",
]


def _page(browser: Browser) -> tuple[Page, list[str]]:
    page = browser.new_context().new_page()
    console: list[str] = []
    page.on(
        "console",
        lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.add_init_script(LISTEN)
    return page, console


def _violations(page: Page, console: list[str]) -> list[str]:
    page.wait_for_timeout(150)  # violation events are dispatched asynchronously
    return [*page.evaluate("window.__csp"), *console]


def _login(page: Page, base: str, url: str = "/accounts/login/") -> None:
    page.goto(base + url)
    page.get_by_label("Username").fill("product-admin")
    page.get_by_label("Password").fill("pw-product-admin")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def test_portal_pages_report_no_csp_violation(
    browser: Browser, live_server: Any, personas: dict, application: Any, tls_profile: Any
) -> None:
    issued = issuance.submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=Actor(label="pytest"),
        key_spec=issuance.KeySpec("EC_P256", "www.example.test", ["www.example.test"]),
    )
    base = live_server.url
    page, console = _page(browser)
    response = page.goto(base + "/accounts/login/")
    assert response is not None
    header = response.headers["content-security-policy"]
    assert "default-src 'self'" in header and "frame-ancestors 'none'" in header
    _login(page, base)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    pages = [*PORTAL_PAGES, f"/applications/payments-api/certificates/{issued.certificate.pk}/"]
    for url in pages:
        response = page.goto(base + url)
        assert response is not None and response.status == 200, url
        assert _violations(page, console) == [], url
    # htmx at work: the certificate search swaps results in place.
    page.goto(base + "/applications/payments-api/certificates/")
    expect(page.get_by_role("link", name="www.example.test")).to_be_visible()
    page.locator("input[name=q]").press_sequentially("nomatch")
    expect(page.get_by_role("link", name="www.example.test")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"q=nomatch"))  # htmx swapped and pushed the URL
    assert _violations(page, console) == []


def test_admin_login_page_reports_no_csp_violation(
    browser: Browser, live_server: Any, personas: dict
) -> None:
    page, console = _page(browser)
    _login(page, live_server.url, "/admin/login/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    assert _violations(page, console) == []


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_api_docs_render_with_their_own_policy(
    browser: Browser, live_server: Any, personas: dict, path: str
) -> None:
    page, console = _page(browser)
    _login(page, live_server.url)
    response = page.goto(live_server.url + path)
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_role("heading", name=re.compile("certportal API"))).to_be_visible(
        timeout=20000
    )
    page.wait_for_load_state("networkidle")
    violations = _violations(page, console)
    # Redoc's menu shows its vendor's logo from their CDN; the policy keeps the page
    # from calling out, and Redoc drops the image when it fails to load.
    assert [v for v in violations if "cdn.redoc.ly" not in v] == []
