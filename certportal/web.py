"""Helpers every portal page uses: who acts, which Application the user may reach, htmx
fragments, downloads, and service refusals shown on forms.

Lookups here go through ``certportal.permissions``, so an Application outside the
user's scope is a 404 on every page, never a 403 that confirms it exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.forms import BaseForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, render
from rest_framework.request import Request

from certportal import permissions
from certportal.clientip import client_ip
from certportal.events import Actor
from certportal.refusals import Refused

if TYPE_CHECKING:
    from applications.models import Application

# Longest download name before its extension; browsers and file systems cope with it.
FILENAME_MAX = 100
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]")

AnyResponse = TypeVar("AnyResponse", bound=HttpResponseBase)


def actor_for(request: HttpRequest | Request) -> Actor:
    """Who acts, for the audit trail: the user and the client address; the same for a
    portal page and an API view."""
    http = request._request if isinstance(request, Request) else request
    return Actor(user=request.user, source_ip=client_ip(http))


def scoped_application(
    request: HttpRequest, slug: str, perm: str = permissions.VIEW, *, hide: bool = False
) -> Application:
    """The Application named slug if the user may see it (else 404) and holds perm (else
    403, or 404 with ``hide`` for pages other roles are not shown at all)."""
    application = get_object_or_404(permissions.applications_for(request.user), name=slug)
    if perm != permissions.VIEW and not permissions.has_perm(request.user, perm, application):
        if hide:
            raise Http404("No such page")
        raise PermissionDenied
    return application


def require_product_admin(request: HttpRequest) -> None:
    """Product-admin pages do not exist for anyone else."""
    if not permissions.is_product_admin(request.user):
        raise Http404


def is_htmx(request: HttpRequest) -> bool:
    """An htmx partial request (it swaps a fragment; history requests get the full page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


# Query parameters that order or page a list without narrowing what it holds.
UNFILTERED_PARAMS = frozenset({"page", "sort", "page_size", "per_page"})


def is_filtered(query: Mapping[str, Any]) -> bool:
    """Whether a list's query narrows it, so an empty page means "no match" rather than
    "nothing yet" (htmx forms send every field, empty ones included)."""
    return any(value for key, value in query.items() if key not in UNFILTERED_PARAMS)


def render_page(
    request: HttpRequest, page: str, fragment: str, context: dict[str, Any]
) -> HttpResponse:
    """The whole page, or only the fragment an htmx request swaps in."""
    return render(request, fragment if is_htmx(request) else page, context)


def safe_filename(name: str) -> str:
    """A download name from text a user chose (a common name, say): ASCII letters,
    digits, dot, dash and underscore only, so no quote, path or header can be smuggled
    into Content-Disposition; never hidden, never empty."""
    cleaned = _UNSAFE_IN_FILENAME.sub("_", name)[:FILENAME_MAX].lstrip(".")
    return cleaned or "download"


def attachment(response: AnyResponse, name: str, extension: str) -> AnyResponse:
    """Mark the response as a download of ``<name>.<extension>``, the name made safe."""
    response["Content-Disposition"] = f'attachment; filename="{safe_filename(name)}.{extension}"'
    return response


def add_refusal_to_form(
    form: BaseForm, refused: Refused, fields: dict[str, str] | None = None
) -> None:
    """Show a service refusal on the form: on the field it names, when the form has that
    field, else above the form. ``fields`` renames the service's fields to the form's
    (a name it does not list goes above the form)."""
    field = refused.field
    if fields is not None:
        field = fields.get(field or "")
    form.add_error(field if field in form.fields else None, refused.message)
