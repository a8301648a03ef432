"""Portal side of ACME: the Enrollment-tab section (directory URLs, EAB credentials, the
Application's accounts) and the Admin-only views that create and revoke EAB credentials
and deactivate accounts. Every member reads the accounts list; only Admins change."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from applications.models import Application
from applications.views import application_context
from certportal import permissions
from certportal.web import actor_for, scoped_application
from issuance.acme import services
from issuance.acme.choices import AccountStatus
from issuance.acme.forms import ExternalAccountKeyForm, RevokeExternalAccountKeyForm
from issuance.acme.models import Account, ExternalAccountKey, Order

ACCOUNTS_PER_PAGE = 25


def section_context(request: HttpRequest, application: Application) -> dict[str, Any]:
    """Context of templates/acme/enrollment_section.html (a fixed number of queries,
    however many credentials and accounts)."""
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
    eab_keys = application.acme_eab_keys.annotate(account_count=Count("accounts"))
    accounts = Paginator(account_rows(application), ACCOUNTS_PER_PAGE)
    return {
        "acme_directories": directories,
        "acme_can_manage": can_manage,
        "acme_eab_keys": list(eab_keys) if can_manage else [],
        "acme_eab_form": ExternalAccountKeyForm(),
        "acme_accounts": accounts.get_page(request.GET.get("acme_page")),
    }


def account_rows(application: Application) -> QuerySet[Account]:
    """The Application's accounts, newest first, each with its EAB credential and the
    time of its last order (one query per page)."""
    last_order = (
        Order.objects.filter(account=OuterRef("pk")).order_by("-created_at").values("created_at")
    )
    return (
        Account.objects.filter(application=application)
        .select_related("eab_key")
        .annotate(last_order_at=Subquery(last_order[:1]))
        .order_by("-created_at", "pk")
    )


def _enrollment(application: Application) -> HttpResponse:
    return redirect(reverse("applications:enrollment", args=[application.name]) + "#enroll-acme")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def eab_create(request: HttpRequest, slug: str) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    form = ExternalAccountKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        eab, hmac_key = services.create_eab_key(
            application,
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
            reusable=form.cleaned_data["reusable"],
            actor=actor_for(request),
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


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def eab_revoke(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Confirm, then revoke an EAB credential and (by default) deactivate its accounts."""
    application = scoped_application(request, slug, permissions.MANAGE)
    eab = get_object_or_404(ExternalAccountKey.objects.filter(application=application), pk=pk)
    # Unticked checkboxes send nothing: a POST binds the form even when it is empty.
    form = RevokeExternalAccountKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        deactivated = services.revoke_eab_key(
            eab,
            actor=actor_for(request),
            deactivate_accounts=form.cleaned_data["deactivate_accounts"],
        )
        done = f"EAB credential {eab.name} revoked"
        if deactivated:
            done += f"; {len(deactivated)} account(s) deactivated"
        messages.success(request, done + ".")
        return _enrollment(application)
    context = application_context(request, application, "enrollment")
    context.update(eab=eab, form=form, accounts=services.bound_accounts(eab))
    return render(request, "acme/eab_revoke.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def account_deactivate(request: HttpRequest, slug: str, account_id: str) -> HttpResponse:
    """Confirm, then deactivate one of the Application's ACME accounts."""
    application = scoped_application(request, slug, permissions.MANAGE)
    account = get_object_or_404(
        Account.objects.filter(application=application).select_related("eab_key"), pk=account_id
    )
    if request.method == "POST":
        if services.deactivate_account(account, actor=actor_for(request)):
            messages.success(request, "ACME account deactivated.")
        else:
            messages.info(request, f"The ACME account was already {account.status}.")
        return _enrollment(application)
    context = application_context(request, application, "enrollment")
    context.update(account=account, is_valid=account.status == AccountStatus.VALID)
    return render(request, "acme/account_deactivate.html", context)
