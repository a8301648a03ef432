from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from alerts.services import consume_events, wants_event
        from applications.tabs import Tab, register_tab
        from certportal import outbox, permissions

        outbox.register("alerts", consume_events, wants=wants_event)
        register_tab(Tab("alerting", "Alerting", "alerts:alerting", permissions.MANAGE, order=60))
