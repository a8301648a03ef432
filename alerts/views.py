"""The Alerting tab of an Application (Admins: MANAGE).

Every lookup goes through the Application the user may manage: a channel or rule of
another Application is not found (404).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from alerts import services
from alerts.forms import AlertRuleForm, ChannelForm
from alerts.models import AlertRule, Channel
from applications.views import application_context
from certportal import permissions
from certportal.web import actor_for, scoped_application


def _add_errors(form: BaseForm, error: ValidationError) -> None:
    for field, problems in error.message_dict.items():
        form.add_error(field if field in form.fields else None, problems)


@login_required
@require_safe
def alerting(request: HttpRequest, slug: str) -> HttpResponse:
    """Channels, rules and the delivery log."""
    application = scoped_application(request, slug, permissions.MANAGE)
    log = application.alert_deliveries.select_related("channel", "rule").order_by("-created_at")
    context = application_context(request, application, "alerting")
    context.update(
        channels=application.alert_channels.all(),
        rules=application.alert_rules.prefetch_related("channels"),
        page=Paginator(log, 50).get_page(request.GET.get("page")),
        target="#delivery-log",
    )
    return render(request, "alerts/alerting.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def channel_edit(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    channel = get_object_or_404(application.alert_channels, pk=pk) if pk else None
    initial = ChannelForm.initial_for(channel) if channel else None
    form = ChannelForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        config, secrets = form.settings()
        try:
            services.save_channel(
                application,
                name=form.cleaned_data["name"],
                kind=form.cleaned_data["kind"],
                config=config,
                secrets=secrets,
                actor=actor_for(request),
                channel=channel,
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"Channel {form.cleaned_data['name']} saved.")
            return redirect("alerts:alerting", slug=application.name)
    context = application_context(request, application, "alerting")
    context.update(form=form, channel=channel)
    status = 400 if form.errors else 200
    return render(request, "alerts/channel_form.html", context, status=status)


@login_required
@require_POST
def channel_test(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The test-send button: queue a test message; the worker sends it."""
    application = scoped_application(request, slug, permissions.MANAGE)
    channel: Channel = get_object_or_404(application.alert_channels, pk=pk)
    services.queue_test_message(channel, actor=actor_for(request))
    messages.info(
        request,
        f"Test message to {channel.name} queued: its outcome appears in the delivery log.",
    )
    return redirect("alerts:alerting", slug=application.name)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def rule_edit(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    application = scoped_application(request, slug, permissions.MANAGE)
    rule = get_object_or_404(application.alert_rules, pk=pk) if pk else AlertRule()
    form = AlertRuleForm(request.POST or None, instance=rule, application=application)
    if request.method == "POST" and form.is_valid():
        channel_ids = [c.pk for c in form.cleaned_data["channels"]]
        try:
            services.save_rule(application, form.rule(), channel_ids, actor=actor_for(request))
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"Rule {form.cleaned_data['name']} saved.")
            return redirect("alerts:alerting", slug=application.name)
    context = application_context(request, application, "alerting")
    context.update(form=form, rule=rule if pk else None)
    status = 400 if form.errors else 200
    return render(request, "alerts/rule_form.html", context, status=status)
