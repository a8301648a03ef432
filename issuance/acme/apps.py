from django.apps import AppConfig


class AcmeConfig(AppConfig):
    name = "issuance.acme"
    label = "acme"
    verbose_name = "ACME enrollment"

    def ready(self) -> None:
        from applications.tabs import EnrollmentSection, register_enrollment_section
        from certportal import faults
        from issuance.acme.ui import section_context
        from issuance.acme.views import outage_problem

        faults.register_front("/acme/", outage_problem)

        register_enrollment_section(
            EnrollmentSection(
                key="acme",
                template="acme/enrollment_section.html",
                context=section_context,
                order=20,
            )
        )
