from django.apps import AppConfig


class IssuanceConfig(AppConfig):
    name = "issuance"

    def ready(self) -> None:
        # Its per-process caches declare what invalidates them (certportal.generation):
        # importing the module connects their signals in every process, also in one that
        # changes a profile without ever reading one.
        from issuance import services  # noqa: F401
