"""What issuance adds to an Application's Overview tab and to the Application list
(registered in IssuanceConfig.ready through applications.tabs)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from certportal import permissions
from issuance.choices import CertificateStatus
from issuance.models import Certificate

if TYPE_CHECKING:
    from django.http import HttpRequest

    from applications.models import Application

CHART_DAYS = 90
CHART_BUCKET_DAYS = 7
EXPIRING_SOON_DAYS = 30


def active_count() -> Count:
    """The Application list's column: active certificates per Application."""
    return Count("certificates", filter=Q(certificates__status=CertificateStatus.ACTIVE))


def expiry_buckets(certificates: QuerySet[Certificate]) -> list[dict[str, Any]]:
    """Active certificates expiring in each week of the next CHART_DAYS, in one query."""
    now = timezone.now()
    edges = [now + timedelta(days=d) for d in range(0, CHART_DAYS + 1, CHART_BUCKET_DAYS)]
    if edges[-1] < now + timedelta(days=CHART_DAYS):
        edges.append(now + timedelta(days=CHART_DAYS))
    aggregates = {
        f"b{i}": Count("id", filter=Q(not_after__gte=start, not_after__lt=end))
        for i, (start, end) in enumerate(itertools.pairwise(edges))
    }
    counts = certificates.filter(status=CertificateStatus.ACTIVE).aggregate(**aggregates)
    return [
        {"start": edges[i], "end": edges[i + 1], "count": counts[f"b{i}"]}
        for i in range(len(edges) - 1)
    ]


def section_context(request: HttpRequest, application: Application) -> dict[str, Any]:
    """Certificates by status, the expiry chart and what expires soon."""
    certificates = Certificate.objects.filter(application=application)
    by_status = dict(
        certificates.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    now = timezone.now()
    expiring = (
        certificates.filter(
            status=CertificateStatus.ACTIVE,
            not_after__gt=now,
            not_after__lte=now + timedelta(days=EXPIRING_SOON_DAYS),
        )
        .select_related("profile")
        .order_by("not_after")[:10]
    )
    total = sum(by_status.values())
    return {
        **next_steps(request, application, empty=total == 0),
        "status_counts": [(s.value, s.label, by_status.get(s.value, 0)) for s in CertificateStatus],
        "total": total,
        "expiring": expiring,
        "expiring_days": EXPIRING_SOON_DAYS,
        "buckets": expiry_buckets(certificates),
        "chart_days": CHART_DAYS,
    }


def next_steps(request: HttpRequest, application: Application, *, empty: bool) -> dict[str, Any]:
    """What the viewer can do next: who may issue sees the button; with no certificate
    yet, the ways to get the first one (and the ACME directory of the first active
    profile, to paste into a client)."""
    can_issue = permissions.has_perm(request.user, permissions.ISSUE, application)
    steps: dict[str, Any] = {
        "can_issue": can_issue,
        "can_manage": permissions.has_perm(request.user, permissions.MANAGE, application),
        "acme_directory": "",
        "has_profile": True,
    }
    if not empty:
        return steps
    profile = application.profiles.filter(is_active=True).order_by("name").first()
    steps["has_profile"] = profile is not None
    if profile is not None and can_issue:
        url = reverse("acme:directory", kwargs={"app": application.name, "profile": profile.slug})
        steps["acme_directory"] = request.build_absolute_uri(url)
    return steps
