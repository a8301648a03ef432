"""The Django admin site, with the portal's throttled login and password change.

INSTALLED_APPS names certportal.admin_apps.PortalAdminConfig instead of django.contrib.admin,
so ``admin.site`` (and every ``@admin.register``) is this site.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse

from certportal import auth


class PortalAdminSite(admin.AdminSite):
    login_form = auth.ThrottledAdminAuthenticationForm

    def password_change(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        request.current_app = self.name
        view = auth.PasswordChangeView.as_view(
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
            template_name=self.password_change_template or "registration/password_change_form.html",
        )
        response: TemplateResponse = view(request)  # type: ignore[assignment]
        return response


class ReadOnlyAdmin(admin.ModelAdmin):
    """A product admin's window onto rows the portal's services write: view only.

    Every change goes through a service verb (audited, with its outbox event), so the
    admin never adds, edits or deletes. Sealed columns are never listed in ``fields``.
    Lists skip the full COUNT(*) (inventories run to millions of rows).
    """

    show_full_result_count = False
    list_per_page = 50

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
