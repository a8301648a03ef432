"""The one issuance pipeline. Every front (UI, API, ACME, EST, SCEP, renewal) calls
``submit``; nothing else signs a certificate.

submit: policy (the profile decides, with a precise reason) -> approval (may leave
the request pending) -> issue (sign, store with its pre-signed OCSP answer, audit +
outbox event in the same transaction). Fronts resolve the profile first with
``attached_profile``."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from applications.models import Application
from certportal import generation
from certportal.db.rows import insert_rows
from certportal.event_types import EventType
from certportal.events import Actor, Event, event_rows
from certportal.secrets import seal_for
from issuance import gates
from issuance.choices import (
    CertificateStatus,
    RequestState,
)
from issuance.models import Certificate, CertificateRequest
from issuance.ocsp import signing as ocsp_signing
from issuance.services._common import (
    Ask,
    AttachedProfile,
    IssuanceRejected,
    KeySpec,
    Submission,
    _request_data,
    certificate_event_data,
)
from issuance.services.candidates import (
    _blocked_keys,
    _Candidate,
    _candidate,
    _compromised_key,
)
from pki import certs, export, keys, policy
from pki import csr as pki_csr
from profiles.models import CertificateAuthority

if TYPE_CHECKING:
    from profiles.models import CertificateProfile


def submit(
    *,
    application: Application,
    profile: CertificateProfile | AttachedProfile,
    method: str,
    actor: Actor,
    csr: bytes | str | pki_csr.ParsedCSR | None = None,
    key_spec: KeySpec | None = None,
    validity_days: int | None = None,
    replaces: Certificate | None = None,
) -> Submission:
    """Check a CSR or key spec against the profile, then issue it or hold it for approval.

    ``profile`` is a profile, or better the context ``attached_profile`` resolved it in
    (it spares the pipeline the attachment and approval-policy lookups). Raises
    IssuanceRejected with the precise reason; a rejected ask writes nothing.
    """
    ask = Ask(csr=csr, key_spec=key_spec, validity_days=validity_days, replaces=replaces)
    [result] = submit_many(
        application=application, profile=profile, method=method, actor=actor, asks=[ask]
    )
    if isinstance(result, IssuanceRejected):
        raise result
    return result


def submit_many(
    *,
    application: Application,
    profile: CertificateProfile | AttachedProfile,
    method: str,
    actor: Actor,
    asks: Sequence[Ask],
) -> list[Submission | IssuanceRejected]:
    """The pipeline for one or many asks against one Application and profile.

    Each ask gets its own answer, in order: a Submission, or the IssuanceRejected that
    says why (a key reported compromised among them: one lookup for the whole batch).
    Everything accepted is stored in one transaction with one INSERT per table, which is
    what makes bulk issuance and renewal sweeps cheap.
    """
    ca = _usable_ca(application, profile)
    present = None
    if isinstance(profile, AttachedProfile):
        present, profile = profile.has_policies, profile.profile
    for gate in gates.registered():
        gate.begin(application, present)
    rules = profile.policy()
    answers: dict[int, Submission | IssuanceRejected] = {}
    decided: list[tuple[int, _Candidate]] = []
    for index, ask in enumerate(asks):
        try:
            decided.append((index, _candidate(ask, profile, rules, ca)))
        except IssuanceRejected as rejected:
            answers[index] = rejected
    accepted: list[tuple[int, _Candidate, CertificateRequest]] = []
    blocked = _blocked_keys(candidate for _, candidate in decided)
    for index, candidate in decided:
        if candidate.spki_sha256 in blocked:
            answers[index] = _compromised_key(candidate)
            continue
        request = _new_request(application, profile, method, actor, candidate)
        answers[index] = Submission(request=request)
        accepted.append((index, candidate, request))
    results = [answers[index] for index in range(len(asks))]
    if accepted:
        _store_and_issue(application, ca, actor, accepted, results)
    return results


def _store_and_issue(
    application: Application,
    ca: CertificateAuthority,
    actor: Actor,
    accepted: list[tuple[int, _Candidate, CertificateRequest]],
    results: list[Submission | IssuanceRejected],
) -> None:
    """Insert the requests, sign what needs no approval, record every event: all or nothing.

    The rows go in one statement (certportal.db.rows), atomic by itself; a transaction is
    opened only when more is written: an approval flow for a held request, or the
    superseding of renewed certificates. Inside a caller's transaction (ACME finalize,
    a renewal group) no savepoint either: the pipeline's writes stand or fall with the
    caller's.
    """
    renewals = any(candidate.ask.replaces is not None for _, candidate, _ in accepted)
    more = renewals or any(gate.may_hold(application) for gate in gates.registered())
    with transaction.atomic(savepoint=False) if more else contextlib.nullcontext():
        if renewals:
            accepted = _without_renewal_conflicts(accepted, results)
        events: list[Event] = []
        issued: list[tuple[int, CertificateRequest, Certificate, str | None]] = []
        for index, candidate, request in accepted:
            if _held(request, candidate.decision):
                request.state = RequestState.PENDING_APPROVAL
                request.expires_at = timezone.now() + timedelta(
                    days=settings.CERTPORTAL_APPROVAL_EXPIRY_DAYS
                )
                data = _request_data(request)
                events.append(
                    Event(EventType.REQUEST_PENDING_APPROVAL, actor, request, application, data)
                )
                continue
            request.state = RequestState.ISSUED
            certificate, key_pem = _sign(request, ca, candidate)
            issued.append((index, request, certificate, key_pem))
            data = certificate_event_data(certificate)
            events.append(
                Event(EventType.CERTIFICATE_ISSUED, actor, certificate, application, data)
            )
        rows = event_rows(events)
        certificates = [certificate for _, _, certificate, _ in issued]
        insert_rows(
            [request for _, _, request in accepted],
            certificates,
            ocsp_signing.presigned(ca, certificates),
            rows.audits,
            rows.outbox,
        )
        _supersede([c.replaces_id for _, _, c, _ in issued if c.replaces_id])
        rows.written()
    for index, request, certificate, key_pem in issued:
        results[index] = Submission(
            request=request, certificate=certificate, private_key_pem=key_pem
        )


def _held(request: CertificateRequest, decision: policy.Decision) -> bool:
    """Whether a registered gate holds the request (the first that does writes why)."""
    return any(gate.hold_if_required(request, decision) for gate in gates.registered())


def attached_profile(application: Application, slug: str) -> AttachedProfile | None:
    """The Application's profile with this slug, with its CA, or None if not attached.

    Fronts resolve profiles through here, once per request, and hand the answer to the
    pipeline: it says the profile is attached to this Application, so the pipeline need
    not ask again, and whether any gate (approval policy) may hold its requests, so the
    pipeline loads policies only when there are some.

    Answers come from a per-process cache kept while the configuration generation is
    unchanged (certportal.generation) and for at most CERTPORTAL_CONFIG_CACHE_SECONDS;
    each caller gets its own copies of the profile and CA.
    """
    cached = _PROFILES.get(
        (application.pk, slug), lambda: _attached_profile_query(application, slug)
    )
    if cached is None:
        return None
    profile = copy.copy(cached.profile)
    profile.issuing_ca = ca = copy.copy(cached.ca)
    return replace(cached, profile=profile, ca=ca)


_PROFILES: generation.Cache[AttachedProfile] = generation.Cache(
    depends_on=(
        "profiles.CertificateProfile",
        "profiles.CertificateAuthority",
        "approvals.ApprovalPolicy",
        "applications.Application",
        "applications.Application_profiles",
    )
)


def _attached_profile_query(application: Application, slug: str) -> AttachedProfile | None:
    present = {
        f"gate_{i}": gate.present(application.pk) for i, gate in enumerate(gates.registered())
    }
    profile = (
        application.profiles.filter(slug=slug)
        .select_related("issuing_ca")
        .defer("issuing_ca__crl_der")  # only the CRL endpoint reads it; it can be large
        .annotate(**present)
        .first()
    )
    if profile is None:
        return None
    return AttachedProfile(
        profile=profile,
        ca=profile.issuing_ca,
        application_id=application.pk,
        has_policies=any(getattr(profile, name) for name in present),
    )


def _usable_ca(
    application: Application, found: CertificateProfile | AttachedProfile
) -> CertificateAuthority:
    if isinstance(found, AttachedProfile):
        profile, ca, known = found.profile, found.ca, found.application_id == application.pk
    else:
        profile, ca, known = found, found.issuing_ca, False
    if not profile.is_active:
        raise IssuanceRejected(
            "profile_unavailable", f"Profile {profile.slug} is disabled.", "profile"
        )
    attached = known or (
        Application.profiles.through.objects.filter(
            application_id=application.pk, certificateprofile_id=profile.pk
        ).exists()
    )
    if not attached:
        raise IssuanceRejected(
            "profile_unavailable",
            f"Profile {profile.slug} is not attached to Application {application.name}.",
            "profile",
        )
    if not ca.is_usable:
        raise IssuanceRejected(
            "ca_unavailable", f"The issuing CA {ca.name} is not active.", "profile"
        )
    return ca


def _new_request(
    application: Application,
    profile: CertificateProfile,
    method: str,
    actor: Actor,
    candidate: _Candidate,
) -> CertificateRequest:
    req, ask = candidate.policy_request, candidate.ask
    sans = [*req.dns_names, *map(str, req.ip_addresses), *req.emails, *req.uris]
    return CertificateRequest(
        application=application,
        profile=profile,
        state=RequestState.SUBMITTED,
        method=method,
        requester_id=actor.user_id,
        requester_label=actor.describe(),
        csr_pem=candidate.csr_pem,
        key_algorithm=ask.key_spec.algorithm if ask.key_spec else "",
        common_name=req.common_name or "",
        sans=sans,
        subject_attrs={k: list(v) for k, v in req.subject_attrs.items()},
        validity_days=req.validity_days,
        replaces=ask.replaces,
        source_ip=actor.source_ip,
    )


def _sign(
    request: CertificateRequest, ca: CertificateAuthority, candidate: _Candidate
) -> tuple[Certificate, str | None]:
    """Generate the key if the portal holds it, sign, and build the (unsaved) row."""
    key_spec, reuse = candidate.ask.key_spec, candidate.ask.reuse_key_pem
    private_key = None
    if reuse is not None:
        private_key = keys.load_private_key(reuse)
    elif key_spec is not None:
        private_key = keys.generate_private_key(key_spec.algorithm)
    public_key = private_key.public_key() if private_key else candidate.public_key
    assert public_key is not None
    decision = candidate.decision
    cert = certs.build_leaf(ca.issuer(), public_key, decision)
    sans = [*decision.dns_names, *map(str, decision.ip_addresses), *decision.emails, *decision.uris]
    cn = decision.common_name or ""
    certificate = Certificate(
        application_id=request.application_id,
        profile_id=request.profile_id,
        ca=ca,
        request=request,
        serial_number=certs.serial_hex(cert.serial_number),
        common_name=cn,
        sans=sans,
        search_text=" ".join([cn.lower(), *(s.lower() for s in sans)]).strip(),
        subject=cert.subject.rfc4514_string(),
        issuer=ca.subject,
        fingerprint_sha256=certs.fingerprint_sha256(cert),
        not_before=decision.not_before,
        not_after=decision.not_after,
        key_algorithm=keys.describe_public_key(public_key).label(),
        certificate_pem=export.pem(cert),
        method=request.method,
        requester_id=request.requester_id,
        requester_label=request.requester_label,
        replaces_id=request.replaces_id,
    )
    key_pem = None
    if private_key is not None:
        key_pem = keys.private_key_to_pem(private_key).decode()
        certificate.private_key = seal_for(certificate, "private_key", key_pem.encode())
    return certificate, key_pem


def _without_renewal_conflicts(
    accepted: list[tuple[int, _Candidate, CertificateRequest]],
    results: list[Submission | IssuanceRejected],
) -> list[tuple[int, _Candidate, CertificateRequest]]:
    """The accepted asks whose replaced certificate may still be renewed; the others get
    their IssuanceRejected in ``results`` and write nothing."""
    old_ids = [c.ask.replaces.pk for _, c, _ in accepted if c.ask.replaces is not None]
    conflicts = renewal_conflicts(old_ids)
    kept = []
    for index, candidate, request in accepted:
        old = candidate.ask.replaces
        if old is not None and old.pk in conflicts:
            results[index] = conflicts[old.pk]
        else:
            kept.append((index, candidate, request))
    return kept


def renewal_conflicts(old_ids: Sequence[Any]) -> dict[Any, IssuanceRejected]:
    """Lock the certificates about to be renewed and say which no longer may be: renewed
    already (superseded, or a successor exists: ``already_renewed``) or revoked
    (``already_revoked``). Call inside a transaction.

    The row lock makes concurrent renewals of one certificate (a manual renewal, the
    sweep, an approval, an ACME order) take turns: the later one finds the earlier one's
    successor and is refused with the reason, instead of failing on the unique
    ``replaces`` link.
    """
    if not old_ids:
        return {}
    rows = list(
        Certificate.objects.select_for_update()
        .filter(pk__in=old_ids)
        .values_list("pk", "status", "serial_number")
    )
    successors = dict(
        Certificate.objects.filter(replaces_id__in=old_ids).values_list(
            "replaces_id", "serial_number"
        )
    )
    conflicts: dict[Any, IssuanceRejected] = {}
    for pk, status, serial in rows:
        if pk in successors or status == CertificateStatus.SUPERSEDED:
            by = f" by certificate {successors[pk]}" if pk in successors else ""
            message = f"Certificate {serial} has already been renewed{by}."
            conflicts[pk] = IssuanceRejected("already_renewed", message)
        elif status == CertificateStatus.REVOKED:
            message = f"Certificate {serial} is revoked; it cannot be renewed."
            conflicts[pk] = IssuanceRejected("already_revoked", message)
    return conflicts


def _supersede(old_ids: list[Any]) -> None:
    if old_ids:
        Certificate.objects.filter(pk__in=old_ids, status=CertificateStatus.ACTIVE).update(
            status=CertificateStatus.SUPERSEDED
        )
