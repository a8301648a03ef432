"""The Syncs tab of an Application: syncs with their status counts, each sync's items
(with errors) and run history, the actions, and connection management. Admins write;
every member reads; no page shows credentials.

Every lookup goes through the Application the user may see: a sync, item or connection
of another Application is not found (404). Nothing here calls a provider except "test
connection" (an answer the Admin waits for); pushes, removals and drift checks are
queued for workers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from applications.models import Application
from applications.views import application_context
from certportal import permissions, queue
from certportal.web import actor_for, scoped_application
from syncs import services
from syncs.choices import ItemStatus
from syncs.forms import ConnectionForm, DeleteForm, DriftForm, SyncForm
from syncs.models import Connection, SyncItem


def _add_errors(form: BaseForm, error: ValidationError) -> None:
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for field, problems in error.message_dict.items():
        name = field.split(".", 1)[1] if field.startswith("options.") else field
        target = name if name in form.fields else ("options" if "options" in form.fields else None)
        form.add_error(target, [f"{field}: {p}" if target != field else p for p in problems])


def _posted(request: HttpRequest) -> Any:
    """The form data of a POST (even an empty one: it is validated, not shown blank)."""
    return request.POST if request.method == "POST" else None


def _manage(request: HttpRequest, slug: str) -> Application:
    return scoped_application(request, slug, permissions.MANAGE)


@login_required
@require_safe
def sync_list(request: HttpRequest, slug: str) -> HttpResponse:
    """Syncs with item counts per status, and the connections."""
    application = scoped_application(request, slug)
    syncs = list(application.syncs.select_related("connection", "profile"))
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        SyncItem.objects.filter(sync__in=syncs)
        .values_list("sync_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for sync_id, status, n in rows:
        counts[sync_id][status] = n
    for sync in syncs:
        sync.counts = dict(counts.get(sync.pk, {}))  # type: ignore[attr-defined]
    context = application_context(request, application, "syncs")
    context.update(syncs=syncs, connections=application.sync_connections.all())
    return render(request, "syncs/list.html", context)


@login_required
@require_safe
def sync_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """One sync: its items (with errors) and its run history."""
    application = scoped_application(request, slug)
    sync = get_object_or_404(application.syncs.select_related("connection", "profile"), pk=pk)
    items = sync.items.select_related("certificate").order_by("status", "certificate__common_name")
    status = request.GET.get("status", "")
    if status in ItemStatus.values:
        items = items.filter(status=status)
    context = application_context(request, application, "syncs")
    context.update(
        sync=sync,
        page=Paginator(items, 50).get_page(request.GET.get("page")),
        runs=sync.runs.all()[:20],
        status=status,
        statuses=ItemStatus.choices,
        drift_form=DriftForm(),
    )
    return render(request, "syncs/detail.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def sync_edit(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    """Create or change a sync; "Preview" lists what it would push without saving."""
    application = _manage(request, slug)
    sync = get_object_or_404(application.syncs, pk=pk) if pk else None
    form = SyncForm(_posted(request), application=application, sync=sync)
    preview: list[dict[str, Any]] | None = None
    if request.method == "POST" and form.is_valid():
        try:
            spec = _spec(application, form)
            if "preview" in request.POST:
                preview = services.preview(spec, application)
            else:
                saved = services.save_sync(application, spec, actor=actor_for(request), sync=sync)
                messages.success(request, f"Sync {saved.name} saved; its certificates are queued.")
                return redirect("syncs:detail", slug=application.name, pk=saved.pk)
        except ValidationError as exc:
            _add_errors(form, exc)
    context = application_context(request, application, "syncs")
    context.update(form=form, sync=sync, preview=preview)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "syncs/sync_form.html", context, status=status)


def _spec(application: Application, form: SyncForm) -> services.SyncSpec:
    data = form.cleaned_data
    certificate = None
    if data.get("certificate"):
        certificate = application.certificates.filter(pk=data["certificate"]).first()
        if certificate is None:
            raise ValidationError({"certificate": "Unknown certificate."})
    return services.SyncSpec(
        name=data["name"],
        destination=data["destination"],
        connection=data["connection"],
        selector=data["selector"],
        profile=data.get("profile"),
        certificate=certificate,
        name_pattern=data.get("name_pattern", ""),
        name_template=data.get("name_template", ""),
        options=form.all_options(),
        is_active=data.get("is_active", False),
    )


@login_required
@require_POST
def sync_run(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Sync now: queue new matches and anything not in sync."""
    application = _manage(request, slug)
    sync = get_object_or_404(application.syncs, pk=pk)
    run = services.run_now(sync, actor=actor_for(request))
    messages.success(request, f"{run.queued} certificate(s) queued.")
    return redirect("syncs:detail", slug=application.name, pk=sync.pk)


@login_required
@require_POST
def sync_drift(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Queue a drift check; its report appears in the run history."""
    application = _manage(request, slug)
    sync = get_object_or_404(application.syncs, pk=pk)
    form = DriftForm(request.POST)
    repair = form.is_valid() and form.cleaned_data["repair"]
    label = actor_for(request).describe()
    queue.enqueue(
        "syncs.tasks.check_drift", sync.pk, repair, label, task_name=f"sync-drift-{sync.pk}"
    )
    messages.success(request, "Drift check queued; its report appears in the run history.")
    return redirect("syncs:detail", slug=application.name, pk=sync.pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def sync_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Ask whether to remove what the sync pushed, then delete it."""
    application = _manage(request, slug)
    sync = get_object_or_404(application.syncs, pk=pk)
    form = DeleteForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        remote = form.cleaned_data["remove_remote"]
        gone = services.delete_sync(sync, remove_remote=remote, actor=actor_for(request))
        messages.success(
            request, "Sync deleted." if gone else "Removing what it pushed; then it goes."
        )
        return redirect("syncs:list", slug=application.name)
    context = application_context(request, application, "syncs")
    context.update(form=form, target=sync, kind="sync")
    return render(request, "syncs/delete.html", context)


def _item(application: Application, pk: int, certificate: Any) -> SyncItem:
    sync = get_object_or_404(application.syncs, pk=pk)
    return get_object_or_404(
        SyncItem.objects.select_related("sync", "sync__application", "certificate"),
        sync=sync,
        certificate_id=certificate,
    )


@login_required
@require_POST
def item_repush(request: HttpRequest, slug: str, pk: int, certificate: Any) -> HttpResponse:
    application = _manage(request, slug)
    item = _item(application, pk, certificate)
    try:
        services.repush(item, actor=actor_for(request))
        messages.success(request, "Queued to be pushed again.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("syncs:detail", slug=application.name, pk=pk)


@login_required
@require_POST
def item_remove(request: HttpRequest, slug: str, pk: int, certificate: Any) -> HttpResponse:
    application = _manage(request, slug)
    services.remove(_item(application, pk, certificate), actor=actor_for(request))
    messages.success(request, "Queued to be removed from the destination.")
    return redirect("syncs:detail", slug=application.name, pk=pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def connection_edit(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    application = _manage(request, slug)
    connection = get_object_or_404(application.sync_connections, pk=pk) if pk else None
    form = ConnectionForm(_posted(request), connection=connection)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save_connection(
                application,
                name=form.cleaned_data["name"],
                kind=form.cleaned_data["kind"],
                credentials=form.credentials(),
                config=form.config(),
                actor=actor_for(request),
                connection=connection,
            )
            messages.success(request, f"Connection {saved.name} saved.")
            return redirect("syncs:list", slug=application.name)
        except ValidationError as exc:
            _add_errors(form, exc)
    context = application_context(request, application, "syncs")
    context.update(form=form, connection=connection)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "syncs/connection_form.html", context, status=status)


@login_required
@require_POST
def connection_test(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    application = _manage(request, slug)
    connection = get_object_or_404(application.sync_connections, pk=pk)
    ok, message = services.test_connection(connection, actor=actor_for(request))
    (messages.success if ok else messages.error)(request, f"{connection.name}: {message}")
    return redirect("syncs:list", slug=application.name)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def connection_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    application = _manage(request, slug)
    connection: Connection = get_object_or_404(application.sync_connections, pk=pk)
    form = DeleteForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        gone = services.delete_connection(
            connection, remove_remote=form.cleaned_data["remove_remote"], actor=actor_for(request)
        )
        messages.success(
            request,
            "Connection deleted." if gone else "Its syncs are removing what they pushed first.",
        )
        return redirect("syncs:list", slug=application.name)
    context = application_context(request, application, "syncs")
    context.update(form=form, target=connection, kind="connection", syncs=connection.syncs.all())
    return render(request, "syncs/delete.html", context)
