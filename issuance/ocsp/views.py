"""The OCSP endpoints: POST (RFC 6960 A.1.1) and GET with the request in the URL
(RFC 5019 5), public, no login, no session, no CSRF token.

Nonce-free answers carry RFC 5019's caching headers (Last-Modified is thisUpdate,
Expires is nextUpdate, max-age what is left of it, an ETag), so a CDN or a reverse proxy
can keep GET answers; a conditional GET is answered 304 Not Modified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from urllib.parse import unquote

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from issuance.ocsp import responder
from pki import ocsp

CONTENT_TYPE = "application/ocsp-response"


@csrf_exempt
@require_http_methods(["POST"])
def ocsp_post(request: HttpRequest, slug: str) -> HttpResponse:
    body = request.body
    if len(body) > ocsp.MAX_OCSP_REQUEST_BYTES:
        return reply(request, responder.error("malformed_request"))
    return reply(request, responder.answer(slug, body))


@require_safe
def ocsp_get(request: HttpRequest, slug: str, encoded: str) -> HttpResponse:
    """The DER request, base64, URL-encoded, as the last part of the path."""
    text = unquote(encoded)
    if len(text) > ocsp.MAX_OCSP_REQUEST_BYTES * 2:
        return reply(request, responder.error("malformed_request"))
    try:
        der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return reply(request, responder.error("malformed_request"))
    return reply(request, responder.answer(slug, der))


def reply(request: HttpRequest, answer: responder.Answer | None) -> HttpResponse:
    if answer is None:
        raise Http404("No such certificate authority")
    response = HttpResponse(answer.der, content_type=CONTENT_TYPE)
    if answer.this_update is None or answer.next_update is None:
        response["Cache-Control"] = "no-store"
        return response
    left = int((answer.next_update - timezone.now()).total_seconds())
    etag = '"' + hashlib.sha256(answer.der).hexdigest()[:32] + '"'
    last_modified = int(answer.this_update.timestamp())
    response["Cache-Control"] = f"max-age={max(left, 0)}, public, no-transform, must-revalidate"
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    response["Expires"] = http_date(answer.next_update.timestamp())
    if request.method in ("GET", "HEAD"):
        conditional = get_conditional_response(
            request, etag=etag, last_modified=last_modified, response=response
        )
        if conditional is not None and conditional is not response:
            return conditional
    return response
