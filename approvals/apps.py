from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self) -> None:
        from applications.tabs import Tab, register_tab
        from certportal import permissions

        register_tab(
            Tab(
                "approvals",
                "Approval policies",
                "approvals:policies",
                permission=permissions.MANAGE,
                order=60,
            )
        )
