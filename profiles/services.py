"""Verbs on certificate authorities and profiles; the only writers of these models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import transaction
from django.utils import timezone

from certportal import generation
from certportal.event_types import EventType
from certportal.events import SYSTEM, Actor, record
from certportal.refusals import MessageRefused
from certportal.secrets import seal_for, seal_into
from pki import certs, export, keys, names
from pki import csr as pki_csr
from pki.errors import PKIError
from profiles.choices import CAKind, CAStatus
from profiles.models import CertificateAuthority, CertificateProfile
from profiles.presets import preset_fields


class CAError(MessageRefused):
    """A CA operation refused, with a message for the admin (field says which input)."""

    default_code = "ca_refused"


@dataclass(frozen=True)
class CASubject:
    common_name: str
    organization: str = ""
    organizational_unit: str = ""
    country: str = ""

    def name(self) -> x509.Name:
        try:
            return names.build_name(
                self.common_name,
                organization=self.organization or None,
                organizational_unit=self.organizational_unit or None,
                country=self.country or None,
            )
        except ValueError as exc:
            raise CAError(f"Invalid subject: {exc}", field="subject") from exc


@dataclass(frozen=True)
class CASpec:
    """What an admin asks for when creating an internal or external CA."""

    name: str
    slug: str
    subject: CASubject
    key_algorithm: str = keys.KeyAlgorithm.EC_P256.value
    validity_days: int = 3650
    path_length: int | None = None
    permitted_dns: tuple[str, ...] = field(default_factory=tuple)
    excluded_dns: tuple[str, ...] = field(default_factory=tuple)


def _new_ca(spec: CASpec, kind: str) -> CertificateAuthority:
    return CertificateAuthority(
        name=spec.name,
        slug=spec.slug,
        kind=kind,
        key_algorithm=spec.key_algorithm,
        subject=names.name_to_string(spec.subject.name()),
        path_length=spec.path_length,
        permitted_dns=list(spec.permitted_dns),
        excluded_dns=list(spec.excluded_dns),
    )


def _set_certificate(
    ca: CertificateAuthority, cert: x509.Certificate, chain_above: list[x509.Certificate]
) -> None:
    info = certs.describe_certificate(cert)
    ca.certificate_pem = export.pem(cert)
    ca.chain_pem = export.pem_chain(chain_above) if chain_above else ""
    ca.subject = info.subject
    ca.serial_number = info.serial
    ca.fingerprint_sha256 = info.fingerprint_sha256
    ca.not_before = info.not_before
    ca.not_after = info.not_after
    ca.path_length = info.path_length


def _generate_key(algorithm: str) -> keys.PrivateKey:
    try:
        return keys.generate_private_key(algorithm)
    except (ValueError, KeyError) as exc:
        raise CAError(f"Unsupported key algorithm {algorithm!r}.", field="key_algorithm") from exc


def _save_ca(
    ca: CertificateAuthority,
    private_key: keys.PrivateKey,
    action: EventType,
    actor: Actor,
    data: dict[str, Any],
) -> CertificateAuthority:
    """Insert a new CA, then seal its key bound to the row it now has, in one transaction."""
    ca.full_clean(exclude=["private_key", "certificate_pem", "chain_pem", "csr_pem"])
    with transaction.atomic():
        ca.save()
        seal_into(ca, "private_key", keys.private_key_to_pem(private_key))
        record(action, actor=actor, obj=ca, data={"kind": ca.kind, **data})
    return ca


def create_root_ca(spec: CASpec, *, actor: Actor) -> CertificateAuthority:
    private_key = _generate_key(spec.key_algorithm)
    now = timezone.now()
    cert = certs.build_root_ca(
        private_key,
        spec.subject.name(),
        not_before=now - timedelta(minutes=1),
        not_after=now + timedelta(days=spec.validity_days),
        path_length=spec.path_length,
        permitted_dns=spec.permitted_dns,
        excluded_dns=spec.excluded_dns,
    )
    ca = _new_ca(spec, CAKind.ROOT)
    _set_certificate(ca, cert, [])
    return _save_ca(ca, private_key, EventType.CA_CREATED, actor, {})


def create_intermediate_ca(
    spec: CASpec, *, parent: CertificateAuthority, actor: Actor
) -> CertificateAuthority:
    if not parent.is_usable:
        raise CAError(f"The parent CA {parent} is not active.", field="parent")
    private_key = _generate_key(spec.key_algorithm)
    now = timezone.now()
    try:
        cert = certs.build_intermediate_ca(
            parent.issuer(),
            private_key.public_key(),
            spec.subject.name(),
            not_before=now - timedelta(minutes=1),
            not_after=now + timedelta(days=spec.validity_days),
            path_length=spec.path_length if spec.path_length is not None else 0,
            permitted_dns=spec.permitted_dns,
            excluded_dns=spec.excluded_dns,
        )
    except ValueError as exc:
        raise CAError(str(exc), field="parent") from exc
    ca = _new_ca(spec, CAKind.INTERMEDIATE)
    ca.parent = parent
    _set_certificate(ca, cert, parent.chain())
    return _save_ca(ca, private_key, EventType.CA_CREATED, actor, {"parent": parent.slug})


def import_ca(
    *,
    name: str,
    slug: str,
    certificate_pem: str | bytes,
    private_key_pem: str | bytes,
    password: bytes | None = None,
    actor: Actor,
) -> CertificateAuthority:
    """Import an existing CA: its certificate (then its chain, nearest first) and its key."""
    try:
        cert, *chain = export.load_certificates(certificate_pem)
        private_key = keys.load_private_key(_as_bytes(private_key_pem), password)
    except PKIError as exc:
        raise CAError(str(exc), field="certificate_pem") from exc
    _check_ca_certificate(cert, private_key, chain)
    info = certs.describe_certificate(cert)
    spec = CASpec(
        name=name,
        slug=slug,
        subject=CASubject(info.common_name or name),
        key_algorithm=_algorithm_label(info.key_info),
    )
    ca = _new_ca(spec, CAKind.IMPORTED)
    _set_certificate(ca, cert, chain)
    return _save_ca(
        ca, private_key, EventType.CA_IMPORTED, actor, {"fingerprint": info.fingerprint_sha256}
    )


def create_external_ca(spec: CASpec, *, actor: Actor) -> CertificateAuthority:
    """Generate a key and a CSR for a CA that another (external) CA will sign."""
    private_key = _generate_key(spec.key_algorithm)
    csr = pki_csr.build_csr(private_key, subject=spec.subject.name())
    ca = _new_ca(spec, CAKind.EXTERNAL)
    ca.status = CAStatus.PENDING_CERTIFICATE
    ca.csr_pem = csr.public_bytes(Encoding.PEM).decode()
    return _save_ca(ca, private_key, EventType.CA_CSR_CREATED, actor, {})


def install_external_certificate(
    ca: CertificateAuthority, certificate_pem: str | bytes, *, actor: Actor
) -> CertificateAuthority:
    """Install the certificate the external CA signed (then its chain, nearest first)."""
    if ca.kind != CAKind.EXTERNAL or ca.status != CAStatus.PENDING_CERTIFICATE:
        raise CAError("This CA is not waiting for a certificate.")
    try:
        cert, *chain = export.load_certificates(certificate_pem)
    except PKIError as exc:
        raise CAError(str(exc), field="certificate_pem") from exc
    _check_ca_certificate(cert, ca.load_private_key(), chain)
    with transaction.atomic():
        locked = CertificateAuthority.objects.select_for_update().get(pk=ca.pk)
        if locked.status != CAStatus.PENDING_CERTIFICATE:
            raise CAError("This CA is not waiting for a certificate.")
        _set_certificate(locked, cert, chain)
        locked.status = CAStatus.ACTIVE
        locked.save()
        record(
            EventType.CA_CERTIFICATE_INSTALLED,
            actor=actor,
            obj=locked,
            data={"fingerprint": locked.fingerprint_sha256},
        )
    return locked


def set_ca_status(ca: CertificateAuthority, status: str, *, actor: Actor) -> None:
    if status not in (CAStatus.ACTIVE, CAStatus.DISABLED) or not ca.certificate_pem:
        raise CAError(
            "A CA can only be switched between active and disabled once it has a certificate."
        )
    with transaction.atomic():
        CertificateAuthority.objects.filter(pk=ca.pk).update(status=status)
        generation.changed()
        ca.status = status
        record(EventType.CA_STATUS_CHANGED, actor=actor, obj=ca, data={"status": status})


def _check_ca_certificate(
    cert: x509.Certificate, private_key: keys.PrivateKey, chain: list[x509.Certificate]
) -> None:
    try:
        info = certs.describe_certificate(cert)
        certs.check_serial(cert)
        for above in chain:
            certs.describe_certificate(above)
    except PKIError as exc:
        raise CAError(str(exc), field="certificate_pem") from exc
    limit = CertificateAuthority._meta.get_field("subject").max_length or 0
    if len(info.subject) > limit:
        raise CAError(
            f"The certificate's subject is longer than {limit} characters.",
            field="certificate_pem",
        )
    if not info.is_ca:
        raise CAError(
            "The certificate is not a CA certificate (basicConstraints CA is not set).",
            field="certificate_pem",
        )
    if not _keys_match(private_key, cert):
        raise CAError("The private key does not match the certificate.", field="private_key_pem")
    if info.not_after <= timezone.now():
        raise CAError("The certificate has expired.", field="certificate_pem")
    for child, parent in zip([cert, *chain], chain, strict=False):
        if not certs.verify_issued_by(child, parent):
            raise CAError(
                f"The chain is broken: {names.name_to_string(child.subject)} is not signed by "
                f"{names.name_to_string(parent.subject)}.",
                field="certificate_pem",
            )


def _keys_match(private_key: keys.PrivateKey, cert: x509.Certificate) -> bool:
    try:
        return keys.keys_match(private_key, cert)
    except (ValueError, UnsupportedAlgorithm):  # a public key of a kind nobody can read
        return False


def _algorithm_label(info: keys.KeyInfo) -> str:
    return info.algorithm.value if info.algorithm else info.label()


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


PROFILE_FIELDS = (
    "name",
    "slug",
    "description",
    "preset",
    "issuing_ca",
    "is_active",
    "validity_days_default",
    "validity_days_max",
    "key_algorithms",
    "rsa_min_bits",
    "ec_curves",
    "key_usages",
    "extended_key_usages",
    "dns_rules",
    "allow_wildcards",
    "ip_cidrs",
    "email_patterns",
    "uri_patterns",
    "subject_rules",
    "copy_cn_to_sans",
    "require_san",
    "max_sans",
    "allow_server_keygen",
    "renewal_window_days",
)


def create_profile(*, actor: Actor, preset: str | None = None, **fields: Any) -> CertificateProfile:
    """Create a profile; a preset fills the policy fields the caller did not give."""
    values = {**(preset_fields(preset) if preset else {}), **fields}
    if preset:
        values["preset"] = preset
    unknown = set(values) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    profile = CertificateProfile(**values)
    profile.full_clean()
    with transaction.atomic():
        profile.save()
        record(
            EventType.PROFILE_CREATED,
            actor=actor,
            obj=profile,
            data={"ca": profile.issuing_ca.slug},
        )
    return profile


def update_profile(
    profile: CertificateProfile, *, actor: Actor, **fields: Any
) -> CertificateProfile:
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(profile, name, value)
    profile.full_clean()
    with transaction.atomic():
        profile.save()
        record(EventType.PROFILE_UPDATED, actor=actor, obj=profile, data={"fields": sorted(fields)})
    return profile


OCSP_SIGNER_VALIDITY = timedelta(days=30)
OCSP_SIGNER_RENEW_BEFORE = timedelta(days=7)


def ensure_ocsp_signer(ca: CertificateAuthority) -> CertificateAuthority:
    """Give the CA a delegated OCSP responder, or a new one when it nears expiry.

    Runs under a row lock so concurrent OCSP requests on several web processes make one.
    """
    now = timezone.now()
    if _signer_is_current(ca, now):
        return ca
    with transaction.atomic():
        locked = CertificateAuthority.objects.select_for_update().defer("crl_der").get(pk=ca.pk)
        if _signer_is_current(locked, now):
            return locked
        key = keys.generate_private_key(keys.KeyAlgorithm.EC_P256)
        cert = certs.build_ocsp_signer(
            locked.issuer(),
            key.public_key(),
            not_before=now - timedelta(minutes=1),
            not_after=now + OCSP_SIGNER_VALIDITY,
        )
        locked.ocsp_signer_pem = export.pem(cert)
        locked.ocsp_signer_key = seal_for(locked, "ocsp_signer_key", keys.private_key_to_pem(key))
        CertificateAuthority.objects.filter(pk=locked.pk).update(
            ocsp_signer_pem=locked.ocsp_signer_pem, ocsp_signer_key=locked.ocsp_signer_key
        )
        generation.changed()
        record(
            EventType.CA_OCSP_SIGNER_ISSUED,
            actor=SYSTEM,
            obj=locked,
            data={"serial": certs.serial_hex(cert.serial_number)},
            outbox=False,
        )
    return locked


def _signer_is_current(ca: CertificateAuthority, now: Any) -> bool:
    if not ca.ocsp_signer_pem:
        return False
    cert = x509.load_pem_x509_certificate(ca.ocsp_signer_pem.encode())
    return bool(cert.not_valid_after_utc - OCSP_SIGNER_RENEW_BEFORE > now)
