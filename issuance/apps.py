from django.apps import AppConfig


class IssuanceConfig(AppConfig):
    name = "issuance"

    def ready(self) -> None:
        # What issuance caches per process (attached_profile, ACME accounts) is invalidated
        # through the configuration generation whenever any of these change
        # (certportal.generation).
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from applications.models import Application
        from applications.tabs import Tab, register_tab
        from approvals.models import ApprovalPolicy
        from certportal import generation, permissions
        from issuance.acme.models import Account
        from profiles.models import CertificateAuthority, CertificateProfile

        for model in (CertificateProfile, CertificateAuthority, ApprovalPolicy, Account):
            post_save.connect(generation.on_model_change, sender=model, weak=False)
            post_delete.connect(generation.on_model_change, sender=model, weak=False)
        m2m_changed.connect(
            generation.on_model_change, sender=Application.profiles.through, weak=False
        )
        post_save.connect(generation.on_model_change, sender=Application, weak=False)
        post_delete.connect(generation.on_model_change, sender=Application, weak=False)
        register_tab(Tab("renewal", "Renewal", "issuance:renewal", permissions.MANAGE, order=61))
