"""EST verbs: configuring enrollments and credentials (the only writers of the EST
models) and enrolling through the one pipeline (``issuance.services.submit``)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from applications.models import Application
from certportal import generation
from certportal.event_types import EventType
from certportal.events import Actor, record
from certportal.refusals import MessageRefused
from issuance import services as issuance
from issuance.choices import CertificateStatus, EnrollmentMethod, RequestState
from issuance.est import clientcert
from issuance.est.models import EstCredential, EstEnrollment, EstHeldRequest
from issuance.models import Certificate, CertificateRequest
from pki import csr as pki_csr
from pki import export, names
from pki.errors import PKIError
from profiles.models import CertificateProfile

LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_TRUST_BUNDLE_CERTS = 50
MAX_BUNDLE_UPLOAD_BYTES = 256 * 1024
LABEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


class EstConfigError(MessageRefused):
    """A configuration change refused, with the field it concerns."""

    default_code = "invalid"


class EstRefused(Exception):
    """An EST request refused: the HTTP status and a plain-text reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- Configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class EnrollmentSpec:
    """What an Admin sets on an EST enrollment."""

    profile: CertificateProfile
    label: str = ""
    basic_auth: bool = True
    client_cert_auth: bool = False
    trust_bundle_pem: str = ""
    reenroll_allow_san_change: bool = False
    is_default: bool = False


def default_label(application: Application, profile: CertificateProfile) -> str:
    return f"{application.name}.{profile.slug}"


def validate_trust_bundle(pem: str) -> str:
    """The bundle as normalised PEM, or EstConfigError: every block a CA certificate."""
    if not pem.strip():
        return ""
    try:
        certificates = export.load_certificates(pem)
    except PKIError as exc:
        raise EstConfigError(exc.message, "trust_bundle_pem") from exc
    if len(certificates) > MAX_TRUST_BUNDLE_CERTS:
        raise EstConfigError(
            f"A trust bundle holds at most {MAX_TRUST_BUNDLE_CERTS} certificates.",
            "trust_bundle_pem",
        )
    for cert in certificates:
        if not _is_ca(cert):
            subject = cert.subject.rfc4514_string()
            raise EstConfigError(
                f"{subject} is not a CA certificate (basicConstraints CA:TRUE).",
                "trust_bundle_pem",
            )
    return export.pem_chain(certificates)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def save_enrollment(
    application: Application,
    spec: EnrollmentSpec,
    *,
    actor: Actor,
    enrollment: EstEnrollment | None = None,
) -> EstEnrollment:
    """Create or change an enrollment; the profile must be attached to the Application."""
    if not application.profiles.filter(pk=spec.profile.pk).exists():
        raise EstConfigError("The profile is not attached to this Application.", "profile")
    label = (spec.label or default_label(application, spec.profile)).strip().lower()
    if not LABEL.fullmatch(label):
        raise EstConfigError(
            "A label is letters, digits, dots, hyphens and underscores (at most 100), "
            "starting with a letter or digit.",
            "label",
        )
    bundle = validate_trust_bundle(spec.trust_bundle_pem)
    target = enrollment or EstEnrollment(application=application)
    target.profile = spec.profile
    target.label = label
    target.basic_auth = spec.basic_auth
    target.client_cert_auth = spec.client_cert_auth
    target.trust_bundle_pem = bundle
    target.reenroll_allow_san_change = spec.reenroll_allow_san_change
    target.is_default = spec.is_default
    try:
        with transaction.atomic():
            if spec.is_default:
                EstEnrollment.objects.filter(is_default=True).exclude(pk=target.pk).update(
                    is_default=False
                )
            target.save()
            _record(EventType.EST_ENROLLMENT_SAVED, actor, target, _describe(target))
    except IntegrityError as exc:
        raise EstConfigError(_conflict(application, spec.profile, label), "label") from exc
    generation.changed()
    return target


def _conflict(application: Application, profile: CertificateProfile, label: str) -> str:
    if EstEnrollment.objects.filter(application=application, profile=profile).exists():
        return f"EST is already enabled for profile {profile.slug}."
    return f"The label {label} is taken."


def _describe(enrollment: EstEnrollment) -> dict[str, Any]:
    return {
        "label": enrollment.label,
        "profile": enrollment.profile.slug,
        "basic_auth": enrollment.basic_auth,
        "client_cert_auth": enrollment.client_cert_auth,
        "trust_bundle_certificates": enrollment.trust_bundle_pem.count("-----BEGIN"),
        "reenroll_allow_san_change": enrollment.reenroll_allow_san_change,
        "is_default": enrollment.is_default,
    }


def delete_enrollment(enrollment: EstEnrollment, *, actor: Actor) -> None:
    with transaction.atomic():
        _record(EventType.EST_ENROLLMENT_DELETED, actor, enrollment, {"label": enrollment.label})
        enrollment.delete()
    generation.changed()


def create_credential(
    enrollment: EstEnrollment,
    *,
    username: str,
    actor: Actor,
    expires_at: datetime | None = None,
) -> tuple[EstCredential, str]:
    """A new Basic credential; returns the row and the password, which is never stored."""
    username = username.strip()
    if not username:
        raise EstConfigError("Give the credential a name.", "username")
    if expires_at is not None and expires_at <= timezone.now():
        raise EstConfigError("The expiry must be in the future.", "expires_at")
    password = secrets.token_urlsafe(24)
    user_id = actor.user_id
    try:
        with transaction.atomic():
            credential = EstCredential.objects.create(
                enrollment=enrollment,
                username=username,
                secret_hash=_hash(password),
                expires_at=expires_at,
                created_by=actor.describe(),
                created_by_user_id=user_id,
            )
            data = {"label": enrollment.label, "username": username}
            _record(EventType.EST_CREDENTIAL_CREATED, actor, credential, data, enrollment)
    except IntegrityError as exc:
        raise EstConfigError(f"The name {username} is taken.", "username") from exc
    return credential, password


def revoke_credential(credential: EstCredential, *, actor: Actor) -> bool:
    with transaction.atomic():
        revoked = EstCredential.objects.filter(pk=credential.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            generation.changed()  # every process drops its cached copy at commit
            enrollment = credential.enrollment
            data = {"label": enrollment.label, "username": credential.username}
            _record(EventType.EST_CREDENTIAL_REVOKED, actor, credential, data, enrollment)
    return bool(revoked)


def _record(
    action: EventType,
    actor: Actor,
    obj: Any,
    data: dict[str, Any],
    enrollment: EstEnrollment | None = None,
) -> None:
    application = (enrollment or obj).application
    record(action, actor=actor, obj=obj, application=application, data=data, outbox=False)


# --- Protocol ---------------------------------------------------------------------------


def find_enrollment(label: str | None) -> EstEnrollment | None:
    """The enrollment at a label, or the portal's default one (label None).

    It says how clients authenticate, so it is kept per process only with a shared
    generation (Redis), which every save and delete of an enrollment moves at its commit
    (certportal.generation). Each caller gets its own copy."""
    cached = _ENROLLMENTS.get(label or "", lambda: _enrollment_query(label))
    if cached is None:
        return None
    found = copy.copy(cached)
    found.application = copy.copy(cached.application)
    return found


def _enrollment_query(label: str | None) -> EstEnrollment | None:
    found = EstEnrollment.objects.select_related("application", "profile")
    if label is None:
        return found.filter(is_default=True).first()
    return found.filter(label=label).first()


_ENROLLMENTS: generation.Cache[EstEnrollment] = generation.Cache(
    depends_on=("est.EstEnrollment", "applications.Application", "profiles.CertificateProfile"),
    shared_only=True,
)
# Credentials too, for the same reason; expiry is checked on every request.
_CREDENTIALS: generation.Cache[EstCredential] = generation.Cache(
    depends_on=("est.EstCredential",), shared_only=True
)
# When this process last wrote each credential's last use (cached copies go stale).
_TOUCHED: dict[int, datetime] = {}


def profile_for(enrollment: EstEnrollment) -> issuance.AttachedProfile:
    """The enrollment's profile as the pipeline resolves it (attached, with its CA and
    whether approval policies may hold a request)."""
    found = issuance.attached_profile(enrollment.application, enrollment.profile.slug)
    if found is None or not found.profile.is_active or not found.ca.is_usable:
        raise EstRefused(404, "This EST enrollment is not available.")
    return found


def ca_chain(profile: CertificateProfile) -> list[x509.Certificate]:
    return profile.issuing_ca.chain()


def check_basic(enrollment: EstEnrollment, username: str, password: str) -> EstCredential | None:
    """The usable credential these Basic values name, or None (constant-time compare)."""
    credential = _CREDENTIALS.get(
        (enrollment.pk, username),
        lambda: EstCredential.objects.filter(enrollment=enrollment, username=username).first(),
    )
    expected = credential.secret_hash if credential else _hash("")
    if not hmac.compare_digest(expected, _hash(password)) or credential is None:
        return None
    if not credential.is_usable:
        return None
    _touch(credential)
    return credential


def _touch(credential: EstCredential) -> None:
    """Record the last use at most once a minute per credential (a conditional update:
    concurrent requests in the same minute write once between them)."""
    now = timezone.now()
    seen = (_TOUCHED.get(credential.pk), credential.last_used_at)
    last = max((t for t in seen if t is not None), default=None)
    if last is not None and now - last < LAST_USED_RESOLUTION:
        return
    stale = now - LAST_USED_RESOLUTION
    EstCredential.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=credential.pk
    ).update(last_used_at=now)
    if len(_TOUCHED) >= 10_000:
        _TOUCHED.clear()
    _TOUCHED[credential.pk] = now


def client_cert_trusted(
    enrollment: EstEnrollment, profile: CertificateProfile, cert: x509.Certificate
) -> bool:
    """simpleenroll: the client certificate chains to the uploaded bundle or the
    profile's CA."""
    anchors = ca_chain(profile)
    if enrollment.trust_bundle_pem:
        anchors += export.load_certificates(enrollment.trust_bundle_pem)
    return clientcert.chains_to(cert, anchors)


@dataclass(frozen=True)
class Outcome:
    """What an enroll call answers: a certificate (and the key for serverkeygen), or a
    request still waiting for approval."""

    certificate: Certificate | None = None
    private_key_pem: str | None = None

    @property
    def pending(self) -> bool:
        return self.certificate is None


def enroll(
    enrollment: EstEnrollment,
    found: issuance.AttachedProfile,
    parsed: pki_csr.ParsedCSR,
    digest: str,
    *,
    actor: Actor,
    server_keygen: bool = False,
    replaces: Certificate | None = None,
    credential: EstCredential | None = None,
) -> Outcome:
    """The CSR through the pipeline, or, for a CSR re-sent while held for approval, the
    decision on it. Rejections raise EstRefused and write nothing."""
    # Without approval policies nothing is held, so a re-sent CSR is a new request.
    may_hold = found.has_policies
    held = _held(enrollment, digest, server_keygen) if may_hold else None
    if held is not None:
        return _decided(held, actor)
    ask: dict[str, Any] = {"csr": parsed}
    if server_keygen:
        ask = {"key_spec": _key_spec(parsed)}
    try:
        if not may_hold:
            submission = _submit(enrollment, found, actor, ask, replaces)
            return Outcome(submission.certificate, submission.private_key_pem)
        with transaction.atomic():
            submission = _submit(enrollment, found, actor, ask, replaces)
            if submission.pending:
                EstHeldRequest.objects.create(
                    enrollment=enrollment,
                    csr_sha256=digest,
                    server_keygen=server_keygen,
                    request=submission.request,
                    credential=credential,
                )
    except issuance.IssuanceRejected as rejected:
        raise EstRefused(400, rejected.message) from rejected
    return Outcome(submission.certificate, submission.private_key_pem)


def _submit(
    enrollment: EstEnrollment,
    found: issuance.AttachedProfile,
    actor: Actor,
    ask: dict[str, Any],
    replaces: Certificate | None,
) -> issuance.Submission:
    return issuance.submit(
        application=enrollment.application,
        profile=found,
        method=EnrollmentMethod.EST,
        actor=actor,
        replaces=replaces,
        **ask,
    )


def _key_spec(parsed: pki_csr.ParsedCSR) -> issuance.KeySpec:
    """serverkeygen: the CSR says the names and the key type; the portal makes the key."""
    from issuance.est import messages

    attrs = names.name_attrs(parsed.subject)
    attrs.pop("CN", None)
    sans = [*parsed.dns_names, *map(str, parsed.ip_addresses), *parsed.emails, *parsed.uris]
    return issuance.KeySpec(
        algorithm=messages.algorithm_like(parsed),
        common_name=parsed.common_name,
        sans=sans,
        subject_attrs={key: values[0] for key, values in attrs.items() if values},
    )


def _held(enrollment: EstEnrollment, digest: str, server_keygen: bool) -> EstHeldRequest | None:
    return (
        EstHeldRequest.objects.filter(
            enrollment=enrollment, csr_sha256=digest, server_keygen=server_keygen
        )
        .select_related("request")
        .first()
    )


def _decided(held: EstHeldRequest, actor: Actor) -> Outcome:
    request: CertificateRequest = held.request
    if request.state in (RequestState.PENDING_APPROVAL, RequestState.APPROVED):
        return Outcome()
    if request.state == RequestState.ISSUED:
        certificate = Certificate.objects.get(request=request)
        if not held.server_keygen:
            return Outcome(certificate)
        try:
            key = issuance.export_private_key(certificate, actor=actor)  # audited
        except issuance.CertificateFileError as exc:
            raise EstRefused(403, str(exc)) from exc
        return Outcome(certificate, key.decode())
    reason = request.reason or f"The request was {request.get_state_display().lower()}."
    raise EstRefused(403, reason)


def reenrollment_target(
    enrollment: EstEnrollment,
    profile: CertificateProfile,
    cert: x509.Certificate,
    parsed: pki_csr.ParsedCSR,
) -> Certificate:
    """The Application's certificate the client authenticated with, once it may be
    re-enrolled with this CSR: active, from the profile's CA, same subject and (unless
    the enrollment allows changes) the same SANs."""
    from pki import certs

    old = Certificate.objects.filter(
        application=enrollment.application, fingerprint_sha256=certs.fingerprint_sha256(cert)
    ).first()
    if old is None or old.ca_id != profile.issuing_ca_id:
        raise EstRefused(403, "The client certificate is not one this enrollment may renew.")
    if old.status != CertificateStatus.ACTIVE:
        raise EstRefused(403, f"The client certificate is {old.status}; it cannot be renewed.")
    if parsed.subject != cert.subject:
        raise EstRefused(400, "The CSR's subject differs from the certificate being renewed.")
    if not enrollment.reenroll_allow_san_change and _sans(parsed) != _cert_sans(cert):
        raise EstRefused(400, "The CSR's subject alternative names differ from the certificate's.")
    return old


def _sans(parsed: pki_csr.ParsedCSR) -> set[str]:
    return {*parsed.dns_names, *map(str, parsed.ip_addresses), *parsed.emails, *parsed.uris}


def _cert_sans(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    dns = [name.lower() for name in san.get_values_for_type(x509.DNSName)]
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    others = san.get_values_for_type(x509.RFC822Name) + san.get_values_for_type(
        x509.UniformResourceIdentifier
    )
    return {*dns, *ips, *others}
