from django.apps import AppConfig


class ApplicationsConfig(AppConfig):
    name = "applications"

    def ready(self) -> None:
        from applications.tabs import Tab, register_tab

        for tab in (
            Tab("overview", "Overview", "applications:overview", order=10),
            Tab("certificates", "Certificates", "issuance:certificates", order=20),
            Tab("members", "Members", "applications:members", order=30),
            Tab("enrollment", "Enrollment", "applications:enrollment", order=40),
            Tab("audit", "Audit log", "applications:audit", order=90),
        ):
            register_tab(tab)
