"""Certificates as files: importing one (PEM bundle, key, PKCS#12) into the
inventory, and exporting a held key (PKCS#12, PEM), audited."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from django.db import IntegrityError, transaction
from django.utils import timezone

from applications.models import Application
from certportal.event_types import EventType
from certportal.events import Actor, record
from certportal.refusals import MessageRefused
from certportal.secrets import SecretError, seal_for
from issuance import trust
from issuance.choices import (
    CertificateStatus,
    EnrollmentMethod,
)
from issuance.models import Certificate
from issuance.services._common import certificate_event_data
from pki import certs, export, keys
from pki.errors import PKIError
from profiles.models import CertificateAuthority

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
