"""Every route outside the REST API and the admin names the HTTP methods it serves.

The test walks the root URLconf, so a view added without a method restriction (or with a
list that differs from what it handles) fails here. Each route gets every method it does
not serve and must answer 405 with the expected Allow header: the restriction answers
before any lookup, so placeholder URL arguments are enough.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.views import APIView

from certportal.api.views import not_found

SAFE = {"GET", "HEAD"}
FORM = {"GET", "HEAD", "POST"}
POST = {"POST"}
PROBED = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

ALLOWED: dict[str, set[str]] = {
    "home": SAFE,
    "healthz": SAFE,
    "login": FORM,
    "logout": POST,
    "password_change": FORM,
    "password_change_done": SAFE,
    "password_reset": FORM,
    "password_reset_done": SAFE,
    "password_reset_confirm": FORM,
    "password_reset_complete": SAFE,
    "issuance:ca-certificate": SAFE,
    "issuance:ca-chain": SAFE,
    "issuance:crl": SAFE,
    "issuance:ocsp": POST,
    "issuance:ocsp-get": SAFE,
    "issuance:certificates": SAFE,
    "issuance:certificates-csv": SAFE,
    "issuance:issue": FORM,
    "issuance:import": FORM,
    "issuance:certificate": SAFE,
    "issuance:download": SAFE,
    "issuance:pkcs12": POST,
    "issuance:revoke": FORM,
    "issuance:release-hold": POST,
    "issuance:renew": FORM,
    "issuance:renewal": FORM,
    "issuance:certificate-renewal": FORM,
    "acme:terms": SAFE,
    "acme:directory": {"GET"},
    "acme:new-nonce": SAFE,
    "acme:new-account": POST,
    "acme:new-order": POST,
    "acme:revoke-cert": POST,
    "acme:key-change": POST,
    "acme:renewal-info": {"GET"},
    "acme:account": POST,
    "acme:account-orders": POST,
    "acme:order": POST,
    "acme:finalize": POST,
    "acme:authz": POST,
    "acme:challenge": POST,
    "acme:certificate": POST,
    "acme:eab-create": FORM,
    "acme:eab-revoke": FORM,
    "acme:account-deactivate": FORM,
    "est:cacerts": SAFE,
    "est:csrattrs": SAFE,
    "est:simpleenroll": POST,
    "est:simplereenroll": POST,
    "est:serverkeygen": POST,
    "est:fullcmc": FORM,
    "est:default-cacerts": SAFE,
    "est:default-csrattrs": SAFE,
    "est:default-simpleenroll": POST,
    "est:default-simplereenroll": POST,
    "est:default-serverkeygen": POST,
    "est:default-fullcmc": FORM,
    "est:enrollment-create": FORM,
    "est:enrollment-edit": FORM,
    "est:enrollment-delete": POST,
    "est:credential-create": FORM,
    "est:credential-revoke": POST,
    "approvals:inbox": SAFE,
    "approvals:request": FORM,
    "approvals:policies": FORM,
    "approvals:policy-new": FORM,
    "approvals:policy-edit": FORM,
    "approvals:policy-delete": POST,
    "alerts:alerting": SAFE,
    "alerts:channel-new": FORM,
    "alerts:channel": FORM,
    "alerts:channel-test": POST,
    "alerts:rule-new": FORM,
    "alerts:rule": FORM,
    "syncs:list": SAFE,
    "syncs:new": FORM,
    "syncs:detail": SAFE,
    "syncs:edit": FORM,
    "syncs:run": POST,
    "syncs:drift": POST,
    "syncs:delete": FORM,
    "syncs:item-repush": POST,
    "syncs:item-remove": POST,
    "syncs:connection-new": FORM,
    "syncs:connection": FORM,
    "syncs:connection-test": POST,
    "syncs:connection-delete": FORM,
    "profiles:ca-list": SAFE,
    "profiles:ca-create": FORM,
    "profiles:ca-import": FORM,
    "profiles:ca-detail": SAFE,
    "profiles:ca-install": POST,
    "profiles:ca-status": POST,
    "profiles:profile-list": SAFE,
    "profiles:profile-create": FORM,
    "profiles:profile-edit": FORM,
    "applications:list": SAFE,
    "applications:create": FORM,
    "applications:overview": SAFE,
    "applications:edit": FORM,
    "applications:members": FORM,
    "applications:member-role": POST,
    "applications:member-remove": POST,
    "applications:enrollment": SAFE,
    "applications:audit": SAFE,
    "applications:audit-global": SAFE,
    "scep:pkiclient": FORM,
    "scep:endpoint": FORM,
    "scep:endpoint-slash": FORM,
    "scep:enable": FORM,
    "scep:edit": FORM,
    "scep:challenge": FORM,
    "scep:mint": FORM,
}


def _exempt(callback: Any, namespace: str) -> bool:
    """The admin, DRF views (they answer 405 themselves) and the API's JSON 404 catch-all,
    which answers every method alike."""
    view_class = getattr(callback, "cls", None)
    is_drf = isinstance(view_class, type) and issubclass(view_class, APIView)
    return namespace == "admin" or is_drf or callback is not_found


def _routes(resolver: URLResolver, namespace: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace or ""]))
            yield from _routes(entry, inner)
        elif not _exempt(entry.callback, namespace):
            assert entry.name, f"unnamed route {entry.pattern} cannot be checked"
            yield ":".join(filter(None, [namespace, entry.name])), entry


def _placeholder(converter: Any) -> Any:
    if isinstance(converter, IntConverter):
        return 1
    if isinstance(converter, UUIDConverter):
        return uuid.UUID(int=1)
    return "x"


def _url(name: str, pattern: URLPattern) -> str:
    converters = getattr(pattern.pattern, "converters", {})
    names = list(converters) or list(pattern.pattern.regex.groupindex)
    return reverse(name, kwargs={key: _placeholder(converters.get(key)) for key in names})


def _reset_confirm_url(client: Client, user: Any) -> str:
    """The set-password step of a valid reset link: an invalid link is only a notice page."""
    session = client.session
    session[INTERNAL_RESET_SESSION_TOKEN] = default_token_generator.make_token(user)
    session.save()
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("password_reset_confirm", kwargs={"uidb64": uidb64, "token": "set-password"})


ROUTES = dict(_routes(get_resolver()))


def test_every_route_has_a_method_list() -> None:
    assert set(ROUTES) == set(ALLOWED)


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(ROUTES))
def test_route_refuses_methods_it_does_not_serve(
    name: str, product_admin: Any, settings: Any
) -> None:
    # Reset pages exist only where mail can be sent; the login page sends a signed-in
    # user home before looking at the method.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.CERTPORTAL_EMAIL_CONFIGURED = True
    client = Client()
    if name != "login":
        client.force_login(product_admin)
    url = _url(name, ROUTES[name])
    if name == "password_reset_confirm":
        url = _reset_confirm_url(client, product_admin)
    for method in PROBED:
        if method in ALLOWED[name]:
            continue
        response = client.generic(method, url)
        assert response.status_code == 405, (method, url, response.status_code)
        allow = {part.strip() for part in response["Allow"].split(",")}
        assert allow == ALLOWED[name], (method, url)
