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

        register_enrollment_section(
            EnrollmentSection(
                key="scep",
                template="scep/enrollment_section.html",
                context=section_context,
                order=40,
            )
        )
