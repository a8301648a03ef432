"""The one issuance pipeline, and revocation. Every front (UI, API, ACME, EST, SCEP,
renewal) calls ``submit``; nothing else signs a certificate.

submit: policy (the profile decides, with a precise reason) -> approval (may leave the
request pending) -> issue (sign, store, audit + outbox event in the same transaction).

- ``_common``: what the verbs take and give (``Ask``, ``KeySpec``, ``Submission``,
  ``AttachedProfile``, ``IssuanceRejected``) and the event data they record.
- ``candidates``: an ask parsed (CSR or key spec), decided by policy, its key checked
  against the blocked list.
- ``pipeline``: ``submit``, ``submit_many``, ``attached_profile`` and its cache, signing,
  the renewal lock (``renewal_conflicts``).
- ``requests``: the request state machine, decisions on pending requests (approvals
  call these), their expiry, manual renewal (``renew``).
- ``revocation``: ``revoke``, ``release_hold``, the CRL marked stale, certificate expiry.
- ``files``: import (PEM, key, PKCS#12) and key export (PKCS#12, PEM).

Callers import this package (``from issuance import services``); a test that patches a
function patches the submodule that looks it up.
"""

from issuance.services._common import (
    Ask,
    AttachedProfile,
    IssuanceRejected,
    KeySpec,
    Submission,
    certificate_event_data,
)
from issuance.services.candidates import split_sans
from issuance.services.files import (
    CertificateFileError,
    export_pkcs12,
    export_private_key,
    held_key_pem,
    import_certificate,
)
from issuance.services.pipeline import (
    attached_profile,
    renewal_conflicts,
    submit,
    submit_many,
)
from issuance.services.requests import (
    RENEWAL_CONFLICTS,
    RenewalError,
    close_renewed_elsewhere,
    expire_pending_requests,
    issue_approved,
    reject_request,
    renew,
    transition,
)
from issuance.services.revocation import (
    RevocationError,
    expire_certificates,
    release_hold,
    revoke,
)

__all__ = [
    "RENEWAL_CONFLICTS",
    "Ask",
    "AttachedProfile",
    "CertificateFileError",
    "IssuanceRejected",
    "KeySpec",
    "RenewalError",
    "RevocationError",
    "Submission",
    "attached_profile",
    "certificate_event_data",
    "close_renewed_elsewhere",
    "expire_certificates",
    "expire_pending_requests",
    "export_pkcs12",
    "export_private_key",
    "held_key_pem",
    "import_certificate",
    "issue_approved",
    "reject_request",
    "release_hold",
    "renew",
    "renewal_conflicts",
    "revoke",
    "split_sans",
    "submit",
    "submit_many",
    "transition",
]
