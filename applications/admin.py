"""Read-only admin view of the audit trail (certportal.adminsite.ReadOnlyAdmin)."""

from django.contrib import admin

from applications.models import AuditEvent
from certportal.adminsite import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "application", "actor_label", "object_repr"]
    list_select_related = ["application"]
