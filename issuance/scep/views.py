"""The SCEP endpoint: /scep/<application>/<profile>/pkiclient.exe (and without
pkiclient.exe). Thin: find the enrollment, decode the operation's input, hand it to
issuance.scep.protocol, and frame the answer."""

from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from certportal import faults
from certportal.clientip import client_ip
from issuance.scep import protocol
from issuance.scep.services import endpoint_enrollment
from issuance.services import attached_profile
from pki import scep as wire

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024


def _text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def outage_response() -> HttpResponse:
    """A database or Redis outage under /scep/: plain 503 (faults adds Retry-After)."""
    return _text(faults.MESSAGE, 503)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def pkiclient(request: HttpRequest, app: str, profile: str) -> HttpResponse:
    enrollment = endpoint_enrollment(app, profile)
    found = attached_profile(enrollment.application, profile) if enrollment else None
    if enrollment is None or found is None or not found.profile.is_active:
        return _text("No SCEP enrollment here.", 404)
    operation = request.GET.get("operation", "")
    if operation == "GetCACaps":
        return _text("\n".join(protocol.capabilities(enrollment)), 200)
    if operation == "GetCACert":
        body = protocol.ca_certificates(enrollment, found.profile)
        return HttpResponse(body, content_type="application/x-x509-ca-ra-cert")
    if operation == "GetNextCACert":
        following = protocol.next_ca_certificates(enrollment, found.profile)
        if following is None:
            return _text("No RA rollover is pending.", 404)
        return HttpResponse(following, content_type="application/x-x509-next-ca-cert")
    if operation != "PKIOperation":
        return _text(f"Unknown operation {operation!r}.", 400)
    body_or_error = _message(request)
    if isinstance(body_or_error, HttpResponse):
        return body_or_error
    try:
        reply = protocol.pki_operation(
            enrollment, found, body_or_error, source_ip=client_ip(request)
        )
    except wire.Malformed as exc:
        return _text(f"Not a SCEP pkiMessage: {exc.message}", 400)
    return HttpResponse(reply, content_type="application/x-pki-message")


def _message(request: HttpRequest) -> bytes | HttpResponse:
    """The pkiMessage: the POST body, or GET's base64 ``message`` parameter read from the
    raw query string (macOS sends ``+`` and ``/`` unescaped; some clients URL-safe base64)."""
    if request.method == "POST":
        body = request.body
    else:
        raw = next(
            (
                part[len("message=") :]
                for part in request.META.get("QUERY_STRING", "").split("&")
                if part.startswith("message=")
            ),
            "",
        )
        text = unquote(raw).replace(" ", "+").replace("-", "+").replace("_", "/")
        text = "".join(text.split())
        try:
            body = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            return _text("The message parameter is not base64.", 400)
    if not body:
        return _text("The request carries no pkiMessage.", 400)
    if len(body) > MAX_MESSAGE_BYTES:
        return _text("The pkiMessage is too large.", 400)
    return body
