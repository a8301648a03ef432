from django.apps import AppConfig


class AcmeConfig(AppConfig):
    name = "issuance.acme"
    label = "acme"
    verbose_name = "ACME enrollment"

    def ready(self) -> None:
        from applications.tabs import EnrollmentSection, register_enrollment_section
        from issuance.acme.ui import section_context

        register_enrollment_section(
            EnrollmentSection(
                key="acme",
                template="acme/enrollment_section.html",
                context=section_context,
                order=20,
            )
        )
