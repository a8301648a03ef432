"""Which certificates a sync follows, what each item should hold (its fingerprint) and
the payload a backend pushes."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable

from cryptography import x509
from django.db.models import Q, QuerySet

from issuance.choices import CertificateStatus
from issuance.models import Certificate
from pki import export, keys
from syncs.backends import for_destination
from syncs.backends.base import Payload, render
from syncs.choices import Selector, Want
from syncs.models import Sync

NOT_SYNCABLE_NO_KEY = (
    "The portal does not hold this certificate's private key, and this destination needs it."
)


def names_match(pattern: str, common_name: str, sans: Iterable[str]) -> bool:
    pattern = pattern.lower()
    return any(fnmatch.fnmatchcase(n.lower(), pattern) for n in [common_name, *sans] if n)


def candidates(sync: Sync) -> QuerySet[Certificate]:
    """The Application's active certificates this sync selects now (a lineage: the followed
    certificate or, once renewed, its newest successor through the items)."""
    active = Certificate.objects.filter(
        application_id=sync.application_id, status=CertificateStatus.ACTIVE
    )
    if sync.selector == Selector.PROFILE:
        return active.filter(profile_id=sync.profile_id)
    if sync.selector == Selector.LINEAGE:
        followed = sync.items.values("certificate_id")
        return active.filter(Q(pk=sync.certificate_id) | Q(replaces_id__in=followed))
    if sync.name_pattern:
        # The index narrows by a literal part of the pattern; fnmatch decides.
        literal = max(sync.name_pattern.lower().split("*"), key=len).strip("?[]")
        return active.filter(search_text__contains=literal) if literal else active
    return active.none()


def selected(sync: Sync) -> list[Certificate]:
    found = list(candidates(sync).order_by("-not_after"))
    if sync.selector == Selector.PATTERN:
        return [c for c in found if names_match(sync.name_pattern, c.common_name, c.sans)]
    return found


def matches(sync: Sync, certificate: Certificate, followed: set[str]) -> bool:
    """Whether a new certificate belongs to this sync; ``followed``: ids of certificates
    the sync already has items for (a lineage follows renewals through them)."""
    if certificate.application_id != sync.application_id:
        return False
    if sync.selector == Selector.PROFILE:
        return certificate.profile_id == sync.profile_id
    if sync.selector == Selector.LINEAGE:
        return certificate.pk == sync.certificate_id or str(certificate.replaces_id) in followed
    return names_match(sync.name_pattern, certificate.common_name, certificate.sans)


def syncable(sync: Sync, certificate: Certificate) -> bool:
    """A destination that needs the key takes only certificates whose key the portal holds."""
    return certificate.has_private_key or not for_destination(sync.destination).needs_key(
        sync.options
    )


def fingerprint(sync: Sync, certificate: Certificate, want: str) -> str:
    """What the destination should hold for this item: changes with the certificate, the
    options, the name template and whether it should be there at all."""
    material = json.dumps(
        [want, certificate.fingerprint_sha256, sync.options, sync.name_template],
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def present(sync: Sync, certificate: Certificate) -> str:
    return fingerprint(sync, certificate, Want.PRESENT)


def name_for(sync: Sync, certificate: Certificate, application: str) -> str:
    backend = for_destination(sync.destination)
    values = {
        "application": application,
        "profile": certificate.profile.slug if certificate.profile is not None else "",
        "common_name": certificate.common_name or (certificate.sans or [""])[0],
        "serial": certificate.serial_number,
    }
    return render(sync.name_template, values, backend.refused)


class KeyProblem(Exception):
    """The held key does not belong to the certificate (never pushed)."""


def payload(sync: Sync, certificate: Certificate, application: str) -> Payload:
    """Everything the backend pushes; the key only when the destination takes it."""
    chain = certificate.chain()
    root = chain[-1] if chain and _self_signed(chain[-1]) else None
    above = [c for c in chain if c is not root]
    key_pem = None
    if certificate.has_private_key and sync.option("include_private_key", True):
        key_pem = certificate.private_key_pem().decode()
        if not keys.keys_match(keys.load_private_key(key_pem.encode()), certificate.as_x509()):
            raise KeyProblem("The held private key does not match the certificate.")
    return Payload(
        certificate_id=str(certificate.pk),
        application=application,
        name=name_for(sync, certificate, application),
        common_name=certificate.common_name,
        sans=list(certificate.sans),
        serial_number=certificate.serial_number,
        not_after_epoch=int(certificate.not_after.timestamp()),
        certificate_pem=certificate.certificate_pem.strip() + "\n",
        chain_pems=[export.pem(c) for c in above],
        root_pem=export.pem(root) if root is not None else "",
        key_pem=key_pem,
    )


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer
