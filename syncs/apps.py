from django.apps import AppConfig


class SyncsConfig(AppConfig):
    name = "syncs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from applications.tabs import Tab, register_tab
        from certportal import generation, outbox, permissions
        from syncs.lifecycle import consume_events, wants_event
        from syncs.models import Sync

        outbox.register("syncs", consume_events, wants=wants_event)
        # wants_event caches whether an Application has active syncs.
        post_save.connect(generation.on_model_change, sender=Sync, weak=False)
        post_delete.connect(generation.on_model_change, sender=Sync, weak=False)
        register_tab(Tab("syncs", "Syncs", "syncs:list", permissions.VIEW, order=62))
