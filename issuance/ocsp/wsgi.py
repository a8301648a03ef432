"""Stored OCSP answers served in front of Django, as WhiteNoise serves static files.

Relying parties ask OCSP on every handshake, so it is the portal's busiest path, and a
nonce-free question about a certificate with a current stored answer needs one query
and nothing else: no session, CSRF token, template, URL resolution or middleware.
``StoredAnswers`` wraps the WSGI application (certportal/wsgi.py) and answers exactly
those requests itself, with the same lookup (``responder.stored_answer``) and headers
(``responder.caching_headers``) as the view. Everything else goes to Django unchanged,
with the body it read handed on: other paths and methods, conditional requests (Django
answers 304), a nonce, another CertID hash, no current stored answer, an unknown CA, a
malformed or oversized request, and any database error (Django then answers tryLater
the way it does for every outage, certportal.faults).

It does not run Django's request_started and request_finished signals: the thread's
database connection is kept open (as CONN_MAX_AGE does between requests) and is not
health-checked before each query; a connection that has failed raises here (Django's
error wrapper marks it) and the request goes to Django, whose request_started closes
the marked connection and connects afresh.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from django.db import DatabaseError

from issuance.ocsp import responder
from issuance.ocsp.views import CONTENT_TYPE, decode_get
from pki.ocsp import MAX_OCSP_REQUEST_BYTES

PREFIX = "/pki/ocsp/"
Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class StoredAnswers:
    def __init__(self, application: WSGIApp) -> None:
        self.application = application

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        answer = self._stored(environ) if environ.get("PATH_INFO", "").startswith(PREFIX) else None
        if answer is None:
            return self.application(environ, start_response)
        headers = [
            ("Content-Type", CONTENT_TYPE),
            ("Content-Length", str(len(answer.der))),
            *responder.caching_headers(answer),
        ]
        start_response("200 OK", headers)
        return [answer.der]

    def _stored(self, environ: Environ) -> responder.Answer | None:
        if environ.get("HTTP_IF_NONE_MATCH") or environ.get("HTTP_IF_MODIFIED_SINCE"):
            return None
        method, rest = environ.get("REQUEST_METHOD"), environ["PATH_INFO"][len(PREFIX) :]
        if method == "POST" and rest and "/" not in rest:
            slug, der = rest, _read_body(environ)
        elif method == "GET" and "/" in rest:
            slug, encoded = rest.split("/", 1)
            der = decode_get(encoded)
        else:
            return None
        if der is None:
            return None
        try:
            return responder.stored_answer(slug, der)
        except DatabaseError:
            return None


def _read_body(environ: Environ) -> bytes | None:
    """The POST body, put back for Django to read again; None (and nothing read) when it
    is larger than an OCSP request may be."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= MAX_OCSP_REQUEST_BYTES:
        return None
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body
