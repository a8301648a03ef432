"""Read-only admin view of alert deliveries (certportal.adminsite.ReadOnlyAdmin)."""

from django.contrib import admin

from alerts.models import Delivery
from certportal.adminsite import ReadOnlyAdmin


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event", "application", "channel", "status", "attempts"]
    list_select_related = ["application", "channel"]
