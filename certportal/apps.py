from django.apps import AppConfig


class CertportalConfig(AppConfig):
    name = "certportal"
    verbose_name = "certportal core"

    def ready(self) -> None:
        from django.core import checks
        from django.core.signals import request_finished, request_started

        from certportal import db, generation

        # A web request reads the configuration generation from Redis once.
        request_started.connect(generation.request_started, weak=False)
        request_finished.connect(generation.request_finished, weak=False)

        checks.register(db.check_versions)
