"""Every event type the portal records (certportal.events.record).

The values are stored in audit and outbox rows and matched by outbox consumers (alerts),
so a value never changes once released: add a member, never rename one.
"""

from django.db import models


class EventType(models.TextChoices):
    # Applications and their members
    APPLICATION_CREATED = "application.created", "Application created"
    APPLICATION_UPDATED = "application.updated", "Application updated"
    APPLICATION_RENEWAL_CONFIGURED = (
        "application.renewal_configured",
        "Application renewal settings changed",
    )
    MEMBER_ADDED = "member.added", "Member added"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Member role changed"
    MEMBER_REMOVED = "member.removed", "Member removed"
    SERVICE_ACCOUNT_CREATED = "service_account.created", "Service account created"
    SERVICE_ACCOUNT_DELETED = "service_account.deleted", "Service account deleted"
    API_TOKEN_CREATED = "api_token.created", "API token created"
    API_TOKEN_REVOKED = "api_token.revoked", "API token revoked"

    # CAs and profiles
    CA_CREATED = "ca.created", "CA created"
    CA_IMPORTED = "ca.imported", "CA imported"
    CA_CSR_CREATED = "ca.csr_created", "CA signing request created"
    CA_CERTIFICATE_INSTALLED = "ca.certificate_installed", "CA certificate installed"
    CA_STATUS_CHANGED = "ca.status_changed", "CA status changed"
    CA_OCSP_SIGNER_ISSUED = "ca.ocsp_signer_issued", "CA OCSP signer issued"
    PROFILE_CREATED = "profile.created", "Profile created"
    PROFILE_UPDATED = "profile.updated", "Profile updated"

    # Requests and approvals
    REQUEST_PENDING_APPROVAL = "request.pending_approval", "Request awaiting approval"
    REQUEST_APPROVAL_GIVEN = "request.approval_given", "Request approved (one step)"
    REQUEST_APPROVAL_REFUSED = "request.approval_refused", "Request refused (one step)"
    REQUEST_REJECTED = "request.rejected", "Request rejected"
    REQUEST_EXPIRED = "request.expired", "Request expired unanswered"
    REQUEST_FAILED = "request.failed", "Request failed"
    APPROVAL_POLICY_CREATED = "approval_policy.created", "Approval policy created"
    APPROVAL_POLICY_UPDATED = "approval_policy.updated", "Approval policy updated"
    APPROVAL_POLICY_DELETED = "approval_policy.deleted", "Approval policy deleted"
    APPROVAL_SETTINGS_UPDATED = "approval_settings.updated", "Approval settings updated"

    # Certificates
    CERTIFICATE_ISSUED = "certificate.issued", "Certificate issued"
    CERTIFICATE_IMPORTED = "certificate.imported", "Certificate imported"
    CERTIFICATE_REVOKED = "certificate.revoked", "Certificate revoked"
    CERTIFICATE_HOLD_RELEASED = "certificate.hold_released", "Certificate hold released"
    CERTIFICATE_KEY_DOWNLOADED = "certificate.key_downloaded", "Certificate key downloaded"
    CERTIFICATE_RENEWAL_CONFIGURED = (
        "certificate.renewal_configured",
        "Certificate renewal settings changed",
    )
    CERTIFICATE_RENEWAL_FAILED = "certificate.renewal_failed", "Certificate renewal failed"

    # ACME
    ACME_EAB_CREATED = "acme.eab_created", "ACME EAB credential created"
    ACME_EAB_REVOKED = "acme.eab_revoked", "ACME EAB credential revoked"
    ACME_ACCOUNT_CREATED = "acme.account_created", "ACME account created"
    ACME_ACCOUNT_DEACTIVATED = "acme.account_deactivated", "ACME account deactivated"
    ACME_ACCOUNT_KEY_CHANGED = "acme.account_key_changed", "ACME account key changed"
    ACME_AUTHORIZATION_DEACTIVATED = (
        "acme.authorization_deactivated",
        "ACME authorization deactivated",
    )
    ACME_ORDER_FINALIZED = "acme.order_finalized", "ACME order finalized"

    # EST
    EST_ENROLLMENT_SAVED = "est.enrollment_saved", "EST enrollment saved"
    EST_ENROLLMENT_DELETED = "est.enrollment_deleted", "EST enrollment deleted"
    EST_CREDENTIAL_CREATED = "est.credential_created", "EST credential created"
    EST_CREDENTIAL_REVOKED = "est.credential_revoked", "EST credential revoked"
    # SCEP
    SCEP_ENABLED = "scep.enabled", "SCEP enabled"
    SCEP_UPDATED = "scep.updated", "SCEP settings changed"
    SCEP_CHALLENGE_SET = "scep.challenge_set", "SCEP static challenge set"
    SCEP_CHALLENGE_MINTED = "scep.challenge_minted", "SCEP one-time challenge minted"
    SCEP_RA_ISSUED = "scep.ra_issued", "SCEP RA certificate issued"
    SCEP_RA_SWITCHED = "scep.ra_switched", "SCEP RA certificate switched"

    # Alerts
    ALERTS_CHANNEL_SAVED = "alerts.channel_saved", "Alert channel saved"
    ALERTS_CHANNEL_TEST_QUEUED = "alerts.channel_test_queued", "Alert channel test queued"
    ALERTS_RULE_SAVED = "alerts.rule_saved", "Alert rule saved"

    # Syncs
    SYNC_CONNECTION_SAVED = "sync.connection_saved", "Sync connection saved"
    SYNC_CONNECTION_TESTED = "sync.connection_tested", "Sync connection tested"
    SYNC_CONNECTION_DELETED = "sync.connection_deleted", "Sync connection deleted"
    SYNC_SAVED = "sync.saved", "Sync saved"
    SYNC_DELETED = "sync.deleted", "Sync deleted"
    SYNC_RUN_REQUESTED = "sync.run_requested", "Sync run requested"
    SYNC_ITEM_REPUSH_REQUESTED = "sync.item_repush_requested", "Sync re-push requested"
    SYNC_ITEM_REMOVE_REQUESTED = "sync.item_remove_requested", "Sync removal requested"
    SYNC_ITEM_PUSHED = "sync.item_pushed", "Certificate pushed to a sync destination"
    SYNC_ITEM_REMOVED = "sync.item_removed", "Certificate removed from a sync destination"
    SYNC_DRIFT_CHECKED = "sync.drift_checked", "Sync drift checked"
    SYNC_FAILED = "sync.failed", "Sync failed"
