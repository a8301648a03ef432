from django.apps import AppConfig


class IssuanceConfig(AppConfig):
    name = "issuance"

    def ready(self) -> None:
        # Its per-process caches declare what invalidates them (certportal.generation):
        # importing the module connects their signals in every process, also in one that
        # changes a profile without ever reading one.
        from applications.tabs import Tab, register_tab
        from certportal import permissions
        from issuance import services  # noqa: F401

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
