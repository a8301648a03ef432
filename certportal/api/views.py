"""API-wide views: a JSON 404 for any path under /api/ that no route matches."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt  # reads nothing and changes nothing; a JSON 404 for every method
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    body = {"code": "not_found", "message": "No API resource at this path.", "errors": []}
    return JsonResponse(body, status=404)
