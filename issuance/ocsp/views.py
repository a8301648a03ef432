"""The OCSP endpoints: POST (RFC 6960 A.1.1) and GET with the request in the URL
(RFC 5019 5), public, no login, no session, no CSRF token.

Nonce-free answers carry RFC 5019's caching headers (Last-Modified is thisUpdate,
Expires is nextUpdate, max-age what is left of it, an ETag), so a CDN or a reverse proxy
can keep GET answers; a conditional GET is answered 304 Not Modified.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import get_conditional_response
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
    der = decode_get(encoded)
    if der is None:
        return reply(request, responder.error("malformed_request"))
    return reply(request, responder.answer(slug, der))


def decode_get(encoded: str) -> bytes | None:
    """The DER request of a GET URL's last part (RFC 5019 5), or None if it is not one."""
    text = unquote(encoded)
    if len(text) > ocsp.MAX_OCSP_REQUEST_BYTES * 2:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def reply(request: HttpRequest, answer: responder.Answer | None) -> HttpResponse:
    if answer is None:
        raise Http404("No such certificate authority")
    response = HttpResponse(answer.der, content_type=CONTENT_TYPE)
    for header, value in responder.caching_headers(answer):
        response[header] = value
    if answer.this_update is not None and request.method in ("GET", "HEAD"):
        conditional = get_conditional_response(
            request,
            etag=responder.etag(answer),
            last_modified=int(answer.this_update.timestamp()),
            response=response,
        )
        if conditional is not None and conditional is not response:
            return conditional
    return response
