"""The Syncs tab of an Application: syncs with their status counts, each sync's items
and run history, and connection management (Admins write; every member reads; no page
shows credentials).

Every lookup goes through the Application the user may see: a sync, item or connection
of another Application is not found (404).
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from applications.views import application_context, scoped_application
from syncs.models import SyncItem


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
    if status:
        items = items.filter(status=status)
    context = application_context(request, application, "syncs")
    context.update(
        sync=sync,
        page=Paginator(items, 50).get_page(request.GET.get("page")),
        runs=sync.runs.all()[:20],
        status=status,
    )
    return render(request, "syncs/detail.html", context)
