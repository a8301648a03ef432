from django.db import models


class RequestState(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    ISSUED = "issued", "Issued"
    FAILED = "failed", "Failed"


# Which state may follow which; services refuse anything else.
REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    RequestState.SUBMITTED: frozenset(
        {RequestState.PENDING_APPROVAL, RequestState.ISSUED, RequestState.FAILED}
    ),
    # FAILED from PENDING_APPROVAL: a held renewal whose certificate was renewed another way.
    RequestState.PENDING_APPROVAL: frozenset(
        {RequestState.APPROVED, RequestState.REJECTED, RequestState.EXPIRED, RequestState.FAILED}
    ),
    RequestState.APPROVED: frozenset({RequestState.ISSUED, RequestState.FAILED}),
    RequestState.REJECTED: frozenset(),
    RequestState.EXPIRED: frozenset(),
    RequestState.ISSUED: frozenset(),
    RequestState.FAILED: frozenset(),
}


class CertificateStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"
    SUPERSEDED = "superseded", "Superseded"


class EnrollmentMethod(models.TextChoices):
    UI = "ui", "Web UI"
    API = "api", "REST API"
    ACME = "acme", "ACME"
    EST = "est", "EST"
    SCEP = "scep", "SCEP"
    RENEWAL = "renewal", "Automatic renewal"
    IMPORT = "import", "Import"


class KeyMode(models.TextChoices):
    """How a renewal gets its key: every front (form, API, sweep, settings) uses these."""

    NEW = "new", "New key (generated and held by the portal)"
    REUSE = "reuse", "Same key (held by the portal)"
    CSR = "csr", "My CSR"


# The modes the renewal sweep can use on its own: it has nobody to send it a CSR.
HELD_KEY_MODES = (KeyMode.NEW, KeyMode.REUSE)


class RevocationReason(models.TextChoices):
    """RFC 5280 section 5.3.1 reason codes, by their ASN.1 names."""

    UNSPECIFIED = "unspecified", "Unspecified"
    KEY_COMPROMISE = "keyCompromise", "Key compromise"
    CA_COMPROMISE = "cACompromise", "CA compromise"
    AFFILIATION_CHANGED = "affiliationChanged", "Affiliation changed"
    SUPERSEDED = "superseded", "Superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation", "Cessation of operation"
    CERTIFICATE_HOLD = "certificateHold", "Certificate hold"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn", "Privilege withdrawn"
    AA_COMPROMISE = "aACompromise", "AA compromise"
