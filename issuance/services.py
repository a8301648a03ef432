"""The one issuance pipeline, and revocation. Every front (UI, API, ACME, EST, SCEP,
renewal) calls ``submit``; nothing else signs a certificate.

submit: policy (the profile decides, with a precise reason) -> approval (may leave the
request pending) -> issue (sign, store, audit + outbox event in the same transaction).
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from applications.models import Application
from certportal import generation, queue
from certportal.db.rows import insert_rows
from certportal.event_types import EventType
from certportal.events import SYSTEM, Actor, Event, event_rows, record
from certportal.refusals import MessageRefused, Refused
from certportal.secrets import SecretError, seal_for
from issuance import gates, trust
from issuance.choices import (
    REQUEST_TRANSITIONS,
    CertificateStatus,
    EnrollmentMethod,
    KeyMode,
    RequestState,
    RevocationReason,
)
from issuance.models import BlockedKey, Certificate, CertificateRequest
from pki import certs, export, keys, names, policy
from pki import csr as pki_csr
from pki.errors import PKIError
from profiles.models import CertificateAuthority

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class _Candidate:
    """An ask parsed and decided by policy, ready to be stored and signed."""

    ask: Ask
    public_key: keys.PublicKey | None
    policy_request: policy.Request
    decision: policy.Decision
    csr_pem: str = ""

    @cached_property
    def spki_sha256(self) -> str | None:
        """The hash of a key the requester brought (CSR or reused key); a key the
        portal is about to generate is new, so it has none to check."""
        return keys.spki_sha256(self.public_key) if self.public_key is not None else None


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


def _blocked_keys(candidates: Iterable[_Candidate]) -> set[str]:
    """Which of the candidates' keys were reported compromised: one indexed query for
    the batch, none when every key is generated here."""
    hashes = {digest for c in candidates if (digest := c.spki_sha256)}
    if not hashes:
        return set()
    return set(BlockedKey.objects.filter(spki_sha256__in=hashes).values_list("pk", flat=True))


def _compromised_key(candidate: _Candidate) -> IssuanceRejected:
    return IssuanceRejected(
        "bad_key",
        "This key was reported compromised (a certificate with it was revoked for "
        "keyCompromise); generate a new key.",
        "csr" if candidate.ask.csr is not None else None,
    )


def _candidate(
    ask: Ask, profile: CertificateProfile, rules: policy.Policy, ca: CertificateAuthority
) -> _Candidate:
    if (ask.csr is None) == (ask.key_spec is None):
        raise IssuanceRejected("malformed", "Give either a CSR or a key specification.")
    if ask.csr is not None:
        public_key, request, csr_pem = _from_csr(ask.csr, ask.validity_days)
    else:
        assert ask.key_spec is not None
        public_key, csr_pem = None, ""
        request = _from_key_spec(ask.key_spec, profile, ask.validity_days)
        if ask.reuse_key_pem is not None:
            public_key = keys.load_private_key(ask.reuse_key_pem).public_key()
            request = replace(request, key_info=keys.describe_public_key(public_key))
    decision = _decide(rules, ca, request)
    return _Candidate(ask, public_key, request, decision, csr_pem)


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
        insert_rows(
            [request for _, _, request in accepted],
            [certificate for _, _, certificate, _ in issued],
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


def _from_csr(
    csr: bytes | str | pki_csr.ParsedCSR, validity_days: int | None
) -> tuple[keys.PublicKey, policy.Request, str]:
    if isinstance(csr, pki_csr.ParsedCSR):
        parsed = csr
    else:
        try:
            parsed = pki_csr.parse_csr(csr)
        except PKIError as exc:
            raise IssuanceRejected(exc.code, exc.message, "csr") from exc
    return parsed.public_key, policy.Request.from_csr(parsed, validity_days), parsed.pem


def split_sans(sans: Sequence[str]) -> dict[str, list[str]]:
    """Sort free-form SAN strings into DNS names, IPs, emails and URIs."""
    kinds: dict[str, list[str]] = {"dns": [], "ip": [], "email": [], "uri": []}
    for raw in sans:
        value = raw.strip()
        try:
            kinds["ip"].append(str(ipaddress.ip_address(value)))
            continue
        except ValueError:
            pass
        if "://" in value:
            kinds["uri"].append(value)
        elif "@" in value:
            kinds["email"].append(value)
        else:
            kinds["dns"].append(value.lower())
    return kinds


def _from_key_spec(
    spec: KeySpec, profile: CertificateProfile, validity_days: int | None
) -> policy.Request:
    if not profile.allow_server_keygen:
        raise IssuanceRejected(
            "bad_key",
            f"Profile {profile.slug} does not allow server-generated keys.",
            "key_algorithm",
        )
    try:
        key_info = keys.key_info_for(spec.algorithm)
    except ValueError as exc:
        raise IssuanceRejected("bad_key", str(exc), "key_algorithm") from exc
    kinds = split_sans(spec.sans)
    attrs = {k: [v] for k, v in spec.subject_attrs.items() if v}
    return policy.Request(
        key_info=key_info,
        common_name=spec.common_name or None,
        subject_attrs=attrs,
        dns_names=kinds["dns"],
        ip_addresses=kinds["ip"],
        emails=kinds["email"],
        uris=kinds["uri"],
        validity_days=validity_days,
    )


def _decide(
    rules: policy.Policy, ca: CertificateAuthority, request: policy.Request
) -> policy.Decision:
    assert ca.not_after is not None
    try:
        return policy.evaluate(rules, request, now=timezone.now(), ca_not_after=ca.not_after)
    except PKIError as exc:
        raise IssuanceRejected(exc.code, exc.message, exc.field) from exc


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


class RevocationError(MessageRefused):
    """A revocation refused (already revoked, unknown reason), or a hold release refused."""

    default_code = "revocation_refused"
    conflict_codes = frozenset({"already_revoked", "not_on_hold"})


def revoke(
    certificate: Certificate, *, reason: str, actor: Actor, revoked_at: datetime | None = None
) -> Certificate:
    """Revoke with an RFC 5280 reason; the CA's CRL is marked stale and rebuilt.

    A certificate on hold (certificateHold) may still be revoked for good with another
    reason; it keeps the date of its hold. keyCompromise also blocks the key in the same
    transaction, so no later request (renewal with the same key included) can use it.
    """
    if reason not in RevocationReason.values:
        allowed = ", ".join(RevocationReason.values)
        raise RevocationError(
            f"Unknown revocation reason {reason!r}; use one of {allowed}.",
            "reason",
            code="bad_reason",
        )
    when = revoked_at or timezone.now()
    revocable = ~Q(status=CertificateStatus.REVOKED)
    if reason != RevocationReason.CERTIFICATE_HOLD:
        revocable |= Q(revocation_reason=RevocationReason.CERTIFICATE_HOLD)
    with transaction.atomic():
        updated = Certificate.objects.filter(revocable, pk=certificate.pk).update(
            status=CertificateStatus.REVOKED,
            revoked_at=Coalesce("revoked_at", Value(when, output_field=DateTimeField())),
            revocation_reason=reason,
        )
        if updated != 1:
            raise RevocationError("This certificate is already revoked.", code="already_revoked")
        _mark_crl_stale(certificate)
        was_on_hold = certificate.revocation_reason == RevocationReason.CERTIFICATE_HOLD
        certificate.status = CertificateStatus.REVOKED
        certificate.revocation_reason = reason
        if was_on_hold:
            certificate.refresh_from_db(fields=["revoked_at"])
        else:
            certificate.revoked_at = when
        data = {**certificate_event_data(certificate), "reason": reason}
        if reason == RevocationReason.KEY_COMPROMISE:
            data["blocked_key_spki_sha256"] = _block_key(certificate, actor)
        record(
            EventType.CERTIFICATE_REVOKED,
            actor=actor,
            obj=certificate,
            application=certificate.application,
            data=data,
        )
    return certificate


def _block_key(certificate: Certificate, actor: Actor) -> str:
    """Put the certificate's key on the blocked list (once: a second report is a no-op)."""
    digest = keys.spki_sha256(certificate.as_x509())
    BlockedKey.objects.bulk_create(
        [
            BlockedKey(
                spki_sha256=digest,
                reason=RevocationReason.KEY_COMPROMISE,
                certificate_id=certificate.pk,
                reported_by=actor.describe(),
            )
        ],
        ignore_conflicts=True,
    )
    return digest


def release_hold(certificate: Certificate, *, actor: Actor) -> Certificate:
    """Take a certificate off hold (revoked with certificateHold): it is valid again.

    The next CRL no longer lists it: RFC 5280 5.3.1 allows removeFromCRL only in delta
    CRLs, and the portal publishes full CRLs, where a released certificate is simply
    absent. OCSP answers good from the next request. The CA's CRL is marked stale and
    rebuilt, as for a revocation.
    """
    with transaction.atomic():
        status = _status_off_hold(certificate)
        updated = Certificate.objects.filter(
            pk=certificate.pk,
            status=CertificateStatus.REVOKED,
            revocation_reason=RevocationReason.CERTIFICATE_HOLD,
        ).update(status=status, revoked_at=None, revocation_reason="")
        if updated != 1:
            raise RevocationError(
                "This certificate is not on hold: only a certificateHold can be released.",
                code="not_on_hold",
            )
        _mark_crl_stale(certificate)
        certificate.status, certificate.revoked_at, certificate.revocation_reason = status, None, ""
        record(
            EventType.CERTIFICATE_HOLD_RELEASED,
            actor=actor,
            obj=certificate,
            application=certificate.application,
            data={**certificate_event_data(certificate), "status": status},
        )
    return certificate


def _status_off_hold(certificate: Certificate) -> str:
    """What a released certificate is now: expired, replaced while held, or active."""
    if certificate.not_after <= timezone.now():
        return CertificateStatus.EXPIRED
    if Certificate.objects.filter(replaces_id=certificate.pk).exists():
        return CertificateStatus.SUPERSEDED
    return CertificateStatus.ACTIVE


def _mark_crl_stale(certificate: Certificate) -> None:
    """The certificate's entry on its CA's CRL changes: stale now, rebuilt after commit."""
    if certificate.ca_id:
        CertificateAuthority.objects.filter(pk=certificate.ca_id).update(crl_stale=True)
        ca_id = certificate.ca_id
        transaction.on_commit(lambda: _queue_crl_refresh(ca_id))


def _queue_crl_refresh(ca_id: int) -> None:
    """After commit: rebuild the CRL early. The revocation is committed and the CA marked
    stale, so a broker that is down only delays the rebuild (the next fetch or the
    schedule does it); it must not turn the committed revocation into an error."""
    try:
        queue.enqueue("issuance.tasks.refresh_crl", ca_id, task_name=f"crl-refresh-{ca_id}")
    except Exception:
        logger.warning("could not queue the CRL rebuild; the next fetch will", exc_info=True)


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


# --- Import and export -----------------------------------------------------------------


class CertificateFileError(MessageRefused):
    """An import or key export refused: unreadable input, key mismatch, duplicate, no key."""

    default_code = "invalid_file"
    # The key a download or renewal needs is not held, or its sealed copy does not open.
    conflict_codes = frozenset({"no_private_key", "key_unusable"})


def import_certificate(
    application: Application,
    *,
    actor: Actor,
    certificate_pem: bytes | str | None = None,
    private_key_pem: bytes | str | None = None,
    pkcs12: bytes | None = None,
    password: bytes | None = None,
) -> Certificate:
    """Bring an existing certificate (PEM bundle, optional key; or PKCS#12) into the
    inventory. The key must match; the issuer is shown as the certificate says.

    It is linked to a portal CA, whose CRL and OCSP answers then cover it, only when that
    CA's key signed it (``issuance.trust``); otherwise it is external: tracked, and its
    revocation marks the inventory only.
    """
    source = "pkcs12" if pkcs12 is not None else "certificate_pem"
    key, cert, chain = _read_import(certificate_pem, private_key_pem, pkcs12, password)
    info = _describe_import(cert, chain, source)
    # Unique per Application: another Application holding the same certificate is none
    # of this one's business, and this answer must not say whether one does.
    if Certificate.objects.filter(
        application=application, fingerprint_sha256=info.fingerprint_sha256
    ).exists():
        raise CertificateFileError(
            "This certificate is already in this Application's inventory.", source
        )
    try:
        ca = trust.ca_for_import(cert, info)
    except trust.SerialTaken as exc:
        raise CertificateFileError(
            f"Its CA already issued another certificate with serial {info.serial}; a CA "
            "never signs two certificates with one serial, so this one cannot be imported.",
            source,
        ) from exc
    certificate = _imported_row(application, actor, cert, info, ca, chain)
    if key is not None:
        certificate.private_key = seal_for(certificate, "private_key", keys.private_key_to_pem(key))
    try:
        with transaction.atomic():
            certificate.save(force_insert=True)
            record(
                EventType.CERTIFICATE_IMPORTED,
                actor=actor,
                obj=certificate,
                application=application,
                data={
                    **certificate_event_data(certificate),
                    "with_key": key is not None,
                    "linked_ca": ca.slug if ca is not None else None,
                },
            )
    except IntegrityError as exc:
        # A concurrent import of the same certificate, or of the CA's serial, won.
        raise CertificateFileError(
            "The same certificate was being imported at the same moment; try again.", source
        ) from exc
    return certificate


_IMPORT_FIELDS = {"pkcs12": "pkcs12", "password": "password", "private_key": "private_key_pem"}


def _read_import(
    certificate_pem: bytes | str | None,
    private_key_pem: bytes | str | None,
    pkcs12: bytes | None,
    password: bytes | None,
) -> tuple[keys.PrivateKey | None, x509.Certificate, list[x509.Certificate]]:
    """(key, certificate, chain) from the upload; CertificateFileError naming the input."""
    default_field = "pkcs12" if pkcs12 is not None else "certificate_pem"
    try:
        if pkcs12 is not None:
            key, cert, chain = export.load_pkcs12(pkcs12, password)
        else:
            cert, *chain = export.load_certificates(certificate_pem or b"")
            key = None
            if private_key_pem:
                raw = (
                    private_key_pem.encode()
                    if isinstance(private_key_pem, str)
                    else private_key_pem
                )
                key = keys.load_private_key(raw, password)
        if key is not None and not keys.keys_match(key, cert):
            raise CertificateFileError(
                "The private key does not match the certificate.",
                "pkcs12" if pkcs12 is not None else "private_key_pem",
            )
    except PKIError as exc:
        field = _IMPORT_FIELDS.get(exc.field or "", default_field)
        raise CertificateFileError(exc.message, field) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        # keys_match reads the certificate's public key, which may be of an unknown kind.
        raise CertificateFileError(
            "The certificate's public key could not be read.", default_field
        ) from exc
    return key, cert, chain


def _describe_import(
    cert: x509.Certificate, chain: list[x509.Certificate], source: str
) -> certs.CertInfo:
    """The certificate described, if it and its chain are well-formed (the detail page
    describes both) and it fits the inventory's columns."""
    try:
        info = certs.describe_certificate(cert)
        certs.check_serial(cert)
        for above in chain:
            certs.describe_certificate(above)
    except PKIError as exc:
        raise CertificateFileError(exc.message, source) from exc
    lengths = {
        "common_name": info.common_name or "",
        "subject": info.subject,
        "issuer": info.issuer,
        "key_algorithm": info.key_info.label(),
    }
    for name, value in lengths.items():
        limit = getattr(Certificate._meta.get_field(name), "max_length", None)
        if limit is not None and len(value) > limit:
            label = name.replace("_", " ")
            raise CertificateFileError(
                f"The certificate's {label} is longer than {limit} characters.", source
            )
    return info


def _imported_row(
    application: Application,
    actor: Actor,
    cert: x509.Certificate,
    info: certs.CertInfo,
    ca: CertificateAuthority | None,
    chain: list[x509.Certificate],
) -> Certificate:
    sans = [*info.dns_names, *info.ip_addresses, *info.emails, *info.uris]
    cn = info.common_name or ""
    return Certificate(
        application=application,
        ca=ca,
        serial_number=info.serial,
        common_name=cn,
        sans=sans,
        search_text=" ".join([cn.lower(), *(s.lower() for s in sans)]).strip(),
        subject=info.subject,
        issuer=info.issuer,
        fingerprint_sha256=info.fingerprint_sha256,
        not_before=info.not_before,
        not_after=info.not_after,
        key_algorithm=info.key_info.label(),
        certificate_pem=export.pem(cert),
        # A linked certificate's chain is its CA's; a supplied one is only a claim.
        chain_pem=export.pem_chain(chain) if chain and ca is None else "",
        status=CertificateStatus.EXPIRED
        if info.not_after <= timezone.now()
        else CertificateStatus.ACTIVE,
        method=EnrollmentMethod.IMPORT,
        requester_id=actor.user_id,
        requester_label=actor.describe(),
    )


def held_key_pem(certificate: Certificate) -> bytes:
    """The held key in plaintext, or a CertificateFileError when its sealed copy does not
    open for this certificate (moved from another row, or altered)."""
    try:
        return certificate.private_key_pem()
    except SecretError as exc:
        raise CertificateFileError(
            "The portal's copy of this certificate's key cannot be opened: it was sealed "
            "for another certificate or altered, so it is not used.",
            code="key_unusable",
        ) from exc


def export_pkcs12(certificate: Certificate, *, password: str, actor: Actor) -> bytes:
    """The certificate, its chain and its held key as PKCS#12; audited."""
    if not certificate.has_private_key:
        raise CertificateFileError(
            "The portal does not hold this certificate's key.", code="no_private_key"
        )
    if len(password) < 8:
        raise CertificateFileError("Choose a password of at least 8 characters.", "password")
    key = keys.load_private_key(held_key_pem(certificate))
    data = export.to_pkcs12(
        certificate.as_x509(),
        key,
        certificate.chain(),
        password.encode(),
        friendly_name=(certificate.common_name or certificate.serial_number).encode(),
    )
    record(
        EventType.CERTIFICATE_KEY_DOWNLOADED,
        actor=actor,
        obj=certificate,
        application=certificate.application,
        data={"format": "pkcs12"},
        outbox=False,
    )
    return data


def export_private_key(certificate: Certificate, *, actor: Actor) -> bytes:
    """The held key as PKCS#8 PEM; audited. Used once, right after server-side generation."""
    if not certificate.has_private_key:
        raise CertificateFileError(
            "The portal does not hold this certificate's key.", code="no_private_key"
        )
    pem = held_key_pem(certificate)
    record(
        EventType.CERTIFICATE_KEY_DOWNLOADED,
        actor=actor,
        obj=certificate,
        application=certificate.application,
        data={"format": "pem"},
        outbox=False,
    )
    return pem


def expire_certificates(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Mark active certificates past their notAfter as expired; returns how many.

    A conditional UPDATE per batch: two workers running this at once never double-count,
    because a row already expired no longer matches.
    """
    now = now or timezone.now()
    total = 0
    while True:
        ids = list(
            Certificate.objects.filter(
                status=CertificateStatus.ACTIVE, not_after__lte=now
            ).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return total
        with transaction.atomic():
            total += Certificate.objects.filter(pk__in=ids, status=CertificateStatus.ACTIVE).update(
                status=CertificateStatus.EXPIRED
            )
