from django.db import models


class ConnectionKind(models.TextChoices):
    AWS = "aws", "AWS"
    AZURE = "azure", "Azure"
    CLOUDFLARE = "cloudflare", "Cloudflare"


class Destination(models.TextChoices):
    AWS_ACM = "aws-acm", "AWS Certificate Manager"
    AWS_SECRETS_MANAGER = "aws-secrets-manager", "AWS Secrets Manager"
    AZURE_KEY_VAULT = "azure-key-vault", "Azure Key Vault"
    CLOUDFLARE = "cloudflare", "Cloudflare custom certificate"


# The connection kind each destination needs.
DESTINATION_KIND: dict[str, str] = {
    Destination.AWS_ACM: ConnectionKind.AWS,
    Destination.AWS_SECRETS_MANAGER: ConnectionKind.AWS,
    Destination.AZURE_KEY_VAULT: ConnectionKind.AZURE,
    Destination.CLOUDFLARE: ConnectionKind.CLOUDFLARE,
}


class Selector(models.TextChoices):
    PROFILE = "profile", "Every certificate of a profile"
    LINEAGE = "lineage", "One certificate and its renewals"
    PATTERN = "pattern", "Names matching a pattern"


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SYNCING = "syncing", "Syncing"
    SYNCED = "synced", "Synced"
    FAILED = "failed", "Failed"
    REMOVED = "removed", "Removed"
    # Renewed: the destination object now holds the successor (its own item).
    SUPERSEDED = "superseded", "Superseded by its renewal"
    # The destination needs the private key and the portal does not hold it.
    NOT_SYNCABLE = "not_syncable", "Not syncable"


class Want(models.TextChoices):
    PRESENT = "present", "Present"
    ABSENT = "absent", "Absent"


class RunTrigger(models.TextChoices):
    EVENT = "event", "Certificate event"
    MANUAL = "manual", "Sync now"
    REPUSH = "repush", "Re-push one certificate"
    REMOVE = "remove", "Remove from destination"
    DRIFT = "drift", "Drift check"
    EXPIRY = "expiry", "Expiry sweep"
