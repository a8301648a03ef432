from django.db import models


class CAKind(models.TextChoices):
    ROOT = "root", "Internal root"
    INTERMEDIATE = "intermediate", "Internal intermediate"
    IMPORTED = "imported", "Imported"
    EXTERNAL = "external", "Externally signed"


class CAStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"
    PENDING_CERTIFICATE = "pending_certificate", "Pending certificate"


class KeyAlgorithm(models.TextChoices):
    RSA_2048 = "RSA_2048", "RSA 2048"
    RSA_3072 = "RSA_3072", "RSA 3072"
    RSA_4096 = "RSA_4096", "RSA 4096"
    EC_P256 = "EC_P256", "ECDSA P-256"
    EC_P384 = "EC_P384", "ECDSA P-384"
    ED25519 = "ED25519", "Ed25519"


class Preset(models.TextChoices):
    TLS_SERVER = "tls_server", "TLS server"
    TLS_CLIENT = "tls_client", "TLS client"
    EMAIL = "email", "Email protection (S/MIME)"
    DEVICE = "device", "Device identity"
    CUSTOM = "custom", "Custom"
