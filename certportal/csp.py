"""Content-Security-Policy on every response.

The portal serves only its own files (vendored htmx, its stylesheet), with no inline
script or style, so the policy allows nothing but the portal's own origin, refuses
plugins, framing and foreign form targets. (Django 5.2 has no CSP middleware; 6.0 does,
and this one can give way to it.) A view whose third-party page needs more (the API
docs) declares its own policy with ``with_policy``; the middleware leaves a policy that
is already set alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseBase

HEADER = "Content-Security-Policy"

PORTAL: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

# The API docs: Swagger UI draws its icons as data: images; Redoc styles itself by
# inserting <style> elements at run time (styled-components) and searches in a worker
# it starts from a blob: URL. Scripts still come only from the portal. (Redoc's menu
# asks its vendor's CDN for a logo: refused, as the docs call out nowhere; Redoc then
# leaves the image out.)
API_DOCS: dict[str, str] = {
    **PORTAL,
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "worker-src": "'self' blob:",
}


def header_value(policy: dict[str, str]) -> str:
    return "; ".join(f"{name} {sources}" for name, sources in policy.items())


_PORTAL_VALUE = header_value(PORTAL)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = _PORTAL_VALUE
        return response


def with_policy(policy: dict[str, str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view decorator: this view's responses carry `policy` instead of the portal's."""
    value = header_value(policy)

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            response = view(request, *args, **kwargs)
            response[HEADER] = value
            return response

        return wrapped

    return decorate
