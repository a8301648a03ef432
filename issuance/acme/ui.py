"""Portal side of ACME: the Enrollment-tab section (directory URLs, EAB credentials) and
the Admin-only views that create and revoke EAB credentials."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from applications.models import Application
from certportal import permissions
from certportal.clientip import client_ip
from certportal.events import Actor
from issuance.acme import services
from issuance.acme.forms import ExternalAccountKeyForm
from issuance.acme.models import ExternalAccountKey


def section_context(request: HttpRequest, application: Application) -> dict[str, Any]:
    """Context of templates/acme/enrollment_section.html."""
    profiles = application.profiles.filter(is_active=True).order_by("name")
    directories = [
        (
            profile,
            request.build_absolute_uri(
                reverse("acme:directory", kwargs={"app": application.name, "profile": profile.slug})
            ),
        )
        for profile in profiles
    ]
    can_manage = permissions.has_perm(request.user, permissions.MANAGE, application)
    return {
        "acme_directories": directories,
        "acme_can_manage": can_manage,
        "acme_eab_keys": list(application.acme_eab_keys.all()) if can_manage else [],
        "acme_eab_form": ExternalAccountKeyForm(),
    }


def _managed(request: HttpRequest, slug: str) -> Application:
    return get_object_or_404(
        permissions.applications_for(request.user, permissions.MANAGE), name=slug
    )


def _actor(request: HttpRequest) -> Actor:
    return Actor(user=request.user, source_ip=client_ip(request))


@require_http_methods(["GET", "POST"])
def eab_create(request: HttpRequest, slug: str) -> HttpResponse:
    if not request.user.is_authenticated:
        raise Http404
    application = _managed(request, slug)
    form = ExternalAccountKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        eab, hmac_key = services.create_eab_key(
            application,
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
            actor=_actor(request),
        )
        profile = application.profiles.filter(is_active=True).order_by("name").first()
        directory = (
            request.build_absolute_uri(
                reverse("acme:directory", kwargs={"app": application.name, "profile": profile.slug})
            )
            if profile
            else ""
        )
        context = {
            "application": application,
            "eab": eab,
            "hmac_key": hmac_key,
            "directory": directory,
        }
        response = render(request, "acme/eab_created.html", context)
        response["Cache-Control"] = "no-store"
        return response
    return render(request, "acme/eab_form.html", {"application": application, "form": form})


@require_POST
def eab_revoke(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    if not request.user.is_authenticated:
        raise Http404
    application = _managed(request, slug)
    eab = get_object_or_404(ExternalAccountKey.objects.filter(application=application), pk=pk)
    services.revoke_eab_key(eab, actor=_actor(request))
    return redirect("applications:enrollment", slug=application.name)
