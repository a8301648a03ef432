from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from applications.models import Application
from certportal.db.redis import client as redis_client
from certportal.permissions import applications_for, is_product_admin
from profiles.models import CertificateAuthority, CertificateProfile


@login_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The viewer's Applications; for product admins the CAs, and until the portal can
    issue, the order of work that gets it there."""
    product_admin = is_product_admin(request.user)
    context = {
        "applications": applications_for(request.user),
        "authorities": CertificateAuthority.objects.all() if product_admin else [],
        "setup": setup_steps() if product_admin else None,
    }
    return render(request, "home.html", context)


def setup_steps() -> list[dict[str, object]] | None:
    """A product admin's first steps, in order (each needs the one before), with whether
    each is done; None once all are."""
    steps = [
        {
            "done": CertificateAuthority.objects.exists(),
            "url": "profiles:ca-list",
            "label": "Create or import a certificate authority",
            "why": "It signs every certificate.",
        },
        {
            "done": CertificateProfile.objects.exists(),
            "url": "profiles:profile-list",
            "label": "Create a certificate profile",
            "why": "It says what a certificate may contain and which CA signs it.",
        },
        {
            "done": Application.objects.exists(),
            "url": "applications:create",
            "label": "Create an Application",
            "why": "A team's certificates, members and enrollment live in it.",
        },
    ]
    return None if all(s["done"] for s in steps) else steps


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
