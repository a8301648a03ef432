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
