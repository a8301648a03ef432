"""Portal side of SCEP: the Enrollment-tab section (URLs, settings, RA certificates)
and the views behind it. Admins configure and set the static challenge; Admins and
Operators mint one-time challenges (what an MDM does through the API)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography import x509
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from applications.models import Application
from certportal import permissions
from certportal.web import actor_for, scoped_application
from issuance.scep import services
from issuance.scep.forms import (
    EnableScepForm,
    MintChallengeForm,
    ScepSettingsForm,
    StaticChallengeForm,
)
from issuance.scep.models import ScepEnrollment


def endpoint_url(request: HttpRequest | None, enrollment: ScepEnrollment) -> str:
    """The enrollment's SCEP URL, absolute (from the request, else the base URL)."""
    path = reverse(
        "scep:pkiclient",
        kwargs={"app": enrollment.application.name, "profile": enrollment.profile.slug},
    )
    return request.build_absolute_uri(path) if request else settings.CERTPORTAL_BASE_URL + path


def section_context(request: HttpRequest, application: Application) -> dict[str, Any]:
    """Context of templates/scep/enrollment_section.html (two queries)."""
    rows: list[dict[str, Any]] = []
    for enrollment in services.enrollments_for(application):
        enrollment.application = application
        ra = x509.load_pem_x509_certificate(enrollment.ra_certificate_pem.encode())
        rows.append(
            {
                "enrollment": enrollment,
                "url": endpoint_url(request, enrollment),
                "ra_expires": ra.not_valid_after_utc,
                "rollover": bool(enrollment.next_ra_certificate_pem),
            }
        )
    configured = {row["enrollment"].profile_id for row in rows}
    return {
        "scep_rows": rows,
        "scep_can_manage": permissions.has_perm(request.user, permissions.MANAGE, application),
        "scep_can_mint": permissions.has_perm(request.user, permissions.ISSUE, application),
        "scep_unconfigured": [
            p for p in application.profiles.filter(is_active=True) if p.pk not in configured
        ],
    }


def _enrollment_page(application: Application) -> HttpResponse:
    return redirect(reverse("applications:enrollment", args=[application.name]) + "#enroll-scep")


def _scoped_enrollment(application: Application, pk: int) -> ScepEnrollment:
    enrollment = get_object_or_404(
        ScepEnrollment.objects.filter(application=application).select_related("profile"), pk=pk
    )
    enrollment.application = application
    return enrollment


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def enable_view(request: HttpRequest, slug: str) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    profiles = {p.slug: p for p in application.profiles.filter(is_active=True)}
    form = EnableScepForm(
        request.POST or None, profiles=[(s, p.name) for s, p in sorted(profiles.items())]
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.enable(
                application,
                profiles[data["profile"]],
                actor=actor_for(request),
                allow_renewal=data["allow_renewal"],
                allow_legacy=data["allow_legacy"],
                max_outstanding_challenges=data["max_outstanding_challenges"],
            )
        except services.ScepConfigError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"SCEP enabled for {data['profile']}.")
            return _enrollment_page(application)
    return render(
        request,
        "scep/form.html",
        {"application": application, "form": form, "title": "Enable SCEP"},
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def edit_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    enrollment = _scoped_enrollment(application, pk)
    initial = services.settings_of(enrollment)
    form = ScepSettingsForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.update(enrollment, actor=actor_for(request), **form.cleaned_data)
        messages.success(request, "SCEP settings saved.")
        return _enrollment_page(application)
    title = f"SCEP settings for {enrollment.profile.slug}"
    return render(
        request, "scep/form.html", {"application": application, "form": form, "title": title}
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def challenge_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    enrollment = _scoped_enrollment(application, pk)
    form = StaticChallengeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["remove"]:
            services.set_static_challenge(enrollment, actor=actor_for(request), challenge="")
            messages.success(request, "Static challenge removed.")
            return _enrollment_page(application)
        secret = services.set_static_challenge(
            enrollment, actor=actor_for(request), challenge=form.cleaned_data["challenge"] or None
        )
        return _shown_once(request, application, enrollment, secret, "static challenge")
    title = f"Static challenge for {enrollment.profile.slug}"
    return render(
        request, "scep/form.html", {"application": application, "form": form, "title": title}
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def mint_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    application = scoped_application(request, slug, permissions.ISSUE)
    enrollment = _scoped_enrollment(application, pk)
    form = MintChallengeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _, secret = services.mint_challenge(
                enrollment,
                actor=actor_for(request),
                expected_cn=form.cleaned_data["expected_cn"],
                ttl=timedelta(minutes=form.cleaned_data["ttl_minutes"]),
            )
        except services.ScepConfigError as exc:
            form.add_error(None, str(exc))
        else:
            return _shown_once(request, application, enrollment, secret, "one-time challenge")
    title = f"One-time challenge for {enrollment.profile.slug}"
    return render(
        request, "scep/form.html", {"application": application, "form": form, "title": title}
    )


def _shown_once(
    request: HttpRequest,
    application: Application,
    enrollment: ScepEnrollment,
    secret: str,
    what: str,
) -> HttpResponse:
    context = {
        "application": application,
        "secret": secret,
        "what": what,
        "url": endpoint_url(request, enrollment),
    }
    response = render(request, "scep/secret.html", context)
    response["Cache-Control"] = "no-store"
    return response
