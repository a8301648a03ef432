"""Signing OCSP answers, and keeping the pre-signed ones current.

A certificate's nonce-free answer (SHA-1 CertID, as RFC 5019 asks of clients) is signed
once and stored (``OCSPResponse``):

- when it is issued: the pipeline inserts the row with the certificate (``presigned``);
- when its revocation status changes: ``rewrite`` in the same transaction, after the
  certificate's row is updated;
- before its nextUpdate: ``refresh_due``, a scheduled task, re-signs rows with less than
  half their validity left;
- when an answer was signed live for a certificate whose stored one was missing (issued
  before this store existed, or imported), expired, or signed by the other kind of
  responder (CERTPORTAL_OCSP_RESPONDER changed): ``keep``.

Ordering: every writer of a row holds its lock while it reads the certificate's status.
``rewrite`` updates the certificate, then upserts the row; ``refresh_due`` locks rows
(SKIP LOCKED), then reads statuses. Whichever commits last wrote what the certificate's
status is at its commit, so a revocation is never overwritten by an older "good"
answer; ``keep_if_absent`` only inserts, never replaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from issuance.choices import CertificateStatus
from issuance.models import Certificate
from issuance.ocsp.models import OCSPResponse
from pki import ocsp
from pki.keys import PrivateKey
from profiles.models import CertificateAuthority, ocsp_responder
from profiles.services import ensure_ocsp_signer

# RFC 5019 2.1.1: clients identify certificates by SHA-1 CertIDs (a lookup key, not a
# signature hash).
SHA1 = hashes.SHA1()  # noqa: S303

# Stored answers of certificates expired longer than this are dropped by the refresh;
# a question about one is then answered live (as CRLs keep them a day, see revocation).
EXPIRED_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class Signer:
    """Who signs a CA's answers: the CA itself or its delegated responder."""

    issuer: x509.Certificate
    certificate: x509.Certificate
    key: PrivateKey

    def next_update(self, now: datetime) -> datetime:
        """nextUpdate for an answer signed now: the configured validity, never past the
        responder's own certificate."""
        validity = now + timedelta(hours=settings.CERTPORTAL_OCSP_VALIDITY_HOURS)
        return min(validity, self.certificate.not_valid_after_utc)

    def issuer_hash(self) -> bytes:
        """The SHA-1 CertID issuer part: name hash, then key hash."""
        return ocsp.issuer_name_hash(self.issuer, SHA1) + ocsp.issuer_key_hash(self.issuer, SHA1)


def signer_for(ca: CertificateAuthority) -> Signer:
    issuer = ca.issuer()
    if settings.CERTPORTAL_OCSP_RESPONDER == "delegated":
        certificate, key = ocsp_responder(ensure_ocsp_signer(ca))
        return Signer(issuer.certificate, certificate, key)
    return Signer(issuer.certificate, issuer.certificate, issuer.private_key)


@dataclass(frozen=True)
class Status:
    """What an answer says about a certificate."""

    status: str  # "good", "revoked" or "unknown"
    revoked_at: datetime | None = None
    reason: str | None = None

    @classmethod
    def of(cls, status: str, revoked_at: datetime | None, reason: str) -> Status:
        """From a certificate's status, revocation date and reason."""
        if status == CertificateStatus.REVOKED:
            return cls("revoked", revoked_at, reason or None)
        return cls("good")


def sign(
    signer: Signer, query: ocsp.OCSPQuery, status: Status, now: datetime
) -> tuple[bytes, datetime, datetime]:
    """The signed answer to ``query``, its thisUpdate and nextUpdate (whole seconds, as
    they are encoded)."""
    now = now.replace(microsecond=0)
    next_update = signer.next_update(now).replace(microsecond=0)
    der = ocsp.build_ocsp_response(
        query,
        issuer_cert=signer.issuer,
        responder_cert=signer.certificate,
        responder_key=signer.key,
        status=status.status,
        revoked_at=status.revoked_at,
        reason=status.reason,
        this_update=now,
        next_update=next_update,
    )
    return der, now, next_update


def _stored_row(
    signer: Signer, ca_id: int, serial_hex: str, status: Status, now: datetime
) -> OCSPResponse:
    issuer_hash = signer.issuer_hash()
    query = ocsp.OCSPQuery(
        serial=int(serial_hex, 16),
        issuer_name_hash=issuer_hash[:20],
        issuer_key_hash=issuer_hash[20:],
        hash_algorithm=SHA1,
        nonce=None,
    )
    der, this_update, next_update = sign(signer, query, status, now)
    return OCSPResponse(
        ca_id=ca_id,
        serial_number=serial_hex,
        issuer_hash=issuer_hash,
        responder=settings.CERTPORTAL_OCSP_RESPONDER,
        response_der=der,
        this_update=this_update,
        next_update=next_update,
    )


def presigned(ca: CertificateAuthority, certificates: Sequence[Certificate]) -> list[OCSPResponse]:
    """Unsaved "good" answers for certificates this CA is issuing now (the pipeline
    inserts them in the statement that inserts the certificates)."""
    if not certificates:
        return []
    signer, now = signer_for(ca), timezone.now()
    good = Status("good")
    return [_stored_row(signer, ca.pk, c.serial_number, good, now) for c in certificates]


def rewrite(certificates: Sequence[Certificate]) -> None:
    """These certificates' revocation status changed: sign and store their answers now.

    Call inside the transaction that changed the status, after the certificates' rows
    (and instances) were updated: the row lock the upsert takes orders it after any
    refresh of the same rows.
    """
    by_ca: dict[int, list[Certificate]] = {}
    for certificate in certificates:
        if certificate.ca_id:
            by_ca.setdefault(certificate.ca_id, []).append(certificate)
    rows = []
    now = timezone.now()
    for ca_id, group in by_ca.items():
        signer = signer_for(CertificateAuthority.objects.defer("crl_der").get(pk=ca_id))
        rows += [
            _stored_row(
                signer,
                ca_id,
                c.serial_number,
                Status.of(c.status, c.revoked_at, c.revocation_reason),
                now,
            )
            for c in group
        ]
    OCSPResponse.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["ca", "serial_number"],
        update_fields=_SIGNED_FIELDS,
    )


_SIGNED_FIELDS = ["issuer_hash", "responder", "response_der", "this_update", "next_update"]


def keep(row: OCSPResponse, now: datetime) -> None:
    """Store an answer signed live for a certificate whose stored one is missing, expired
    or signed by the other responder kind. A current stored answer is never replaced:
    one written meanwhile (a revocation) wins, as the conditions are checked again under
    its row lock."""
    stale = Q(next_update__lte=now) | ~Q(responder=row.responder)
    updated = OCSPResponse.objects.filter(
        stale, ca_id=row.ca_id, serial_number=row.serial_number
    ).update(**{field: getattr(row, field) for field in _SIGNED_FIELDS})
    if not updated:
        OCSPResponse.objects.bulk_create([row], ignore_conflicts=True)


def refresh_due(*, batch: int = 500, now: datetime | None = None) -> int:
    """Re-sign every stored answer with less than half its validity left; drop those of
    certificates expired past the grace period. Returns how many were re-signed."""
    now = now or timezone.now()
    due_before = now + timedelta(hours=settings.CERTPORTAL_OCSP_VALIDITY_HOURS) / 2
    done = 0
    while True:
        with transaction.atomic():
            rows = list(
                OCSPResponse.objects.select_for_update(skip_locked=True)
                .filter(next_update__lt=due_before)
                .order_by("next_update")
                .only("pk", "ca_id", "serial_number")[:batch]
            )
            if not rows:
                return done
            done += _resign(rows, now)


def _resign(rows: Iterable[OCSPResponse], now: datetime) -> int:
    by_ca: dict[int, list[OCSPResponse]] = {}
    for row in rows:
        by_ca.setdefault(row.ca_id, []).append(row)
    fresh: list[OCSPResponse] = []
    gone: list[int] = []
    for ca_id, group in by_ca.items():
        statuses = {
            serial: (status, revoked_at, reason, not_after)
            for serial, status, revoked_at, reason, not_after in Certificate.objects.filter(
                ca_id=ca_id, serial_number__in=[row.serial_number for row in group]
            ).values_list("serial_number", "status", "revoked_at", "revocation_reason", "not_after")
        }
        signer = signer_for(CertificateAuthority.objects.defer("crl_der").get(pk=ca_id))
        for row in group:
            found = statuses.get(row.serial_number)
            if found is None or found[3] < now - EXPIRED_GRACE:
                gone.append(row.pk)
                continue
            new = _stored_row(signer, ca_id, row.serial_number, Status.of(*found[:3]), now)
            new.pk = row.pk
            fresh.append(new)
    OCSPResponse.objects.filter(pk__in=gone).delete()
    OCSPResponse.objects.bulk_update(fresh, _SIGNED_FIELDS)
    return len(fresh)
