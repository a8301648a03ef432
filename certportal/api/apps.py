from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "certportal.api"
    label = "api"
    verbose_name = "REST API credentials"

    def ready(self) -> None:
        # The token and grant caches declare what invalidates them (certportal.generation):
        # importing their modules connects those signals in every process.
        from certportal.api import scoping, services  # noqa: F401
