"""Read-only admin view of the outbox (certportal.adminsite.ReadOnlyAdmin)."""

from django.contrib import admin

from certportal.adminsite import ReadOnlyAdmin
from certportal.models import OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event_type", "application", "object_type", "dispatched_at"]
    list_select_related = ["application"]
