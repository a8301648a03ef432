from django.apps import AppConfig


class EstConfig(AppConfig):
    name = "issuance.est"
    label = "est"
    verbose_name = "EST enrollment"

    def ready(self) -> None:
        from applications.tabs import EnrollmentSection, register_enrollment_section
        from certportal import faults
        from issuance.est.ui import section_context
        from issuance.est.views import outage_answer

        faults.register_front("/.well-known/est/", outage_answer)

        register_enrollment_section(
            EnrollmentSection(
                key="est",
                template="est/enrollment_section.html",
                context=section_context,
                order=30,
            )
        )
