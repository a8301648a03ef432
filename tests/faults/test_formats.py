"""A database or Redis outage answers 503 with Retry-After in each front's own format,
logged once at warning level, never a 500.

The database outage here is raised by the real connection (Django's execute_wrapper, so
it works inside the test transaction on SQLite and PostgreSQL); Redis is a real client
pointed at a port nobody listens on. tests/faults/test_outage.py stops a real PostgreSQL server.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from django.db import OperationalError, connection
from django.test import Client

from pki import ocsp as pki_ocsp

pytestmark = pytest.mark.django_db


def _refuse(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    raise OperationalError("connection to server failed: Connection refused")


@pytest.fixture
def database_down() -> Iterator[None]:
    """Every query from here on fails as it does when the server is gone."""
    with connection.execute_wrapper(_refuse):
        yield


@pytest.fixture
def redis_down(settings: Any) -> Iterator[None]:
    """REDIS_URL and the cache point at a port where no Redis listens."""
    from django.core.cache import caches

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    caches.__init__()  # type: ignore[misc]
    yield
    caches.__init__()  # type: ignore[misc]


def assert_unavailable(response: Any, content_type: str) -> None:
    assert response.status_code == 503, response.content[:300]
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith(content_type)


def assert_logged_once(caplog: Any, service: str) -> None:
    warnings = [r for r in caplog.records if r.name == "certportal.faults"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert warnings[0].getMessage().startswith(f"{service} unavailable")
    assert "Connection refused" not in warnings[0].getMessage()  # no driver text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- REST API ----------------------------------------------------------------------------


def _issue(client: Any, make_csr: Any) -> Any:
    csr = make_csr("www.example.test", ["www.example.test"]).decode()
    return client.post(
        "/api/v1/applications/payments-api/certificates/",
        {"profile": "tls-server", "csr": csr},
        format="json",
    )


def test_api_issuance_with_the_database_down_answers_503_in_the_api_error_format(
    api: Any, make_csr: Any, caplog: Any
) -> None:
    client = api("operator")
    with connection.execute_wrapper(_refuse):
        response = _issue(client, make_csr)
    assert_unavailable(response, "application/json")
    body = response.json()
    assert body["code"] == "unavailable" and body["errors"] == [] and body["message"]
    assert_logged_once(caplog, "database")


def test_api_with_redis_down_answers_503_in_the_api_error_format(
    api: Any, make_csr: Any, redis_down: None, caplog: Any
) -> None:
    response = _issue(api("operator"), make_csr)
    assert_unavailable(response, "application/json")
    assert response.json()["code"] == "unavailable"
    assert_logged_once(caplog, "redis")


# --- ACME ----------------------------------------------------------------------------------


def test_acme_with_the_database_down_answers_a_server_internal_problem(
    application: Any, database_down: None, caplog: Any
) -> None:
    response = Client().get("/acme/payments-api/tls-server/directory")
    assert_unavailable(response, "application/problem+json")
    problem = response.json()
    assert problem["type"] == "urn:ietf:params:acme:error:serverInternal"
    assert problem["status"] == 503 and problem["detail"]
    assert response["Replay-Nonce"]  # made without the database
    assert_logged_once(caplog, "database")


def test_acme_with_redis_down_answers_a_server_internal_problem(
    application: Any, redis_down: None, caplog: Any
) -> None:
    """The nonce store is in Redis: a signed request's first use of it fails."""
    from issuance.acme import nonces
    from issuance.acme.tests.conftest import AcmeSession

    session = AcmeSession(Client(), "payments-api")
    url = session.directory["newAccount"]
    caplog.clear()
    response = session.post(url, {"termsOfServiceAgreed": True}, use_jwk=True, nonce=nonces.issue())
    assert_unavailable(response, "application/problem+json")
    assert response.json()["type"] == "urn:ietf:params:acme:error:serverInternal"
    assert response["Replay-Nonce"]
    assert_logged_once(caplog, "redis")


# --- CRL, OCSP, CA certificates ----------------------------------------------------------


def test_ocsp_with_the_database_down_answers_try_later(
    issuing_ca: Any, database_down: None, caplog: Any
) -> None:
    # A well-formed question (a malformed one is answered without the database).
    issuer = issuing_ca.certificate()
    der = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            pki_ocsp.issuer_name_hash(issuer, hashes.SHA1()),
            pki_ocsp.issuer_key_hash(issuer, hashes.SHA1()),
            12345,
            hashes.SHA1(),
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    request = base64.b64encode(der).decode()
    for response in (
        Client().get(f"/pki/ocsp/{issuing_ca.slug}/{request}"),
        Client().post(f"/pki/ocsp/{issuing_ca.slug}", der, content_type="application/ocsp-request"),
    ):
        assert_unavailable(response, "application/ocsp-response")
        answer = ocsp.load_der_ocsp_response(response.content)
        assert answer.response_status == ocsp.OCSPResponseStatus.TRY_LATER


def test_crl_and_ca_certificate_with_the_database_down_answer_503(
    issuing_ca: Any, database_down: None
) -> None:
    for path in (f"/pki/crl/{issuing_ca.slug}.crl", f"/pki/ca/{issuing_ca.slug}.crt"):
        assert_unavailable(Client().get(path), "text/plain")


# --- Portal pages and health -------------------------------------------------------------


def test_a_portal_page_with_the_database_down_renders_the_503_page(
    personas: Any, caplog: Any
) -> None:
    client = Client()
    client.force_login(personas["operator"])
    with connection.execute_wrapper(_refuse):
        response = client.get("/applications/payments-api/certificates/")
    assert_unavailable(response, "text/html")
    assert b"Temporarily unavailable" in response.content
    assert_logged_once(caplog, "database")


def test_a_session_saved_on_the_way_out_with_the_database_down_gives_the_503_page(
    personas: Any, settings: Any, caplog: Any
) -> None:
    """The session middleware writes after the view: Django's handler500 path."""
    settings.SESSION_SAVE_EVERY_REQUEST = True
    client = Client(raise_request_exception=False)
    client.force_login(personas["operator"])
    client.get("/accounts/login/")  # the session row exists

    def refuse_session_writes(execute: Any, sql: str, *args: Any) -> Any:
        if "django_session" in sql and not sql.lstrip().upper().startswith("SELECT"):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, *args)

    with connection.execute_wrapper(refuse_session_writes):
        response = client.get("/accounts/login/")
    assert_unavailable(response, "text/html")
    assert b"Temporarily unavailable" in response.content
    assert_logged_once(caplog, "database")


def test_healthz_says_unhealthy_with_503_when_the_database_is_down(
    database_down: None,
) -> None:
    response = Client().get("/healthz")
    assert_unavailable(response, "application/json")
    assert response.json() == {"status": "unavailable", "service": "database"}


def test_healthz_says_unhealthy_with_503_when_redis_is_down(redis_down: None) -> None:
    response = Client().get("/healthz")
    assert_unavailable(response, "application/json")
    assert response.json()["service"] == "redis"


def test_healthz_is_ok_when_both_answer(redis_cache: Any) -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_an_error_that_is_not_an_outage_still_answers_500() -> None:
    from django.test import RequestFactory

    from certportal.faults import server_error

    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500


def test_a_revocation_committed_while_the_broker_is_down_answers_success(
    api: Any,
    make_csr: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Queueing the early CRL rebuild comes after the commit; a broker that is down then
    must not turn the committed revocation into an error (the CA is marked stale, so the
    next CRL fetch rebuilds it)."""
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf

    from certportal import queue
    from issuance.models import Certificate
    from profiles.models import CertificateAuthority

    client = api("operator")
    issued = _issue(client, make_csr).json()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    monkeypatch.setattr(Conf, "REDIS", dead)
    monkeypatch.setattr(queue, "_broker", Redis)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/applications/payments-api/certificates/{issued['id']}/revoke/",
            {"reason": "superseded"},
            format="json",
        )
    assert response.status_code == 200, response.content
    certificate = Certificate.objects.get(pk=issued["id"])
    assert certificate.status == "revoked"
    assert CertificateAuthority.objects.get(pk=certificate.ca_id).crl_stale


def test_an_outage_outside_the_acme_views_still_answers_acmes_problem_document():
    """Raised in middleware (a session saved on the way out, say): the ACME front
    registered its own answer at start-up, so certportal.faults imports no front."""
    from django.test import RequestFactory

    from certportal import faults

    request = RequestFactory().post("/acme/payments-api/tls-server/new-order")
    response = faults.unavailable(request, OperationalError("gone"), "database")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["type"] == "urn:ietf:params:acme:error:serverInternal"
    assert response["Replay-Nonce"] and response["Retry-After"]


# --- SCEP ----------------------------------------------------------------------------------


def test_scep_with_the_database_down_answers_plain_503(
    application: Any, database_down: None, caplog: Any
) -> None:
    """Devices read the status: a plain-text 503 with Retry-After, never a 500."""
    response = Client().get("/scep/payments-api/tls-server/pkiclient.exe?operation=GetCACaps")
    assert_unavailable(response, "text/plain; charset=utf-8")
    assert_logged_once(caplog, "database")
