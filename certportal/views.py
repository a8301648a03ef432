from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from certportal.db.redis import client as redis_client
from certportal.permissions import applications_for, is_product_admin
from profiles.models import CertificateAuthority


@login_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "applications": applications_for(request.user),
        "authorities": CertificateAuthority.objects.all() if is_product_admin(request.user) else [],
    }
    return render(request, "home.html", context)


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Healthy when the database (and Redis, when configured) answer; an outage raises
    and certportal.faults answers 503."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    client = redis_client()
    if client is not None:
        client.ping()
    return JsonResponse({"status": "ok"})
