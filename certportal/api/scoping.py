"""Scoped lookups for API views: outside the caller's scope is 404, inside it a missing
role is 403 (the caller can already see the Application exists)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from rest_framework import exceptions, permissions
from rest_framework.request import Request

from certportal import generation
from certportal import permissions as perms
from certportal.web import actor_for as actor_for  # API views import it from here too

if TYPE_CHECKING:
    from applications.models import Application


def application_for(request: Request, slug: str, perm: str = perms.VIEW) -> Application:
    """One query when the caller holds perm (none while cached); a second only to tell
    403 from 404."""
    user = request.user
    granted = _GRANTS.get(
        (user.pk, perm, slug), lambda: perms.applications_for(user, perm).filter(name=slug).first()
    )
    if granted is not None:
        return copy.copy(granted)
    visible = get_object_or_404(perms.applications_for(request.user, perms.VIEW), name=slug)
    require(request, perm, visible)  # raises: the caller sees it but lacks perm
    return visible


# (user, permission, Application name) -> the Application, when granted. With Redis kept
# per process while the configuration generation holds: any change to guardian's
# permission rows, to users or to Applications moves it. Without Redis, not cached.
_GRANTS: generation.Cache[Application] = generation.Cache(
    depends_on=(
        "guardian.UserObjectPermission",
        "guardian.GroupObjectPermission",
        settings.AUTH_USER_MODEL,
        f"{settings.AUTH_USER_MODEL}_groups",
        "applications.Application",
    ),
    shared_only=True,
)


def require(request: Request, perm: str, application: Application) -> None:
    if not perms.has_perm(request.user, perm, application):
        raise exceptions.PermissionDenied(
            "Your role in this Application does not allow this.", code="permission_denied"
        )


class IsProductAdminOrReadOnly(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return perms.is_product_admin(request.user)


class ApplicationScopedMixin:
    """For views nested under /applications/{slug}/: resolves the Application once."""

    request: Request
    kwargs: dict[str, Any]
    # The permission each action needs on the Application; VIEW when not listed.
    action_permissions: dict[str, str] = {}
    action: str | None

    def get_application(self) -> Application:
        if not hasattr(self, "_application"):
            needed = self.action_permissions.get(self.action or "", perms.VIEW)
            self._application = application_for(self.request, self.kwargs["slug"], needed)
        return self._application

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if getattr(self, "swagger_fake_view", False):
            return
        self.get_application()
