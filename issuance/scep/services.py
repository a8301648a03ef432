"""SCEP verbs: switch SCEP on for an attached profile, set its challenges, keep its RA
certificate current, and enroll: authenticate a device's request (challenge or renewal
signer) and hand its CSR to ``issuance.services.submit``. Nothing here signs a leaf."""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from applications.models import Application
from certportal import generation
from certportal.event_types import EventType
from certportal.events import SYSTEM, Actor, record
from certportal.refusals import MessageRefused
from certportal.secrets import seal_for, unseal_for
from issuance import services as issuance
from issuance.choices import CertificateStatus, EnrollmentMethod, RequestState
from issuance.models import Certificate, CertificateRequest
from issuance.scep.models import ScepChallenge, ScepEnrollment, ScepTransaction
from pki import certs, export, keys
from pki import csr as pki_csr
from pki import scep as wire
from pki.errors import PKIError
from pki.scep import FailInfo, ScepFailure
from profiles.models import CertificateProfile

RA_KEY_ALGORITHM = keys.KeyAlgorithm.RSA_2048
RA_VALIDITY = timedelta(days=365)
# A successor RA is issued (and announced by GetNextCACert) this long before the
# current one expires, and takes over this long before.
RA_ANNOUNCE_BEFORE = timedelta(days=30)
RA_SWITCH_BEFORE = timedelta(days=7)
STATIC_CHALLENGE_MIN_LENGTH = 16
CHALLENGE_TTL_DEFAULT = timedelta(minutes=60)
CHALLENGE_TTL_MAX = timedelta(hours=24)
# A request signed more than this far from our clock is refused (badTime).
MAX_CLOCK_SKEW = timedelta(hours=24)


class ScepConfigError(MessageRefused):
    """A configuration change the rules refuse; the message says why."""

    default_code = "invalid"


# --------------------------------------------------------------------------- configuration


def endpoint_enrollment(app: str, profile_slug: str) -> ScepEnrollment | None:
    """The enabled enrollment at /scep/<app>/<profile>, with its Application. Cached per
    process while the configuration generation holds (certportal.generation): a device
    makes three requests per enrollment, and each would otherwise look it up."""
    found = _ENDPOINTS.get((app, profile_slug), lambda: _endpoint_query(app, profile_slug))
    return copy.copy(found) if found is not None else None


def _endpoint_query(app: str, profile_slug: str) -> ScepEnrollment | None:
    rows = ScepEnrollment.objects.select_related("application").filter(
        application__name=app, profile__slug=profile_slug, enabled=True
    )[:1]  # unique by Application and profile: no ordering needed
    return next(iter(rows), None)


_ENDPOINTS: generation.Cache[ScepEnrollment] = generation.Cache(
    depends_on=("scep.ScepEnrollment", "applications.Application", "profiles.CertificateProfile")
)


def enrollments_for(application: Application) -> QuerySet[ScepEnrollment]:
    return application.scep_enrollments.select_related("profile").order_by("profile__name")


def enable(
    application: Application,
    profile: CertificateProfile,
    *,
    actor: Actor,
    allow_renewal: bool = True,
    allow_legacy: bool = False,
    max_outstanding_challenges: int = 100,
) -> ScepEnrollment:
    """Switch SCEP on for an attached profile, with a new RA certificate from its CA."""
    if not application.profiles.filter(pk=profile.pk).exists():
        raise ScepConfigError(f"Profile {profile.slug} is not attached to {application.name}.")
    if ScepEnrollment.objects.filter(application=application, profile=profile).exists():
        raise ScepConfigError(f"SCEP is already configured for profile {profile.slug}.")
    ca = profile.issuing_ca
    if not ca.is_usable:
        raise ScepConfigError(f"The issuing CA {ca.name} is not active.")
    with transaction.atomic():
        enrollment = ScepEnrollment.objects.create(
            application=application,
            profile=profile,
            allow_renewal=allow_renewal,
            allow_legacy=allow_legacy,
            max_outstanding_challenges=max_outstanding_challenges,
            ra_certificate_pem="",
            ra_private_key="",
        )
        cert, sealed = _new_ra(enrollment, "ra_private_key", timezone.now())
        ScepEnrollment.objects.filter(pk=enrollment.pk).update(
            ra_certificate_pem=cert, ra_private_key=sealed
        )
        generation.changed()
        enrollment.ra_certificate_pem, enrollment.ra_private_key = cert, sealed
        record(
            EventType.SCEP_ENABLED,
            actor=actor,
            obj=enrollment,
            application=application,
            data={**settings_of(enrollment), "profile": profile.slug},
        )
    return enrollment


def settings_of(enrollment: ScepEnrollment) -> dict[str, Any]:
    """The toggles an Admin changes (audited with every change)."""
    return {
        "enabled": enrollment.enabled,
        "allow_renewal": enrollment.allow_renewal,
        "allow_legacy": enrollment.allow_legacy,
        "max_outstanding_challenges": enrollment.max_outstanding_challenges,
    }


def update(enrollment: ScepEnrollment, *, actor: Actor, **changes: Any) -> ScepEnrollment:
    """Change the toggles (enabled, allow_renewal, allow_legacy, max_outstanding_challenges)."""
    allowed = set(settings_of(enrollment))
    unknown = set(changes) - allowed
    if unknown:
        raise ScepConfigError(f"Unknown SCEP settings: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        for name, value in changes.items():
            setattr(enrollment, name, value)
        enrollment.save(update_fields=[*changes, "updated_at"])
        record(
            EventType.SCEP_UPDATED,
            actor=actor,
            obj=enrollment,
            application=enrollment.application,
            data={**settings_of(enrollment), "profile": enrollment.profile.slug},
        )
    return enrollment


def set_static_challenge(
    enrollment: ScepEnrollment, *, actor: Actor, challenge: str | None = None
) -> str:
    """Set (or rotate) the static challenge; a new random one when none is given. Only
    its hash is kept; the plaintext is returned to be shown once. An empty string
    removes it."""
    if challenge is None:
        challenge = secrets.token_urlsafe(24)
    elif challenge and len(challenge) < STATIC_CHALLENGE_MIN_LENGTH:
        raise ScepConfigError(
            f"A static challenge has at least {STATIC_CHALLENGE_MIN_LENGTH} characters."
        )
    enrollment.challenge_hash = make_password(challenge) if challenge else ""
    enrollment.challenge_set_at = timezone.now() if challenge else None
    with transaction.atomic():
        enrollment.save(update_fields=["challenge_hash", "challenge_set_at", "updated_at"])
        record(
            EventType.SCEP_CHALLENGE_SET,
            actor=actor,
            obj=enrollment,
            application=enrollment.application,
            data={"profile": enrollment.profile.slug, "removed": not challenge},
        )
    return challenge


def mint_challenge(
    enrollment: ScepEnrollment,
    *,
    actor: Actor,
    expected_cn: str = "",
    ttl: timedelta = CHALLENGE_TTL_DEFAULT,
) -> tuple[ScepChallenge, str]:
    """A single-use challenge for one device, valid for ``ttl`` (at most a day). Refused
    once the enrollment has its cap of unused, unexpired challenges."""
    if not timedelta(minutes=1) <= ttl <= CHALLENGE_TTL_MAX:
        raise ScepConfigError("A one-time challenge lives between 1 minute and 24 hours.")
    now = timezone.now()
    plaintext = secrets.token_urlsafe(24)
    with transaction.atomic():
        # The row lock makes concurrent mints count one after the other.
        ScepEnrollment.objects.select_for_update().filter(pk=enrollment.pk).first()
        outstanding = enrollment.challenges.filter(used_at=None, expires_at__gt=now).count()
        if outstanding >= enrollment.max_outstanding_challenges:
            raise ScepConfigError(
                f"{outstanding} one-time challenges are outstanding, the most this "
                "enrollment allows; use or let some expire first."
            )
        challenge = ScepChallenge.objects.create(
            enrollment=enrollment,
            digest=_digest(plaintext),
            expected_cn=expected_cn,
            expires_at=now + ttl,
            created_by=actor.describe(),
        )
        record(
            EventType.SCEP_CHALLENGE_MINTED,
            actor=actor,
            obj=challenge,
            application=enrollment.application,
            data={
                "profile": enrollment.profile.slug,
                "expected_cn": expected_cn,
                "expires_at": challenge.expires_at.isoformat(),
            },
            outbox=False,
        )
    return challenge, plaintext


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- RA certificates


def _new_ra(enrollment: ScepEnrollment, key_field: str, now: datetime) -> tuple[str, str]:
    """A new RA certificate (PEM) and its key sealed for ``key_field`` of the row."""
    ca = enrollment.profile.issuing_ca
    key = keys.generate_private_key(RA_KEY_ALGORITHM)
    assert isinstance(key, rsa.RSAPrivateKey)
    name = f"{enrollment.application.name} {enrollment.profile.slug} SCEP RA"
    cert = wire.build_ra_certificate(
        ca.issuer(),
        key.public_key(),
        common_name=name,
        not_before=now - timedelta(minutes=5),
        not_after=now + RA_VALIDITY,
    )
    sealed = seal_for(enrollment, key_field, keys.private_key_to_pem(key))
    record(
        EventType.SCEP_RA_ISSUED,
        actor=SYSTEM,
        obj=enrollment,
        application=enrollment.application,
        data={"serial": certs.serial_hex(cert.serial_number), "profile": enrollment.profile.slug},
        outbox=False,
    )
    return export.pem(cert), sealed


@dataclass(frozen=True)
class RA:
    """An RA certificate with its key, ready to sign and decrypt."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


_RA_CACHE: dict[tuple[int, str, str], RA] = {}
_RA_LOCK = threading.Lock()


def _ra(enrollment: ScepEnrollment, pem_field: str, key_field: str) -> RA | None:
    """The RA of these columns, cached per process: unsealing costs more than using it."""
    pem, sealed = getattr(enrollment, pem_field), getattr(enrollment, key_field)
    if not pem:
        return None
    cache_key = (enrollment.pk, pem, sealed)
    with _RA_LOCK:
        found = _RA_CACHE.get(cache_key)
    if found is None:
        key = keys.load_private_key(unseal_for(enrollment, key_field))
        assert isinstance(key, rsa.RSAPrivateKey)
        found = RA(x509.load_pem_x509_certificate(pem.encode()), key)
        with _RA_LOCK:
            if len(_RA_CACHE) > 256:
                _RA_CACHE.clear()
            _RA_CACHE[cache_key] = found
    return found


def current_ra(enrollment: ScepEnrollment) -> RA:
    found = _ra(enrollment, "ra_certificate_pem", "ra_private_key")
    assert found is not None
    return found


def next_ra(enrollment: ScepEnrollment) -> RA | None:
    return _ra(enrollment, "next_ra_certificate_pem", "next_ra_private_key")


def roll_ra(enrollment_id: int, *, now: datetime | None = None) -> str:
    """Announce a successor RA when the current one nears expiry, and switch to it when
    the current one nearly has. Returns what it did: "announced", "switched" or ""."""
    now = now or timezone.now()
    with transaction.atomic():
        enrollment = (
            ScepEnrollment.objects.select_for_update()
            .select_related("application", "profile__issuing_ca")
            .filter(pk=enrollment_id)
            .first()
        )
        if enrollment is None or not enrollment.profile.issuing_ca.is_usable:
            return ""
        expires = current_ra(enrollment).certificate.not_valid_after_utc
        if enrollment.next_ra_certificate_pem and expires - RA_SWITCH_BEFORE <= now:
            _switch(enrollment)
            return "switched"
        if not enrollment.next_ra_certificate_pem and expires - RA_ANNOUNCE_BEFORE <= now:
            cert, sealed = _new_ra(enrollment, "next_ra_private_key", now)
            ScepEnrollment.objects.filter(pk=enrollment.pk).update(
                next_ra_certificate_pem=cert, next_ra_private_key=sealed
            )
            generation.changed()
            return "announced"
    return ""


def _switch(enrollment: ScepEnrollment) -> None:
    successor = next_ra(enrollment)
    assert successor is not None
    # The key was sealed for the next_ra_private_key column: re-seal it for its new one.
    sealed = seal_for(enrollment, "ra_private_key", keys.private_key_to_pem(successor.key))
    ScepEnrollment.objects.filter(pk=enrollment.pk).update(
        ra_certificate_pem=enrollment.next_ra_certificate_pem,
        ra_private_key=sealed,
        next_ra_certificate_pem="",
        next_ra_private_key="",
    )
    generation.changed()
    record(
        EventType.SCEP_RA_SWITCHED,
        actor=SYSTEM,
        obj=enrollment,
        application=enrollment.application,
        data={"serial": certs.serial_hex(successor.certificate.serial_number)},
        outbox=False,
    )


def roll_all_ras(*, now: datetime | None = None) -> int:
    """The scheduled sweep: roll every enrollment whose RA needs it."""
    done = 0
    for pk in ScepEnrollment.objects.values_list("pk", flat=True):
        done += bool(roll_ra(pk, now=now))
    return done


# --------------------------------------------------------------------------- enrollment


@dataclass(frozen=True)
class Outcome:
    """What a PKIOperation answers: SUCCESS with certificates or a CRL, PENDING, or a
    FAILURE (raised as ScepFailure instead)."""

    status: wire.PKIStatus
    certificates: tuple[x509.Certificate, ...] = ()
    crls: tuple[bytes, ...] = ()


PENDING = Outcome(wire.PKIStatus.PENDING)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def enroll(
    enrollment: ScepEnrollment,
    found: issuance.AttachedProfile,
    message: wire.PKIMessage,
    csr_der: bytes,
    *,
    source_ip: str | None,
) -> Outcome:
    """PKCSReq / RenewalReq: the same transaction again gets the same answer; a new one
    is authenticated (renewal signer, else a challenge) and submitted. A refusal writes
    nothing (the challenge stays unused)."""
    signer_sha = _sha256(message.signer.public_bytes(Encoding.DER))
    csr_sha = _sha256(csr_der)
    known = _transaction(enrollment, message.transaction_id, signer_sha)
    if known is not None:
        return _replayed(known, csr_sha)
    try:
        parsed = pki_csr.parse_csr(csr_der)
    except PKIError as exc:
        raise ScepFailure(FailInfo.BAD_REQUEST, exc.message) from None
    renewing = _renewal_of(enrollment, found.profile, message, parsed)
    try:
        with transaction.atomic():
            if renewing is None:
                label = _check_challenge(enrollment, parsed)
            else:
                label = f"SCEP renewal of {renewing.serial_number}"
            submission = issuance.submit(
                application=enrollment.application,
                profile=found,
                method=EnrollmentMethod.SCEP,
                actor=Actor(label=label, source_ip=source_ip),
                csr=parsed,
                replaces=renewing,
            )
            ScepTransaction.objects.create(
                enrollment=enrollment,
                transaction_id=message.transaction_id,
                signer_sha256=signer_sha,
                csr_sha256=csr_sha,
                request=submission.request,
            )
    except issuance.IssuanceRejected as rejected:
        raise ScepFailure(FailInfo.BAD_REQUEST, rejected.message) from None
    except IntegrityError:
        # The same transaction raced in on another connection: answer as a retry.
        known = _transaction(enrollment, message.transaction_id, signer_sha)
        if known is None:
            raise
        return _replayed(known, csr_sha)
    if submission.certificate is None:
        return PENDING
    return _success(submission.certificate)


def _transaction(
    enrollment: ScepEnrollment, transaction_id: str, signer_sha: str
) -> ScepTransaction | None:
    # Unique by these three: no ordering (first() would add one) and no joins.
    found = ScepTransaction.objects.filter(
        enrollment=enrollment, transaction_id=transaction_id, signer_sha256=signer_sha
    )[:1]
    return next(iter(found), None)


def _replayed(known: ScepTransaction, csr_sha: str) -> Outcome:
    if known.csr_sha256 != csr_sha:
        raise ScepFailure(
            FailInfo.BAD_REQUEST, "This transactionID was already used with another CSR."
        )
    return outcome_of(known.request)


def outcome_of(request: CertificateRequest) -> Outcome:
    """The answer a request's state gives (retry and CertPoll)."""
    if request.state == RequestState.ISSUED:
        return _success(request.certificate)
    if request.state in (RequestState.REJECTED, RequestState.EXPIRED, RequestState.FAILED):
        reason = request.reason or f"The request was {request.get_state_display().lower()}."
        raise ScepFailure(FailInfo.BAD_REQUEST, reason)
    return PENDING


def _success(certificate: Certificate) -> Outcome:
    return Outcome(
        wire.PKIStatus.SUCCESS,
        (x509.load_pem_x509_certificate(certificate.certificate_pem.encode()),),
    )


def _check_challenge(enrollment: ScepEnrollment, parsed: pki_csr.ParsedCSR) -> str:
    """Accept the CSR's challengePassword (static, or an unused one-time challenge,
    consumed here); returns the actor label. Call inside the enrollment's transaction."""
    challenge = _challenge_password(parsed.csr)
    if not challenge:
        raise ScepFailure(FailInfo.BAD_REQUEST, "The CSR carries no challengePassword.")
    if enrollment.challenge_hash and _static_matches(enrollment, challenge):
        return "SCEP (static challenge)"
    one_time = (
        ScepChallenge.objects.select_for_update()
        .filter(enrollment=enrollment, digest=_digest(challenge))
        .first()
    )
    if one_time is None or one_time.used_at is not None:
        raise ScepFailure(FailInfo.BAD_REQUEST, "The challenge password is not valid here.")
    now = timezone.now()
    if one_time.expires_at <= now:
        raise ScepFailure(FailInfo.BAD_REQUEST, "The one-time challenge has expired.")
    if one_time.expected_cn and one_time.expected_cn != parsed.common_name:
        raise ScepFailure(
            FailInfo.BAD_REQUEST, "The CSR's common name is not the one this challenge is for."
        )
    # Conditional: of two requests presenting it at once, exactly one consumes it.
    if not ScepChallenge.objects.filter(pk=one_time.pk, used_at=None).update(used_at=now):
        raise ScepFailure(FailInfo.BAD_REQUEST, "The challenge password is not valid here.")
    return f"SCEP (one-time challenge {one_time.pk})"


def _challenge_password(csr: x509.CertificateSigningRequest) -> str:
    try:
        value = csr.attributes.get_attribute_for_oid(x509.oid.AttributeOID.CHALLENGE_PASSWORD).value
    except (x509.AttributeNotFound, ValueError):
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# The last static challenge that verified, per enrollment and stored hash: a correct
# challenge costs one SHA-256 compare afterwards; a wrong one still pays the slow hash.
_VERIFIED: dict[tuple[int, str], str] = {}


def _static_matches(enrollment: ScepEnrollment, challenge: str) -> bool:
    cache_key = (enrollment.pk, enrollment.challenge_hash)
    digest = _digest(challenge)
    known = _VERIFIED.get(cache_key)
    if known is not None and secrets.compare_digest(known, digest):
        return True
    if not check_password(challenge, enrollment.challenge_hash):
        return False
    if len(_VERIFIED) > 256:
        _VERIFIED.clear()
    _VERIFIED[cache_key] = digest
    return True


def _renewal_of(
    enrollment: ScepEnrollment,
    profile: CertificateProfile,
    message: wire.PKIMessage,
    parsed: pki_csr.ParsedCSR,
) -> Certificate | None:
    """The certificate a request renews: its signer, when renewal is on and the signer is
    a certificate this Application holds from the profile's CA. A self-signed signer
    means a first enrollment (None); RenewalReq without a usable signer is refused."""
    signer = message.signer
    renewal = message.message_type == wire.MessageType.RENEWAL_REQ
    if signer.issuer == signer.subject and not renewal:
        return None
    if not enrollment.allow_renewal:
        if renewal:
            raise ScepFailure(FailInfo.BAD_REQUEST, "Renewal is switched off for this enrollment.")
        return None
    found = _issued_certificate(enrollment, profile, signer)
    if found is None:
        if renewal:
            raise ScepFailure(
                FailInfo.BAD_CERT_ID,
                "The signer certificate was not issued through this enrollment.",
            )
        return None  # a PKCSReq signed by someone else's certificate: needs a challenge
    if found.status != CertificateStatus.ACTIVE or found.not_after <= timezone.now():
        raise ScepFailure(
            FailInfo.BAD_CERT_ID, "The signer certificate is revoked or no longer valid."
        )
    if (parsed.common_name or "") != found.common_name:
        raise ScepFailure(
            FailInfo.BAD_REQUEST, "The CSR's subject does not match the certificate it renews."
        )
    return found


def _issued_certificate(
    enrollment: ScepEnrollment, profile: CertificateProfile, signer: x509.Certificate
) -> Certificate | None:
    return Certificate.objects.filter(
        application=enrollment.application,
        ca_id=profile.issuing_ca_id,
        serial_number=certs.serial_hex(signer.serial_number),
        fingerprint_sha256=certs.fingerprint_sha256(signer),
    ).first()


def poll(enrollment: ScepEnrollment, message: wire.PKIMessage) -> Outcome:
    """CertPoll (GetCertInitial): the state of the transaction this signer started."""
    signer_sha = _sha256(message.signer.public_bytes(Encoding.DER))
    known = _transaction(enrollment, message.transaction_id, signer_sha)
    if known is None:
        raise ScepFailure(FailInfo.BAD_CERT_ID, "No such transaction.")
    return outcome_of(known.request)


def get_cert(
    enrollment: ScepEnrollment, profile: CertificateProfile, message_data: bytes
) -> Outcome:
    """GetCert: one of this Application's certificates from the profile's CA."""
    issuer, serial = wire.parse_issuer_and_serial(message_data)
    ca = profile.issuing_ca
    if not wire.same_name(issuer, ca.certificate().subject):
        raise ScepFailure(FailInfo.BAD_CERT_ID, "The issuer is not this enrollment's CA.")
    found = Certificate.objects.filter(
        application=enrollment.application, ca=ca, serial_number=certs.serial_hex(serial)
    ).first()
    if found is None:
        raise ScepFailure(FailInfo.BAD_CERT_ID, "No such certificate in this Application.")
    return _success(found)


def get_crl(profile: CertificateProfile, message_data: bytes) -> Outcome:
    """GetCRL: the current CRL of the profile's CA."""
    from issuance.revocation import current_crl

    issuer, _serial = wire.parse_issuer_and_serial(message_data)
    ca = profile.issuing_ca
    if not wire.same_name(issuer, ca.certificate().subject):
        raise ScepFailure(FailInfo.BAD_CERT_ID, "The issuer is not this enrollment's CA.")
    return Outcome(wire.PKIStatus.SUCCESS, crls=(current_crl(ca),))


def clock_ok(message: wire.PKIMessage) -> None:
    if message.signing_time is None:
        return
    if abs(timezone.now() - message.signing_time) > MAX_CLOCK_SKEW:
        raise ScepFailure(FailInfo.BAD_TIME, "The message's signingTime is too far from ours.")
