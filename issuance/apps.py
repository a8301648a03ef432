from django.apps import AppConfig


class IssuanceConfig(AppConfig):
    name = "issuance"

    def ready(self) -> None:
        # What issuance caches per process (attached_profile, ACME accounts) is invalidated
        # through the configuration generation whenever any of these change
        # (certportal.generation); gates watch their own models (approvals' policies).
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from applications.models import Application
        from applications.tabs import Tab, register_tab
        from certportal import generation, permissions
        from issuance.acme.models import Account
        from profiles.models import CertificateAuthority, CertificateProfile

        for model in (CertificateProfile, CertificateAuthority, Account):
            post_save.connect(generation.on_model_change, sender=model, weak=False)
            post_delete.connect(generation.on_model_change, sender=model, weak=False)
        m2m_changed.connect(
            generation.on_model_change, sender=Application.profiles.through, weak=False
        )
        post_save.connect(generation.on_model_change, sender=Application, weak=False)
        post_delete.connect(generation.on_model_change, sender=Application, weak=False)
        register_tab(Tab("renewal", "Renewal", "issuance:renewal", permissions.MANAGE, order=61))
        _register_pages()


def _register_pages() -> None:
    """Certificates on the Application's Overview tab and in the Application list."""
    from applications.tabs import (
        ListColumn,
        OverviewSection,
        register_list_column,
        register_overview_section,
    )
    from issuance import overview

    register_overview_section(
        OverviewSection(
            key="certificates",
            template="issuance/overview_section.html",
            context=overview.section_context,
            order=10,
        )
    )
    register_list_column(ListColumn("active_count", "Active certificates", overview.active_count))
