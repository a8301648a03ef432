"""The Renewal tab of an Application (Admins: MANAGE): its defaults, one certificate's
overrides, and the certificates whose renewal needs a look.

Every lookup goes through the Application the user may manage: a certificate of another
Application is not found (404).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from applications.views import actor_for, application_context, scoped_application
from certportal import permissions
from issuance.choices import CertificateStatus
from issuance.models import RenewalSettings
from issuance.renewal import services
from issuance.renewal.forms import CertificateRenewalForm, RenewalSettingsForm


def _add_errors(form: BaseForm, error: ValidationError) -> None:
    for field, problems in error.message_dict.items():
        form.add_error(field if field in form.fields else None, problems)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def renewal_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """Application renewal defaults, and the certificates whose renewal needs a look."""
    application = scoped_application(request, slug, permissions.MANAGE)
    current = RenewalSettings.objects.filter(application=application).first()
    form = RenewalSettingsForm(request.POST or None, instance=current or RenewalSettings())
    if request.method == "POST" and form.is_valid():
        try:
            services.configure_application(
                application, **form.cleaned_data, actor=actor_for(request)
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, "Renewal settings saved.")
            return redirect("issuance:renewal", slug=application.name)
    context = application_context(request, application, "renewal")
    context.update(form=form, **_renewal_lists(application))
    return render(request, "issuance/renewal.html", context, status=400 if form.errors else 200)


def _renewal_lists(application: Any) -> dict[str, Any]:
    active = application.certificates.filter(status=CertificateStatus.ACTIVE)
    return {
        "failing": active.filter(renewal_attempts__gt=0).order_by("not_after")[:50],
        "upcoming": active.exclude(private_key="")
        .filter(next_renewal_attempt_at__isnull=False, renewal_attempts=0)
        .order_by("next_renewal_attempt_at")[:50],
    }


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def certificate_renewal(request: HttpRequest, slug: str, pk: str) -> HttpResponse:
    """One certificate's own auto-renew switch and window."""
    application = scoped_application(request, slug, permissions.MANAGE)
    certificate = get_object_or_404(
        application.certificates.filter(status=CertificateStatus.ACTIVE), pk=pk
    )
    initial = {
        "auto_renew": {None: "", True: "on", False: "off"}[certificate.auto_renew],
        "renew_days_before": certificate.renew_days_before,
    }
    form = CertificateRenewalForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.configure_certificate(
                certificate, **form.cleaned_data, actor=actor_for(request)
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, "Renewal settings of the certificate saved.")
            return redirect("issuance:renewal", slug=application.name)
    context = application_context(request, application, "renewal")
    context.update(form=form, certificate=certificate)
    status = 400 if form.errors else 200
    return render(request, "issuance/certificate_renewal.html", context, status=status)
