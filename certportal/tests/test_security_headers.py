"""Every response carries the Content-Security-Policy; the API docs carry their own."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from certportal import csp

pytestmark = pytest.mark.django_db

REQUIRED = [
    "default-src 'self'",
    "script-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]


@pytest.mark.parametrize("path", ["/accounts/login/", "/healthz", "/api/v1/cas/", "/nowhere/"])
def test_every_response_carries_the_portal_policy(path: str) -> None:
    header = Client().get(path)["Content-Security-Policy"]
    assert all(directive in header.split("; ") for directive in REQUIRED), header
    assert "unsafe-inline" not in header and "unsafe-eval" not in header


def test_api_docs_relax_styles_only(personas: Any) -> None:
    client = Client()
    client.force_login(personas["auditor"])
    header = client.get("/api/docs/")["Content-Security-Policy"]
    assert header == csp.header_value(csp.API_DOCS)
    assert "script-src 'self';" in header and "frame-ancestors 'none'" in header


def test_templates_carry_no_inline_script() -> None:
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "templates"
    for template in templates.rglob("*.html"):
        text = template.read_text()
        assert "<script>" not in text and "<style" not in text, template
        assert " style=" not in text and " onclick=" not in text, template
