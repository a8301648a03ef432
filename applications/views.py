"""Application pages: list, creation, Overview, Members, Enrollment and Audit log tabs.

Every lookup goes through ``certportal.web.scoped_application``: an Application the user
does not belong to is not found (404). A member without the permission an action needs
gets 403 (they already know the Application exists).

Other features build their tab pages on ``application_context()`` and the template
``applications/application_base.html``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from applications import services, tabs
from applications.forms import (
    AddMemberForm,
    ApplicationEditForm,
    ApplicationForm,
    AuditFilterForm,
    MemberRoleForm,
)
from applications.models import Application, AuditEvent
from certportal import permissions
from certportal.web import (
    actor_for,
    is_filtered,
    render_page,
    require_product_admin,
    scoped_application,
)

logger = logging.getLogger(__name__)


def tab_links(user: Any, application: Application) -> list[dict[str, Any]]:
    """The visible tabs with their URLs. A tab whose URL does not resolve (a feature
    registered it but its routes are missing) is logged and left out rather than
    breaking every page of the Application."""
    links = []
    for tab in tabs.tabs_for(user, application):
        try:
            url = reverse(tab.url_name, kwargs={"slug": application.name})
        except NoReverseMatch:
            logger.warning("tab %r: URL %r does not resolve", tab.key, tab.url_name)
            continue
        links.append({"key": tab.key, "label": tab.label, "url": url})
    return links


def application_context(
    request: HttpRequest, application: Application, active_tab: str
) -> dict[str, Any]:
    """Context for templates extending applications/application_base.html."""
    user = request.user
    return {
        "application": application,
        "tabs": tab_links(user, application),
        "active_tab": active_tab,
        "can": {
            "issue": permissions.has_perm(user, permissions.ISSUE, application),
            "revoke": permissions.has_perm(user, permissions.REVOKE, application),
            "download_key": permissions.has_perm(user, permissions.DOWNLOAD_KEY, application),
            "manage": permissions.has_perm(user, permissions.MANAGE, application),
        },
    }


# --- List and creation --------------------------------------------------------------------


@login_required
@require_safe
def application_list(request: HttpRequest) -> HttpResponse:
    columns = tabs.list_columns()
    applications = permissions.applications_for(request.user).annotate(
        **{c.key: c.annotation() for c in columns}
    )
    rows = [(a, [getattr(a, c.key) for c in columns]) for a in applications]
    return render(
        request,
        "applications/list.html",
        {
            "rows": rows,
            "columns": columns,
            "is_product_admin": permissions.is_product_admin(request.user),
        },
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def application_create(request: HttpRequest) -> HttpResponse:
    require_product_admin(request)
    form = ApplicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        application = services.create_application(
            name=data["name"],
            description=data["description"],
            profiles=data["profiles"],
            first_admin=data["first_admin"],
            actor=actor_for(request),
        )
        messages.success(request, f"Application {application.name} created.")
        return redirect("applications:overview", slug=application.name)
    return render(request, "applications/create.html", {"form": form})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def application_edit(request: HttpRequest, slug: str) -> HttpResponse:
    require_product_admin(request)
    application = get_object_or_404(Application, name=slug)
    initial = {"description": application.description, "profiles": application.profiles.all()}
    form = ApplicationEditForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.update_application(
            application,
            actor=actor_for(request),
            description=form.cleaned_data["description"],
            profiles=form.cleaned_data["profiles"],
        )
        messages.success(request, f"Application {application.name} updated.")
        return redirect("applications:overview", slug=application.name)
    return render(request, "applications/edit.html", {"form": form, "application": application})


# --- Overview -----------------------------------------------------------------------------


@login_required
@require_safe
def overview(request: HttpRequest, slug: str) -> HttpResponse:
    """The Application at a glance: the sections features register (certificates by
    status and expiry, ...) and the attached profiles."""
    application = scoped_application(request, slug)
    sections = [
        {"key": s.key, "html": _render_section(request, application, s.template, s.context)}
        for s in tabs.overview_sections()
    ]
    context = application_context(request, application, "overview")
    context.update(sections=sections, profiles=application.profiles.all())
    return render(request, "applications/overview.html", context)


def _render_section(
    request: HttpRequest,
    application: Application,
    template: str,
    context: Callable[[HttpRequest, Application], dict[str, Any]],
) -> str:
    """A registered section, rendered with its own context (plus application and request)."""
    extra = {"application": application, **context(request, application)}
    return render_to_string(template, extra, request=request)


# --- Members ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def members(request: HttpRequest, slug: str) -> HttpResponse:
    """The member list (every role); adding a member needs MANAGE."""
    perm = permissions.MANAGE if request.method == "POST" else permissions.VIEW
    application = scoped_application(request, slug, perm)
    form = AddMemberForm(request.POST or None, application=application)
    if request.method == "POST" and form.is_valid():
        user = form.cleaned_data["username"]
        services.set_member_role(
            application, user, form.cleaned_data["role"], actor=actor_for(request)
        )
        messages.success(request, f"{user.get_username()} added as {form.cleaned_data['role']}.")
        return redirect("applications:members", slug=application.name)
    context = application_context(request, application, "members")
    context.update(
        memberships=application.memberships.select_related("user").order_by("user__username"),
        form=form,
        role_choices=MemberRoleForm.base_fields["role"].choices,  # type: ignore[attr-defined]
    )
    return render(request, "applications/members.html", context, status=400 if form.errors else 200)


def _member(application: Application, user_id: int) -> Any:
    return get_object_or_404(
        get_user_model().objects.filter(memberships__application=application), pk=user_id
    )


@login_required
@require_POST
def member_role(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    user = _member(application, user_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: Admin, Operator or Auditor.")
    else:
        try:
            services.set_member_role(
                application, user, form.cleaned_data["role"], actor=actor_for(request)
            )
            messages.success(request, f"{user.get_username()} is now {form.cleaned_data['role']}.")
        except services.MembershipError as exc:
            messages.error(request, str(exc))
    return redirect("applications:members", slug=application.name)


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    user = _member(application, user_id)
    try:
        services.remove_member(application, user, actor=actor_for(request))
        messages.success(request, f"{user.get_username()} removed.")
    except services.MembershipError as exc:
        messages.error(request, str(exc))
    return redirect("applications:members", slug=application.name)


# --- Enrollment ---------------------------------------------------------------------------


@login_required
@require_safe
def enrollment(request: HttpRequest, slug: str) -> HttpResponse:
    """How certificates get into this Application: the web UI, plus every section other
    features (ACME, EST, SCEP, API) register."""
    application = scoped_application(request, slug)
    sections = [
        {"key": s.key, "html": _render_section(request, application, s.template, s.context)}
        for s in tabs.enrollment_sections_for(request.user, application)
    ]
    context = application_context(request, application, "enrollment")
    context.update(sections=sections, profiles=application.profiles.select_related("issuing_ca"))
    return render(request, "applications/enrollment.html", context)


# --- Audit log ----------------------------------------------------------------------------


def filter_audit(events: QuerySet[AuditEvent], form: AuditFilterForm) -> QuerySet[AuditEvent]:
    form.is_valid()
    data = form.cleaned_data
    if data.get("application"):
        events = events.filter(application__name=data["application"].strip())
    if data.get("action"):
        events = events.filter(action__startswith=data["action"].strip())
    if data.get("actor"):
        events = events.filter(actor_label__icontains=data["actor"].strip())
    if data.get("since"):
        events = events.filter(created_at__date__gte=data["since"])
    if data.get("until"):
        events = events.filter(created_at__date__lte=data["until"])
    return events


def _audit_page(
    request: HttpRequest, events: QuerySet[AuditEvent], *, global_log: bool = False
) -> dict[str, Any]:
    form = AuditFilterForm(request.GET)
    if not global_log:
        del form.fields["application"]
    page = Paginator(filter_audit(events, form), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "filter_form": form,
        "page": page,
        "query": query.urlencode(),
        "filtered": is_filtered(query),
    }


@login_required
@require_safe
def audit_log(request: HttpRequest, slug: str) -> HttpResponse:
    application = scoped_application(request, slug)
    context = application_context(request, application, "audit")
    context.update(_audit_page(request, AuditEvent.objects.filter(application=application)))
    return render_page(
        request, "applications/audit.html", "applications/_audit_table.html", context
    )


@login_required
@require_safe
def global_audit_log(request: HttpRequest) -> HttpResponse:
    require_product_admin(request)
    context = _audit_page(
        request, AuditEvent.objects.select_related("application"), global_log=True
    )
    context["global_log"] = True
    return render_page(
        request, "applications/audit_global.html", "applications/_audit_table.html", context
    )
