from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self) -> None:
        from applications.tabs import Tab, register_tab
        from approvals.services import ApprovalGate, request_step_approvers
        from certportal import permissions
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
        gates.register_deciders("approvals", request_step_approvers)
