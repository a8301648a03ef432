"""Statuses of ACME objects (RFC 8555 section 7.1.6) and challenge types."""

from django.db import models


class AccountStatus(models.TextChoices):
    VALID = "valid", "Valid"
    DEACTIVATED = "deactivated", "Deactivated"
    REVOKED = "revoked", "Revoked"


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    PROCESSING = "processing", "Processing"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"


class AuthorizationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"
    DEACTIVATED = "deactivated", "Deactivated"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class ChallengeStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"


class ChallengeType(models.TextChoices):
    HTTP_01 = "http-01", "http-01"
    DNS_01 = "dns-01", "dns-01"
    TLS_ALPN_01 = "tls-alpn-01", "tls-alpn-01"


class IdentifierType(models.TextChoices):
    DNS = "dns", "DNS"
    IP = "ip", "IP"
