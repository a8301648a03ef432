from __future__ import annotations

from typing import Any

from django import template

from approvals.inbox import waiting_count

register = template.Library()


@register.simple_tag(takes_context=True)
def approval_inbox_count(context: dict[str, Any]) -> int:
    """Held requests the current user may decide now (the nav badge): one COUNT query."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return waiting_count(user)
