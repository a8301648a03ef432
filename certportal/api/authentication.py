"""Bearer-token authentication for the API (sessions keep working for the browser)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from certportal.api import services
from certportal.clientip import client_ip


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer cpt_...``; an unusable token is a 401, never anonymous."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header.", code="bad_token"
            )
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Malformed token.", code="bad_token") from None
        token = services.authenticate(raw, source_ip=client_ip(request))
        if token is None:
            raise exceptions.AuthenticationFailed(
                "Invalid, expired or revoked token.", code="bad_token"
            )
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "certportal.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "cpt_<key id><secret>"}
