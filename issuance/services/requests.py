"""Requests after submit: the state machine's moves, decisions on pending requests
(approvals call these), their expiry, and manual renewal through the pipeline."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from certportal.event_types import EventType
from certportal.events import SYSTEM, Actor, record
from certportal.refusals import MessageRefused
from issuance.choices import (
    REQUEST_TRANSITIONS,
    CertificateStatus,
    EnrollmentMethod,
    KeyMode,
    RequestState,
)
from issuance.models import Certificate, CertificateRequest
from issuance.services._common import (
    Ask,
    IssuanceRejected,
    KeySpec,
    Submission,
    _request_data,
    certificate_event_data,
)
from issuance.services.candidates import _blocked_keys, _candidate, _compromised_key
from issuance.services.files import CertificateFileError, held_key_pem
from issuance.services.pipeline import (
    _sign,
    _supersede,
    _usable_ca,
    renewal_conflicts,
    submit,
    submit_many,
)
from pki import keys, names


def transition(request: CertificateRequest, new_state: str, *, reason: str = "") -> None:
    """Move a request along its state machine, refusing any move it does not allow."""
    if new_state not in REQUEST_TRANSITIONS[request.state]:
        raise IssuanceRejected(
            "invalid_state", f"A request that is {request.state} cannot become {new_state}."
        )
    updated = CertificateRequest.objects.filter(pk=request.pk, state=request.state).update(
        state=new_state, reason=reason, updated_at=timezone.now()
    )
    if updated != 1:
        raise IssuanceRejected("invalid_state", "The request changed while it was being decided.")
    request.state = new_state
    request.reason = reason


# --- Decisions on pending requests (approvals call these) -------------------------------


def issue_approved(request: CertificateRequest, *, actor: Actor) -> Submission:
    """Issue a request whose approval is complete. The profile's policy is checked again,
    as it stands now: a request that no longer passes fails with the reason."""
    with transaction.atomic():
        locked = CertificateRequest.objects.select_for_update().get(pk=request.pk)
        transition(locked, RequestState.APPROVED)
        profile = locked.profile
        try:
            _refuse_renewed(locked)
            ca = _usable_ca(locked.application, profile)
            candidate = _candidate(_ask_from_request(locked), profile, profile.policy(), ca)
            if _blocked_keys([candidate]):
                raise _compromised_key(candidate)
        except IssuanceRejected as rejected:
            transition(locked, RequestState.FAILED, reason=rejected.message)
            record(
                EventType.REQUEST_FAILED,
                actor=actor,
                obj=locked,
                application=locked.application,
                data={**_request_data(locked), "reason": rejected.message},
            )
            return Submission(request=locked)
        certificate, key_pem = _sign(locked, ca, candidate)
        certificate.save(force_insert=True)
        _supersede([certificate.replaces_id] if certificate.replaces_id else [])
        transition(locked, RequestState.ISSUED)
        record(
            EventType.CERTIFICATE_ISSUED,
            actor=actor,
            obj=certificate,
            application=locked.application,
            data=certificate_event_data(certificate),
        )
    return Submission(request=locked, certificate=certificate, private_key_pem=key_pem)


RENEWAL_CONFLICTS = frozenset({"already_renewed", "already_revoked"})


def _refuse_renewed(request: CertificateRequest) -> None:
    if request.replaces_id is not None:
        conflict = renewal_conflicts([request.replaces_id]).get(request.replaces_id)
        if conflict is not None:
            raise conflict


def close_renewed_elsewhere(
    request: CertificateRequest, *, actor: Actor
) -> IssuanceRejected | None:
    """A held renewal whose certificate was renewed another way (or revoked) while it
    waited can never be issued: end it as failed with the reason, audited, and return
    why; None when it may still be issued. The certificate stays locked until the
    caller's transaction ends, so no renewal slips in between this check and the issue."""
    try:
        _refuse_renewed(request)
    except IssuanceRejected as conflict:
        reason = f"{conflict.message} This renewal request is closed without issuing."
        closed = IssuanceRejected(conflict.code, reason)
    else:
        return None
    with transaction.atomic():
        locked = CertificateRequest.objects.select_for_update().get(pk=request.pk)
        transition(locked, RequestState.FAILED, reason=reason)
        record(
            EventType.REQUEST_FAILED,
            actor=actor,
            obj=locked,
            application=locked.application,
            data={**_request_data(locked), "reason": reason},
        )
    request.state, request.reason = locked.state, locked.reason
    return closed


def _ask_from_request(request: CertificateRequest) -> Ask:
    if request.csr_pem:
        return Ask(
            csr=request.csr_pem, validity_days=request.validity_days, replaces=request.replaces
        )
    attrs = {k: v[0] for k, v in request.subject_attrs.items() if v}
    spec = KeySpec(
        algorithm=request.key_algorithm,
        common_name=request.common_name or None,
        sans=request.sans,
        subject_attrs=attrs,
    )
    return Ask(key_spec=spec, validity_days=request.validity_days, replaces=request.replaces)


def reject_request(request: CertificateRequest, *, actor: Actor, reason: str = "") -> None:
    with transaction.atomic():
        locked = CertificateRequest.objects.select_for_update().get(pk=request.pk)
        transition(locked, RequestState.REJECTED, reason=reason)
        record(
            EventType.REQUEST_REJECTED,
            actor=actor,
            obj=locked,
            application=locked.application,
            data={**_request_data(locked), "reason": reason},
        )
    request.state, request.reason = locked.state, locked.reason


def expire_pending_requests(*, now: datetime | None = None) -> int:
    """Scheduled: end pending requests past their expiry. Returns how many expired."""
    now = now or timezone.now()
    expired = 0
    due = CertificateRequest.objects.filter(
        state=RequestState.PENDING_APPROVAL, expires_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due[:1000]):
        with transaction.atomic():
            request = (
                CertificateRequest.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, state=RequestState.PENDING_APPROVAL)
                .first()
            )
            if request is None:
                continue
            transition(request, RequestState.EXPIRED, reason="Approval was not given in time.")
            record(
                EventType.REQUEST_EXPIRED,
                actor=SYSTEM,
                obj=request,
                application=request.application,
                data=_request_data(request),
            )
            expired += 1
    return expired


# --- Renewal ---------------------------------------------------------------------------


class RenewalError(MessageRefused):
    """A renewal refused before it reached the pipeline (revoked, no key held, bad mode)."""

    default_code = "renewal_refused"


def renew(
    certificate: Certificate,
    *,
    actor: Actor,
    key_mode: str = KeyMode.NEW,
    csr: bytes | str | None = None,
    method: str | None = None,
) -> Submission:
    """Issue the successor of a certificate: same profile, subject and SANs, through the
    pipeline, linked by ``replaces``; the old one is superseded once the new one exists.

    key_mode "new" generates a fresh key of the same type (the portal holds it), "reuse"
    signs the key the portal already holds, "csr" takes the requester's CSR.
    """
    if key_mode not in KeyMode.values:
        raise RenewalError(
            f"Unknown key mode {key_mode!r}; use one of {', '.join(KeyMode.values)}."
        )
    if certificate.status == CertificateStatus.REVOKED:
        raise RenewalError("A revoked certificate cannot be renewed.")
    if certificate.profile is None:
        raise RenewalError("Imported certificates have no profile to renew them with.")
    if key_mode == KeyMode.CSR:
        if not csr:
            raise RenewalError("Key mode 'csr' needs a CSR.")
        return submit(
            application=certificate.application,
            profile=certificate.profile,
            method=method or certificate.method,
            actor=actor,
            csr=csr,
            replaces=certificate,
        )
    spec = _key_spec_like(certificate)
    reuse = None
    if key_mode == KeyMode.REUSE:
        if not certificate.has_private_key:
            raise RenewalError("The portal does not hold this certificate's key; renew with a CSR.")
        try:
            reuse = held_key_pem(certificate)
        except CertificateFileError as exc:
            raise RenewalError(str(exc)) from exc
    [result] = submit_many(
        application=certificate.application,
        profile=certificate.profile,
        method=method or EnrollmentMethod.RENEWAL,
        actor=actor,
        asks=[Ask(key_spec=spec, replaces=certificate, reuse_key_pem=reuse)],
    )
    if isinstance(result, IssuanceRejected):
        raise result
    return result


def _key_spec_like(certificate: Certificate) -> KeySpec:
    """Subject, SANs and key type of an existing certificate, as a key spec."""
    cert = certificate.as_x509()
    info = keys.describe_public_key(cert.public_key())
    algorithm = info.algorithm.value if info.algorithm else keys.KeyAlgorithm.EC_P256.value
    attrs = {k: v[0] for k, v in names.name_attrs(cert.subject).items() if k != "CN" and v}
    return KeySpec(
        algorithm=algorithm,
        common_name=certificate.common_name or None,
        sans=certificate.sans,
        subject_attrs=attrs,
    )
