"""What the pipeline's verbs take and give, shared by every submodule: the refusal
(IssuanceRejected), the asks (Ask, KeySpec), the answers (Submission,
AttachedProfile), and the event data a request or certificate records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from certportal.refusals import Refused
from issuance.choices import (
    RequestState,
)
from issuance.models import Certificate, CertificateRequest
from pki import csr as pki_csr
from profiles.models import CertificateAuthority

if TYPE_CHECKING:
    from profiles.models import CertificateProfile


class IssuanceRejected(Refused):
    """The pipeline refused a request. ``code`` is machine-readable; fronts map it to
    their protocol's error (ACME problem type, SCEP failInfo, EST status, DRF error)."""

    conflict_codes = frozenset({"invalid_state", "already_renewed", "already_revoked"})


@dataclass(frozen=True)
class KeySpec:
    """A request for a server-generated key: algorithm, names and subject."""

    algorithm: str
    common_name: str | None = None
    sans: Sequence[str] = ()
    subject_attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    """What submit() produced. private_key_pem is set only for a server-generated key,
    and only here: callers show it once."""

    request: CertificateRequest
    certificate: Certificate | None = None
    private_key_pem: str | None = None

    @property
    def pending(self) -> bool:
        return self.request.state == RequestState.PENDING_APPROVAL


@dataclass(frozen=True)
class AttachedProfile:
    """A profile as a front resolved it for one Application (``attached_profile``): what
    the pipeline would otherwise ask the database again."""

    profile: CertificateProfile
    ca: CertificateAuthority
    application_id: int  # the Application it is attached to
    has_policies: bool  # whether a gate (an approval policy) may hold its requests


@dataclass(frozen=True)
class Ask:
    """One certificate asked for: a CSR (raw, or as a front already parsed and verified
    it) or a key spec, and what the asker wants of it."""

    csr: bytes | str | pki_csr.ParsedCSR | None = None
    key_spec: KeySpec | None = None
    validity_days: int | None = None
    replaces: Certificate | None = None
    # With key_spec: sign this held key (PEM) instead of generating one (renewal "reuse").
    reuse_key_pem: bytes | None = None


def certificate_event_data(certificate: Certificate) -> dict[str, Any]:
    return {
        "serial_number": certificate.serial_number,
        "common_name": certificate.common_name,
        "sans": certificate.sans,
        "not_after": certificate.not_after.isoformat(),
        "profile_id": certificate.profile_id,
        "method": certificate.method,
    }


def _request_data(request: CertificateRequest) -> dict[str, Any]:
    return {
        "common_name": request.common_name,
        "sans": request.sans,
        "method": request.method,
        "profile_id": request.profile_id,
    }
