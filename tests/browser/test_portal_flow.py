"""The portal end to end in a real browser: a product admin sets up an Application, an
Operator issues, downloads and revokes, an Auditor only reads, an outsider sees nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from applications.models import Application
from issuance.choices import CertificateStatus
from issuance.models import Certificate
from pki import export

pytestmark = pytest.mark.django_db(transaction=True)

P12_PASSWORD = "browser-test-secret"


def _login(browser: Browser, base: str, username: str) -> Page:
    page = browser.new_context(accept_downloads=True).new_page()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page


def _setup_application(browser: Browser, base: str, shot: Any) -> None:
    page = _login(browser, base, "product-admin")
    page.goto(f"{base}/applications/new/")
    page.locator("#id_name").fill("shop-api")
    page.get_by_label("Description").fill("The shop's public API")
    page.get_by_label("tls-server").check()
    page.get_by_label("First Admin (username)").fill("shop-admin")
    shot(page, "01-create-application")
    page.get_by_role("button", name="Create Application").click()
    expect(page.get_by_role("heading", name="shop-api", level=1)).to_be_visible()
    page.get_by_role("link", name="Members", exact=True).click()
    for username, role in (("shop-operator", "Operator"), ("shop-auditor", "Auditor")):
        page.locator("#id_username").fill(username)
        page.locator("#id_role").select_option(label=role)
        page.get_by_role("button", name="Add member").click()
        expect(page.get_by_role("status").first).to_contain_text(f"{username} added")
    shot(page, "02-members")
    page.context.close()


def _operator_issues_downloads_revokes(browser: Browser, base: str, shot: Any) -> str:
    page = _login(browser, base, "shop-operator")
    page.goto(f"{base}/applications/")
    expect(page.get_by_role("link", name="shop-api")).to_be_visible()
    expect(page.get_by_role("link", name="payments-api")).to_have_count(0)
    page.get_by_role("link", name="shop-api").click()
    page.get_by_role("link", name="Certificates", exact=True).click()
    page.get_by_role("link", name="Issue a certificate").click()
    page.get_by_label("Generate the key on the server").check()
    page.get_by_label("Common name").fill("www.example.test")
    page.get_by_label("Subject alternative names").fill("www.example.test\napi.example.test")
    shot(page, "03-issue-form")
    page.get_by_role("button", name="Issue").click()
    expect(page.get_by_role("heading", name="Certificate issued")).to_be_visible()
    expect(page.get_by_label("Private key (PEM)")).to_contain_text("BEGIN PRIVATE KEY")
    shot(page, "04-issued-key-once")
    page.get_by_role("link", name="Open the certificate").click()
    detail_url = page.url
    expect(page.get_by_text("api.example.test")).to_be_visible()
    page.get_by_label("Password for the PKCS#12 file").fill(P12_PASSWORD)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download PKCS#12").click()
    data = open(download_info.value.path(), "rb").read()  # noqa: SIM115
    key, cert, chain = export.load_pkcs12(data, P12_PASSWORD.encode())
    assert key is not None and chain
    assert cert.subject.rfc4514_string() == "CN=www.example.test"
    shot(page, "05-certificate-detail")
    page.get_by_role("link", name="Revoke…").click()
    page.get_by_label("Reason").select_option("keyCompromise")
    page.get_by_label("I understand that revocation cannot be undone.").check()
    shot(page, "06-revoke-confirm")
    page.get_by_role("button", name="Revoke certificate").click()
    expect(page.get_by_role("status").first).to_contain_text("revoked")
    expect(page.locator("h2 .status")).to_have_text("Revoked")
    page.context.close()
    return detail_url


def _auditor_reads_only(browser: Browser, base: str, detail_url: str, shot: Any) -> None:
    page = _login(browser, base, "shop-auditor")
    page.goto(f"{base}/applications/shop-api/certificates/")
    expect(page.get_by_role("link", name="www.example.test")).to_be_visible()
    expect(page.get_by_role("link", name="Issue a certificate")).to_have_count(0)
    shot(page, "07-auditor-inventory")
    page.goto(detail_url)
    expect(page.get_by_role("link", name="Revoke…")).to_have_count(0)
    expect(page.get_by_role("button", name="Download PKCS#12")).to_have_count(0)
    page.goto(f"{base}/applications/shop-api/audit/")
    expect(page.get_by_text("certificate.revoked")).to_be_visible()
    expect(page.get_by_text("certificate.key_downloaded")).to_be_visible()
    shot(page, "08-auditor-audit-log")
    # Forged POSTs with the Auditor's own session and a valid CSRF token are refused.
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    before = Certificate.objects.count()
    forged = page.request.post(
        f"{base}/applications/shop-api/certificates/issue/",
        form={"csrfmiddlewaretoken": token, "profile": "tls-server", "mode": "keygen",
              "common_name": "forged.example.test", "key_algorithm": "EC_P256"},
        headers={"Referer": f"{base}/applications/shop-api/audit/"},
    )  # fmt: skip
    assert forged.status == 403
    assert Certificate.objects.count() == before
    member_id = re.search(r"/members/(\d+)/", page.content() or "")
    assert member_id is None  # the auditor's page carries no member controls
    page.context.close()


def _outsider_gets_404(browser: Browser, base: str, detail_url: str) -> None:
    page = _login(browser, base, "outsider")
    for url in (f"{base}/applications/shop-api/", f"{base}/applications/shop-api/members/",
                detail_url):  # fmt: skip
        response = page.goto(url)
        assert response is not None and response.status == 404, url
    page.context.close()


def test_application_lifecycle_in_browser(
    browser: Browser, live_server: Any, personas: dict, make_user: Any, shot: Any
) -> None:
    for name in ("shop-admin", "shop-operator", "shop-auditor"):
        make_user(name)
    base = live_server.url
    _setup_application(browser, base, shot)
    app = Application.objects.get(name="shop-api")
    assert {m.user.username: m.role for m in app.memberships.select_related("user")} == {
        "shop-admin": "admin", "shop-operator": "operator", "shop-auditor": "auditor",
    }  # fmt: skip
    detail_url = _operator_issues_downloads_revokes(browser, base, shot)
    issued = Certificate.objects.get(application=app)
    assert issued.status == CertificateStatus.REVOKED
    _auditor_reads_only(browser, base, detail_url, shot)
    _outsider_gets_404(browser, base, detail_url)
