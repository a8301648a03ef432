"""Whatever a client sends, EST answers in the 4xx range (never a 500) and writes nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from issuance.est.models import EstEnrollment
from issuance.est.tests.conftest import new_csr
from issuance.models import Certificate, CertificateRequest

pytestmark = pytest.mark.django_db

AUTHORIZATIONS = [
    "Basic",
    "Basic !!!",
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
    "Basic " + base64.b64encode(b"x" * 500 + b":y").decode(),
    "Bearer cpt_something",
    "basic " + base64.b64encode("d\u00e9vice:p\u00e4ss".encode()).decode(),
]
CLIENT_CERTS = [
    "garbage",
    "-----BEGIN CERTIFICATE-----%0AAAAA%0A-----END CERTIFICATE-----",
    "%ZZ%",
    "\u00e9",
]
BODIES = [
    b"",
    b"\x00\x01\x02",
    b"\x30\x82\xff\xff",
    b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    "\u00e9\u00e9".encode(),
    base64.b64encode(b"\x30\x03\x02\x01\x00") * 50,
]


@pytest.mark.parametrize("operation", ["simpleenroll", "simplereenroll", "serverkeygen"])
def test_malformed_requests_are_4xx_and_write_nothing(
    enrollment: EstEnrollment, basic: Any, post_csr: Any, operation: str
) -> None:
    good = base64.b64encode(new_csr()[0])
    before = (CertificateRequest.objects.count(), Certificate.objects.count())
    answers = []
    for authorization in AUTHORIZATIONS:
        answers.append(
            post_csr(enrollment.label, operation, good, HTTP_AUTHORIZATION=authorization)
        )
    for cert in CLIENT_CERTS:
        answers.append(post_csr(enrollment.label, operation, good, client_cert_pem=cert))
    for body in BODIES:
        answers.append(post_csr(enrollment.label, operation, body, auth=basic))
    for response in answers:
        assert 400 <= response.status_code < 500, response.content
        assert response["Content-Type"].startswith("text/plain")
    assert (CertificateRequest.objects.count(), Certificate.objects.count()) == before
