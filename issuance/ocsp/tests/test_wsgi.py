"""StoredAnswers: stored answers served before Django; everything else handed on intact."""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from django.db import OperationalError, connection
from django.utils import timezone

from issuance.models import Certificate
from issuance.ocsp.models import OCSPResponse
from issuance.ocsp.wsgi import StoredAnswers
from issuance.services import revoke

pytestmark = pytest.mark.django_db

SHA1 = hashes.SHA1()


class Fallback:
    """Stands for Django: records what reached it and reads the body as Django would."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.bodies.append(environ["wsgi.input"].read(length))
        start_response("418 I'm a teapot", [("Content-Type", "text/plain")])
        return iter([b"django"])


def call(app: Any, method: str, path: str, body: bytes = b"", **headers: str) -> Any:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "CONTENT_TYPE": "application/ocsp-request",
        **headers,
    }
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(response_headers)

    seen["body"] = b"".join(app(environ, start_response))
    return seen


def request_for(leaf: Certificate, issuing_ca: Any, *, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        leaf.as_x509(), issuing_ca.certificate(), SHA1
    )
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


@pytest.fixture
def app() -> StoredAnswers:
    return StoredAnswers(Fallback())


def stored_der(leaf: Certificate) -> bytes:
    return bytes(OCSPResponse.objects.get(serial_number=leaf.serial_number).response_der)


def test_post_is_answered_from_the_store_in_one_query(
    app: Any, leaf: Certificate, issuing_ca: Any, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        seen = call(app, "POST", f"/pki/ocsp/{issuing_ca.slug}", request_for(leaf, issuing_ca))
    assert seen["status"] == "200 OK" and app.application.bodies == []
    assert seen["body"] == stored_der(leaf)
    headers = seen["headers"]
    assert headers["Content-Type"] == "application/ocsp-response"
    assert headers["Content-Length"] == str(len(seen["body"]))
    assert headers["Cache-Control"].startswith("max-age=") and headers["ETag"]
    assert headers["Last-Modified"] and headers["Expires"]


def test_get_is_answered_from_the_store(app: Any, leaf: Certificate, issuing_ca: Any) -> None:
    encoded = quote(base64.b64encode(request_for(leaf, issuing_ca)).decode(), safe="")
    seen = call(app, "GET", f"/pki/ocsp/{issuing_ca.slug}/{encoded}")
    assert seen["status"] == "200 OK" and seen["body"] == stored_der(leaf)


def test_the_answer_follows_a_revocation(
    app: Any, leaf: Certificate, issuing_ca: Any, actor: Any
) -> None:
    revoke(leaf, reason="keyCompromise", actor=actor)
    seen = call(app, "POST", f"/pki/ocsp/{issuing_ca.slug}", request_for(leaf, issuing_ca))
    answer = ocsp.load_der_ocsp_response(seen["body"])
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED


@pytest.mark.parametrize(
    "case",
    ["nonce", "unknown ca", "conditional", "put", "expired", "no stored answer", "garbage"],
)
def test_everything_else_reaches_django_with_its_body(
    app: Any, leaf: Certificate, issuing_ca: Any, case: str
) -> None:
    body = request_for(leaf, issuing_ca, nonce=b"n" * 16 if case == "nonce" else None)
    method, path, headers = "POST", f"/pki/ocsp/{issuing_ca.slug}", {}
    if case == "unknown ca":
        path = "/pki/ocsp/no-such-ca"
    elif case == "conditional":
        headers = {"HTTP_IF_NONE_MATCH": '"x"'}
    elif case == "put":
        method = "PUT"
    elif case == "expired":  # the stored answer's own nextUpdate has passed
        OCSPResponse.objects.update(response_der=_expired_answer(leaf, issuing_ca))
    elif case == "no stored answer":
        OCSPResponse.objects.all().delete()
    elif case == "garbage":
        body = b"garbage"
    seen = call(app, method, path, body, **headers)
    assert seen["body"] == b"django"
    assert app.application.bodies == [body]


def _expired_answer(leaf: Certificate, issuing_ca: Any) -> bytes:
    from issuance.ocsp import signing
    from pki import ocsp as pki_ocsp

    signer = signing.signer_for(issuing_ca)
    query = pki_ocsp.parse_ocsp_request(request_for(leaf, issuing_ca))
    past = timezone.now() - timedelta(days=2)
    return pki_ocsp.build_ocsp_response(
        query,
        issuer_cert=signer.issuer,
        responder_cert=signer.certificate,
        responder_key=signer.key,
        status="good",
        this_update=past,
        next_update=past + timedelta(hours=1),
    )


def test_an_oversized_post_is_not_read(app: Any, issuing_ca: Any) -> None:
    body = b"A" * 20_000
    seen = call(app, "POST", f"/pki/ocsp/{issuing_ca.slug}", body)
    assert seen["body"] == b"django" and app.application.bodies == [body]


def test_a_database_error_goes_to_django(app: Any, leaf: Certificate, issuing_ca: Any) -> None:
    def refuse(*args: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    body = request_for(leaf, issuing_ca)
    with connection.execute_wrapper(refuse):
        seen = call(app, "POST", f"/pki/ocsp/{issuing_ca.slug}", body)
    assert seen["body"] == b"django" and app.application.bodies == [body]


@pytest.mark.django_db(transaction=True)  # Django's handler opens and closes connections
def test_the_deployed_application_serves_and_hands_on(leaf: Certificate, issuing_ca: Any) -> None:
    from certportal.wsgi import application

    body = request_for(leaf, issuing_ca)
    seen = call(application, "POST", f"/pki/ocsp/{issuing_ca.slug}", body)
    assert seen["body"] == stored_der(leaf)
    with_nonce = call(
        application,
        "POST",
        f"/pki/ocsp/{issuing_ca.slug}",
        request_for(leaf, issuing_ca, nonce=b"n" * 16),
    )
    answer = ocsp.load_der_ocsp_response(with_nonce["body"])
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16


@pytest.mark.django_db(transaction=True)
def test_the_deployed_application_answers_try_later_with_the_database_down(
    leaf: Certificate, issuing_ca: Any
) -> None:
    from certportal.wsgi import application

    def refuse(*args: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    body = request_for(leaf, issuing_ca)
    with connection.execute_wrapper(refuse):
        seen = call(application, "POST", f"/pki/ocsp/{issuing_ca.slug}", body)
    assert seen["status"].startswith("503")
    answer = ocsp.load_der_ocsp_response(seen["body"])
    assert answer.response_status is ocsp.OCSPResponseStatus.TRY_LATER
