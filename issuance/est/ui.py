"""Portal side of EST: the Enrollment-tab section (every member reads it) and the
Admin-only pages that configure enrollments and their Basic credentials."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from applications.models import Application
from certportal import permissions
from certportal.web import actor_for, add_refusal_to_form, scoped_application
from issuance.est import services
from issuance.est.forms import EstCredentialForm, EstEnrollmentForm
from issuance.est.models import EstCredential, EstEnrollment


def base_url(request: HttpRequest, enrollment: EstEnrollment) -> str:
    return request.build_absolute_uri(f"/.well-known/est/{enrollment.label}/")


def section_context(request: HttpRequest, application: Application) -> dict[str, Any]:
    """Context of templates/est/enrollment_section.html (two queries, however many
    enrollments and credentials)."""
    credentials = EstCredential.objects.order_by("-created_at")
    enrollments = (
        EstEnrollment.objects.filter(application=application)
        .select_related("profile")
        .prefetch_related(Prefetch("credentials", queryset=credentials))
    )
    return {
        "est_enrollments": [(e, base_url(request, e)) for e in enrollments],
        "est_can_manage": permissions.has_perm(request.user, permissions.MANAGE, application),
    }


def _back(application: Application) -> HttpResponse:
    return redirect(reverse("applications:enrollment", args=[application.name]) + "#enroll-est")


def _spec(form: EstEnrollmentForm, current: EstEnrollment | None) -> services.EnrollmentSpec:
    data = form.cleaned_data
    bundle = data["trust_bundle"]
    if bundle is None:
        bundle = "" if data["clear_trust_bundle"] or current is None else current.trust_bundle_pem
    return services.EnrollmentSpec(
        profile=data["profile"],
        label=data["label"],
        basic_auth=data["basic_auth"],
        client_cert_auth=data["client_cert_auth"],
        trust_bundle_pem=bundle,
        reenroll_allow_san_change=data["reenroll_allow_san_change"],
        is_default=data["is_default"],
    )


def _save(
    request: HttpRequest, application: Application, current: EstEnrollment | None
) -> HttpResponse:
    initial = {}
    if current is not None:
        initial = {
            "profile": current.profile.slug,
            "label": current.label,
            "basic_auth": current.basic_auth,
            "client_cert_auth": current.client_cert_auth,
            "reenroll_allow_san_change": current.reenroll_allow_san_change,
            "is_default": current.is_default,
        }
    post = request.method == "POST"
    form = EstEnrollmentForm(
        application,
        request.POST if post else None,
        request.FILES if post else None,
        initial=initial,
    )
    if post and form.is_valid():
        try:
            services.save_enrollment(
                application, _spec(form, current), actor=actor_for(request), enrollment=current
            )
        except services.EstConfigError as exc:
            add_refusal_to_form(form, exc)
        else:
            messages.success(request, "EST enrollment saved.")
            return _back(application)
    context = {"application": application, "form": form, "enrollment": current}
    return render(request, "est/enrollment_form.html", context, status=400 if post else 200)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def enrollment_create(request: HttpRequest, slug: str) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    return _save(request, application, None)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def enrollment_edit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    enrollment = get_object_or_404(
        EstEnrollment.objects.filter(application=application).select_related("profile"), pk=pk
    )
    return _save(request, application, enrollment)


@login_required
@require_http_methods(["POST"])
def enrollment_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    enrollment = get_object_or_404(EstEnrollment.objects.filter(application=application), pk=pk)
    services.delete_enrollment(enrollment, actor=actor_for(request))
    messages.success(request, f"EST enrollment {enrollment.label} deleted.")
    return _back(application)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def credential_create(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    enrollment = get_object_or_404(EstEnrollment.objects.filter(application=application), pk=pk)
    form = EstCredentialForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            credential, password = services.create_credential(
                enrollment,
                username=form.cleaned_data["username"],
                expires_at=form.cleaned_data["expires_at"],
                actor=actor_for(request),
            )
        except services.EstConfigError as exc:
            form.add_error(None, exc.message)
        else:
            context = {
                "application": application,
                "enrollment": enrollment,
                "credential": credential,
                "password": password,
                "url": base_url(request, enrollment),
            }
            response = render(request, "est/credential_created.html", context)
            response["Cache-Control"] = "no-store"
            return response
    context = {"application": application, "enrollment": enrollment, "form": form}
    return render(request, "est/credential_form.html", context)


@login_required
@require_http_methods(["POST"])
def credential_revoke(request: HttpRequest, slug: str, pk: int, cred: int) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    credential = get_object_or_404(
        EstCredential.objects.filter(
            enrollment__application=application, enrollment_id=pk
        ).select_related("enrollment__application"),
        pk=cred,
    )
    if services.revoke_credential(credential, actor=actor_for(request)):
        messages.success(request, f"EST credential {credential.username} revoked.")
    return _back(application)
