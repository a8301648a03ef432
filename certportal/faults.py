"""A database or Redis outage answers 503 with Retry-After, in each front's own format.

One place decides what counts as an outage (``outage``) and what to answer
(``unavailable``): the REST API's error format, an ACME ``serverInternal`` problem
document, an OCSP ``tryLater``, a bare 503 for CRLs and CA certificates, unhealthy for
``/healthz`` and the 503 page for the portal. Three entry points call it: the middleware
(exceptions from views), ``server_error`` (the root URLconf's handler500, which Django
calls for an exception raised anywhere, middleware included: a session saved on the way
out, for example), and the API's and ACME's own exception handlers, which catch their
views' exceptions before Django does.

The 503 page is rendered without the request: no context processor may read the session
or the user from the database that is down. Each outage is logged once, at warning
level, naming the service and the exception type only (driver messages can carry
connection details); Django's own error log of the response is skipped.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import redis
from django import db
from django.conf import settings
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (db.OperationalError, db.InterfaceError)
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
OUTAGE_ERRORS = DATABASE_ERRORS + REDIS_ERRORS

MESSAGE = "The service is temporarily unavailable; try again shortly."

# Fronts with an error format of their own (ACME) register their outage answer at start-up
# (AppConfig.ready), so this module depends on none of them.
_FRONTS: dict[str, Callable[[], HttpResponse]] = {}


def register_front(prefix: str, respond: Callable[[], HttpResponse]) -> None:
    """Requests under ``prefix`` get ``respond()`` (Retry-After added) during an outage."""
    _FRONTS[prefix] = respond


def outage(exc: BaseException | None) -> str | None:
    """Which service an exception says is down ("database" or "redis"), or None."""
    seen = 0
    while exc is not None and seen < 5:  # a wrapped outage still is one
        if isinstance(exc, DATABASE_ERRORS):
            return "database"
        if isinstance(exc, REDIS_ERRORS):
            return "redis"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def retry_after() -> int:
    return int(settings.CERTPORTAL_OUTAGE_RETRY_AFTER_SECONDS)


def note(request: HttpRequest, exc: BaseException, service: str) -> None:
    """Log the outage once (the caller marks its response so Django does not log it again)."""
    logger.warning(
        "%s unavailable (%s) during %s %s: answered 503",
        service,
        type(exc).__name__,
        request.method,
        request.path,
    )


def finish(response: HttpResponse) -> HttpResponse:
    """Add Retry-After, and keep Django from logging the 503 again as a server error."""
    response["Retry-After"] = str(retry_after())
    response["Cache-Control"] = "no-store"
    response._has_been_logged = True  # type: ignore[attr-defined]  # read by log_response
    return response


def api_body() -> dict[str, Any]:
    """The REST API's error format (certportal.api.errors)."""
    return {"code": "unavailable", "message": MESSAGE, "errors": []}


def unavailable(request: HttpRequest, exc: BaseException, service: str) -> HttpResponse:
    """The 503 for this request's front."""
    note(request, exc, service)
    path = request.path_info
    if path.startswith("/api/"):
        return finish(JsonResponse(api_body(), status=503))
    for prefix, respond in _FRONTS.items():
        if path.startswith(prefix):
            return finish(respond())
    if path.startswith("/pki/ocsp/"):
        from pki import ocsp

        body = ocsp.ocsp_error_response("try_later")  # RFC 6960 tryLater
        return finish(HttpResponse(body, status=503, content_type="application/ocsp-response"))
    if path.startswith("/pki/"):
        return finish(HttpResponse(MESSAGE, status=503, content_type="text/plain"))
    if path.startswith("/healthz"):
        return finish(JsonResponse({"status": "unavailable", "service": service}, status=503))
    page = loader.get_template("503.html").render({"retry_after": retry_after()})
    return finish(HttpResponse(page, status=503))


class OutageMiddleware:
    """Turns an outage raised by a view into the front's 503."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        service = outage(exc)
        return None if service is None else unavailable(request, exc, service)


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's, except that a session the database could not save is an outage (503):
    Django reports any failed save as "session interrupted", a 400."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        try:
            return super().process_response(request, response)
        except SessionInterrupted as exc:
            if outage(exc) is None:
                raise
            raise db.OperationalError("the session could not be saved") from exc


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an outage raised outside the views (middleware) still answers 503."""
    exc = sys.exc_info()[1]
    service = outage(exc)
    if exc is None or service is None:
        return defaults.server_error(request)
    return unavailable(request, exc, service)
