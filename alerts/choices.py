from django.db import models


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack incoming webhook"
    TEAMS = "teams", "Microsoft Teams webhook"
    PAGERDUTY = "pagerduty", "PagerDuty Events API v2"
    WEBHOOK = "webhook", "Generic webhook (signed JSON)"


class AlertEvent(models.TextChoices):
    EXPIRING = "expiring", "Certificate expiring"
    ISSUED = "issued", "Certificate issued"
    RENEWED = "renewed", "Certificate renewed"
    REVOKED = "revoked", "Certificate revoked"
    RENEWAL_FAILED = "renewal_failed", "Renewal failed"
    APPROVAL_REQUESTED = "approval_requested", "Approval requested"
    APPROVAL_DECIDED = "approval_decided", "Approval decided"
    SYNC_FAILED = "sync_failed", "Certificate sync failed"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"
