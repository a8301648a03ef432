"""The approver inbox and the Approval policies tab of an Application."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from applications.models import Application
from applications.views import application_context
from approvals import services
from approvals.forms import ApprovalPolicyForm, DecisionForm, RenewalBypassForm, StepFormSet
from approvals.models import ApprovalFlow, ApprovalPolicy
from certportal import permissions
from certportal.refusals import Refused
from certportal.web import actor_for, add_refusal_to_form, scoped_application
from issuance.services import RENEWAL_CONFLICTS


@login_required
@require_safe
def inbox(request: HttpRequest) -> HttpResponse:
    return render(request, "approvals/inbox.html", {"flows": services.inbox(request.user)})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def request_detail(request: HttpRequest, pk: str) -> HttpResponse:
    visible = permissions.applications_for(request.user, permissions.VIEW)
    flow = get_object_or_404(
        ApprovalFlow.objects.select_related("request", "request__profile", "application"),
        request_id=pk,
        application__in=visible,
    )
    form = DecisionForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.decide(
                flow.request,
                user=request.user,
                verdict=form.cleaned_data["verdict"],
                comment=form.cleaned_data["comment"],
                actor=actor_for(request),
            )
        except Refused as exc:  # the decision's, or the that the last approval runs
            add_refusal_to_form(form, exc, fields={})
            status = 409 if exc.code in RENEWAL_CONFLICTS else 200
        else:
            messages.success(request, "Your decision is recorded.")
            return redirect("approvals:inbox")
    flow.request.refresh_from_db()
    context = {
        "flow": flow,
        "held": flow.request,
        "decisions": flow.decisions.all(),
        "steps": services.step_labels(flow, _step_users(flow)),
        "can_decide": services.eligible(flow, request.user)
        and not flow.decisions.filter(approver_id=request.user.pk).exists(),
        "form": form,
    }
    return render(request, "approvals/request_detail.html", context, status=status)


def _step_users(flow: ApprovalFlow) -> Any:
    from django.contrib.auth import get_user_model

    ids = {pk for step in flow.steps for pk in step["users"]}
    return get_user_model().objects.filter(pk__in=ids)


def _managed(request: HttpRequest, slug: str) -> Application:
    """The Application if the user may see it and manage it, else 404 (the tab is not
    shown to other roles)."""
    return scoped_application(request, slug, permissions.MANAGE, hide=True)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def policies(request: HttpRequest, slug: str) -> HttpResponse:
    application = _managed(request, slug)
    bypass = RenewalBypassForm(
        request.POST or None,
        initial={"renewals_bypass": services.renewals_bypass(application.pk)},
    )
    if request.method == "POST" and bypass.is_valid():
        services.set_renewals_bypass(
            application, bypass.cleaned_data["renewals_bypass"], actor=actor_for(request)
        )
        messages.success(request, "Approval settings saved.")
        return redirect("approvals:policies", slug=slug)
    context = {
        **application_context(request, application, "approvals"),
        "policies": ApprovalPolicy.objects.filter(application=application).prefetch_related(
            "profiles", "steps__approvers"
        ),
        "bypass_form": bypass,
    }
    return render(request, "approvals/policies.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def policy_edit(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    application = _managed(request, slug)
    policy = None
    if pk is not None:
        policy = get_object_or_404(ApprovalPolicy, application=application, pk=pk)
    data = request.POST if request.method == "POST" else None
    form = ApprovalPolicyForm(data, application=application, initial=_initial(policy))
    steps = StepFormSet(
        data,
        prefix="steps",
        initial=_initial_steps(policy),
        form_kwargs={"application": application},
    )
    if request.method == "POST" and form.is_valid() and steps.is_valid():
        spec = _spec(form.cleaned_data, steps)
        try:
            services.save_policy(application, spec, actor=actor_for(request), policy=policy)
        except services.ApprovalError as exc:
            add_refusal_to_form(form, exc)
        else:
            messages.success(request, f"Policy {spec.name} saved.")
            return redirect("approvals:policies", slug=slug)
    context = {
        **application_context(request, application, "approvals"),
        "form": form,
        "steps": steps,
        "policy": policy,
    }
    return render(request, "approvals/policy_form.html", context)


@login_required
@require_POST
def policy_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    application = _managed(request, slug)
    policy = get_object_or_404(ApprovalPolicy, application=application, pk=pk)
    services.delete_policy(policy, actor=actor_for(request))
    messages.success(request, f"Policy {policy.name} deleted.")
    return redirect("approvals:policies", slug=slug)


def _spec(data: dict[str, Any], steps: Any) -> services.PolicySpec:
    step_specs = [
        services.StepSpec(
            required=s.cleaned_data["required"],
            role=s.cleaned_data.get("role") or "",
            users=list(s.cleaned_data.get("users") or []),
        )
        for s in steps.forms
        if s.cleaned_data and not s.cleaned_data.get("DELETE")
    ]
    return services.PolicySpec(
        name=data["name"],
        steps=step_specs,
        is_active=data["is_active"],
        profiles=list(data["profiles"]),
        trigger=data["trigger"],
        on_wildcard=data["on_wildcard"],
        on_validity_over_days=data["on_validity_over_days"],
        on_san_patterns=data["on_san_patterns"],
        on_server_keygen=data["on_server_keygen"],
        bypass_service_accounts=data["bypass_service_accounts"],
    )


def _initial(policy: ApprovalPolicy | None) -> dict[str, Any]:
    if policy is None:
        return {"is_active": True}
    return {
        "name": policy.name,
        "is_active": policy.is_active,
        "profiles": list(policy.profiles.all()),
        "trigger": policy.trigger,
        "on_wildcard": policy.on_wildcard,
        "on_validity_over_days": policy.on_validity_over_days,
        "on_san_patterns": "\n".join(policy.on_san_patterns),
        "on_server_keygen": policy.on_server_keygen,
        "bypass_service_accounts": policy.bypass_service_accounts,
    }


def _initial_steps(policy: ApprovalPolicy | None) -> list[dict[str, Any]]:
    if policy is None:
        return []
    return [
        {"required": s.required, "role": s.approver_role, "users": list(s.approvers.all())}
        for s in policy.steps.all()
    ]
