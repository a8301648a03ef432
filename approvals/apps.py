from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from applications.tabs import Tab, register_tab
        from approvals.models import ApprovalPolicy
        from approvals.services import ApprovalGate
        from certportal import generation, permissions
        from issuance import gates

        register_tab(
            Tab(
                "approvals",
                "Approval policies",
                "approvals:policies",
                permission=permissions.MANAGE,
                order=60,
            )
        )
        gates.register("approvals", ApprovalGate())
        # attached_profile caches whether an Application has policies (its gate's
        # ``present``): a policy change moves the configuration generation.
        post_save.connect(generation.on_model_change, sender=ApprovalPolicy, weak=False)
        post_delete.connect(generation.on_model_change, sender=ApprovalPolicy, weak=False)
