"""Bad input answers 4xx in the one error format and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from applications.models import AuditEvent
from certportal.api import services as credentials
from certportal.api.models import ApiToken
from certportal.events import Actor
from issuance.models import Certificate, CertificateRequest

URL = "/api/v1/applications/payments-api/certificates/"


def _counts() -> tuple[int, int, int]:
    return (
        CertificateRequest.objects.count(),
        Certificate.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def unchanged(db: Any) -> Any:
    before = _counts()
    yield
    assert _counts() == before


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "errors"}
    return body


def test_malformed_json_is_a_parse_error(api: Any, unchanged: None) -> None:
    response = api("operator").post(URL, "{not json", content_type="application/json")
    assert _error(response, 400)["code"] == "parse_error"


def test_unknown_profile_is_a_field_error(api: Any, make_csr: Any, unchanged: None) -> None:
    csr = make_csr("a.example.test", ["a.example.test"]).decode()
    response = api("operator").post(URL, {"profile": "nope", "csr": csr}, format="json")
    body = _error(response, 400)
    assert body["errors"] == [
        {"field": "profile", "code": "unknown_profile", "message": body["errors"][0]["message"]}
    ]


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({"profile": "tls-server", "key_algorithm": "EC_P256", "sans": "x"}, "sans", "not_a_list"),
        ({"profile": "tls-server", "key_algorithm": "DSA"}, "key_algorithm", "invalid_choice"),
        (
            {"profile": "tls-server", "key_algorithm": "EC_P256", "validity_days": "soon"},
            "validity_days",
            "invalid",
        ),
        ({"profile": ["tls-server"], "csr": "x"}, "profile", "invalid"),
        ({"profile": "tls-server"}, None, "csr_or_key_algorithm"),
        ({"profile": "tls-server", "csr": "-----BEGIN CERTIFICATE REQUEST-----"}, "csr", "bad_csr"),
        (
            {"profile": "tls-server", "key_algorithm": "EC_P256", "sans": ["evil.example.org"]},
            "sans",
            "rejected_identifier",
        ),
    ],
)
def test_wrong_types_and_refusals_name_field_and_code(
    api: Any, unchanged: None, payload: dict[str, Any], field: str | None, code: str
) -> None:
    body = _error(api("operator").post(URL, payload, format="json"), 400)
    assert (body["errors"][0]["field"], body["errors"][0]["code"]) == (field, code)


def test_oversized_csr_is_refused_before_parsing(api: Any, unchanged: None) -> None:
    payload = {"profile": "tls-server", "csr": "A" * (64 * 1024 + 1)}
    body = _error(api("operator").post(URL, payload, format="json"), 400)
    assert body["errors"][0]["field"] == "csr"
    assert body["errors"][0]["code"] == "max_length"


@pytest.mark.parametrize("state", ["expired", "revoked", "garbled", "wrong secret"])
def test_unusable_tokens_are_401(personas: Any, make_csr: Any, state: str) -> None:
    token, raw = credentials.create_token(personas["operator"], name="t", actor=Actor(label="t"))
    if state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
    elif state == "revoked":
        credentials.revoke_token(token, actor=Actor(label="t"))
    elif state == "garbled":
        raw = "cpt_" + "x" * 10
    else:
        raw = raw[:-4] + "AAAA"
    before = _counts()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    csr = make_csr("a.example.test", ["a.example.test"]).decode()
    response = client.post(URL, {"profile": "tls-server", "csr": csr}, format="json")
    assert _error(response, 401)["code"] == "bad_token"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert _counts() == before


def test_another_applications_ids_are_not_found(api: Any, world: Any, unchanged: None) -> None:
    # The outsider administers other-app, but payments-api's objects are out of scope,
    # whichever Application slug they are addressed through.
    outsider = api("outsider")
    cert, req = world.certificate.pk, world.request.pk
    for url in (
        f"/api/v1/applications/other-app/certificates/{cert}/",
        f"/api/v1/applications/other-app/requests/{req}/",
        f"/api/v1/applications/payments-api/certificates/{cert}/",
    ):
        assert _error(outsider.get(url), 404)["code"] == "not_found"
    revoke = outsider.post(
        f"/api/v1/applications/other-app/certificates/{cert}/revoke/", {}, format="json"
    )
    assert _error(revoke, 404)["code"] == "not_found"
    approve = outsider.post(f"/api/v1/applications/other-app/requests/{req}/approve/", {})
    assert _error(approve, 404)["code"] == "not_found"


def test_browser_session_needs_csrf_for_writes(personas: Any, make_csr: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas["operator"])
    assert client.get(URL).status_code == 200
    csr = make_csr("a.example.test", ["a.example.test"]).decode()
    response = client.post(
        URL, {"profile": "tls-server", "csr": csr}, content_type="application/json"
    )
    assert _error(response, 403)["code"] == "permission_denied"
    assert "CSRF" in response.json()["message"]


def test_token_last_use_is_written_at_most_once_a_minute(
    personas: Any, django_assert_num_queries: Any
) -> None:
    token, raw = credentials.create_token(personas["auditor"], name="t", actor=Actor(label="t"))
    first = credentials.authenticate(raw)
    assert first is not None and first.last_used_at is not None
    with django_assert_num_queries(1):  # the lookup only; no UPDATE within the minute
        assert credentials.authenticate(raw) is not None
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first.last_used_at


def test_tokens_are_stored_hashed_and_prefixed(personas: Any) -> None:
    token, raw = credentials.create_token(personas["auditor"], name="t", actor=Actor(label="t"))
    assert raw.startswith("cpt_")
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(raw[16:] not in str(value) for value in stored.values())


def test_throttle_answers_429_per_token(api: Any, settings: Any) -> None:
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "token": "3/min"}
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    try:
        import time_machine
        from django.core.cache import cache

        cache.clear()
        client = api("auditor")
        # 20 s into a minute: the four requests share the one-minute window.
        with time_machine.travel(1_800_000_000 - 40, tick=False):
            responses = [client.get("/api/v1/applications/") for _ in range(4)]
            assert [r.status_code for r in responses] == [200, 200, 200, 429]
            assert responses[-1]["Retry-After"] == "40"
            assert api("operator").get("/api/v1/applications/").status_code == 200
        with time_machine.travel(1_800_000_000, tick=False):  # the next window
            assert client.get("/api/v1/applications/").status_code == 200
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
