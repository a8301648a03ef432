"""Filtering, searching and sorting the certificate inventory.

Shared by the portal's Certificates tab, its CSV export and the REST API. Every filter is
served by an index that leads with the Application (see ``Certificate.Meta.indexes``);
the free-text search uses a trigram GIN index on ``search_text`` on PostgreSQL, and a
serial number or SHA-256 fingerprint takes an exact-match path instead of a scan.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils import timezone

from issuance.choices import CertificateStatus, EnrollmentMethod
from profiles.models import CertificateProfile

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from issuance.models import Certificate

# Sort keys a caller may ask for; anything else falls back to the default.
SORTS = {
    "-created_at": ("-created_at",),
    "created_at": ("created_at",),
    "not_after": ("not_after",),
    "-not_after": ("-not_after",),
}
DEFAULT_SORT = "-created_at"
MAX_QUERY_LENGTH = 255

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]+$")


def normalise_hex(text: str) -> str:
    """'AB:cd 01' -> 'abcd01': serials and fingerprints as people paste them."""
    return re.sub(r"[\s:]", "", text).lower()


def search_filter(q: str) -> Q:
    """The condition for a free-text query: an exact fingerprint, an exact serial, or a
    substring of the CN or a SAN (search_text holds them lowercased)."""
    q = q.strip()[:MAX_QUERY_LENGTH]
    hexed = normalise_hex(q)
    if _FINGERPRINT.match(hexed):
        return Q(fingerprint_sha256=hexed)
    text = Q(search_text__contains=q.lower())
    if _HEX.match(hexed) and len(hexed) >= 8:
        serial = hexed.upper()
        serial = serial if len(serial) % 2 == 0 else "0" + serial
        return Q(serial_number=serial) | text
    return text


def filter_certificates(
    queryset: QuerySet[Certificate],
    *,
    q: str = "",
    status: str = "",
    profile: str = "",
    method: str = "",
    expiring_within_days: int | None = None,
    sort: str = DEFAULT_SORT,
) -> QuerySet[Certificate]:
    """Narrow an (already user-scoped) certificate queryset.

    ``profile`` is a profile slug, ``status`` a CertificateStatus value, ``method`` an
    EnrollmentMethod value; unknown values match nothing rather than everything.
    ``expiring_within_days`` keeps active certificates whose not_after falls within that
    many days from now. ``sort`` is one of SORTS (default newest first).
    """
    if q and q.strip():
        queryset = queryset.filter(search_filter(q))
    if status:
        queryset = (
            queryset.filter(status=status)
            if status in CertificateStatus.values
            else (queryset.none())
        )
    if profile:
        # The profile's id, not a join on its slug: the planner then knows which rows and
        # walks the (application, created_at) index instead of joining a third of them.
        ids = CertificateProfile.objects.filter(slug=profile).values_list("pk", flat=True)
        queryset = queryset.filter(profile_id__in=list(ids))
    if method:
        queryset = (
            queryset.filter(method=method)
            if method in EnrollmentMethod.values
            else (queryset.none())
        )
    if expiring_within_days is not None:
        now = timezone.now()
        queryset = queryset.filter(
            status=CertificateStatus.ACTIVE,
            not_after__gt=now,
            not_after__lte=now + timedelta(days=max(int(expiring_within_days), 0)),
        )
    return queryset.order_by(*SORTS.get(sort, SORTS[DEFAULT_SORT]), "-id")
