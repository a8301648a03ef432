"""The certificate page's sync status, loaded in one query."""

from __future__ import annotations

from typing import Any

from django import template

from syncs.models import SyncItem

register = template.Library()


@register.simple_tag
def certificate_sync_items(certificate: Any) -> list[SyncItem]:
    return list(
        SyncItem.objects.filter(certificate=certificate)
        .select_related("sync")
        .order_by("sync__name")
    )
