from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from alerts.models import AlertRule, Channel
        from alerts.services import consume_events, wants_event
        from applications.tabs import Tab, register_tab
        from certportal import generation, outbox, permissions

        outbox.register("alerts", consume_events, wants=wants_event)
        # The outbox consumer keeps each Application's rules while the generation holds.
        for model in (AlertRule, Channel):
            post_save.connect(generation.on_model_change, sender=model, weak=False)
            post_delete.connect(generation.on_model_change, sender=model, weak=False)
        m2m_changed.connect(
            generation.on_model_change, sender=AlertRule.channels.through, weak=False
        )
        register_tab(Tab("alerting", "Alerting", "alerts:alerting", permissions.MANAGE, order=60))
