from django.apps import AppConfig


class ScepConfig(AppConfig):
    name = "issuance.scep"
    label = "scep"
    verbose_name = "SCEP enrollment"

    def ready(self) -> None:
        from applications.tabs import EnrollmentSection, register_enrollment_section
        from certportal import faults
        from issuance.scep.ui import section_context
        from issuance.scep.views import outage_response

        faults.register_front("/scep/", outage_response)
        _track_configuration()

        register_enrollment_section(
            EnrollmentSection(
                key="scep",
                template="scep/enrollment_section.html",
                context=section_context,
                order=40,
            )
        )


def _track_configuration() -> None:
    """Changes to an enrollment move the configuration generation, so cached endpoint
    lookups (issuance.scep.services.endpoint_enrollment) are dropped on commit."""
    from django.db.models.signals import post_delete, post_save

    from certportal import generation
    from issuance.scep.models import ScepEnrollment

    post_save.connect(generation.on_model_change, sender=ScepEnrollment, weak=False)
    post_delete.connect(generation.on_model_change, sender=ScepEnrollment, weak=False)
