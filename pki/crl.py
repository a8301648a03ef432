"""Certificate revocation lists."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from pki.certs import Issuer

REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
}


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str | None = None  # a REVOCATION_REASONS key


def reason_flag(reason: str | None) -> x509.ReasonFlags | None:
    """ReasonFlags for a reason name; None for no reason or "unspecified".

    RFC 5280 5.3.1 says the unspecified code SHOULD be omitted, so it maps to None.
    ValueError for unknown names.
    """
    if reason is None or reason == "unspecified":
        return None
    try:
        return REVOCATION_REASONS[reason]
    except KeyError:
        raise ValueError(f"Unknown revocation reason {reason!r}") from None


def _reason_extension_lists() -> dict[str | None, list[x509.Extension[x509.ExtensionType]]]:
    lists: dict[str | None, list[x509.Extension[x509.ExtensionType]]] = {None: []}
    for name in REVOCATION_REASONS:
        flag = reason_flag(name)
        reason = x509.CRLReason(flag) if flag is not None else None
        lists[name] = [] if reason is None else [x509.Extension(reason.oid, False, reason)]
    return lists


# One shared extension list per reason, so the 100k-entry loop allocates nothing but the
# RevokedCertificate objects themselves.
_REASON_EXTENSIONS = _reason_extension_lists()


def _revoked_certificates(revoked: Iterable[RevokedEntry]) -> list[x509.RevokedCertificate]:
    result = []
    builder = x509.RevokedCertificateBuilder
    extensions_for = _REASON_EXTENSIONS
    for entry in revoked:
        extensions = extensions_for.get(entry.reason)
        if extensions is None:
            reason_flag(entry.reason)  # raises ValueError naming the bad reason
        result.append(builder(entry.serial, entry.revoked_at, extensions).build())  # type: ignore[arg-type]
    return result


def build_crl(
    issuer: Issuer,
    revoked: Iterable[RevokedEntry],
    *,
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    """Sign a full CRL with the AKI and CRL Number extensions."""
    number = x509.CRLNumber(crl_number)
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.name,
        last_update=this_update,
        next_update=next_update,
        extensions=[issuer.aki_extension, x509.Extension(number.oid, False, number)],
        revoked_certificates=_revoked_certificates(revoked),
    )
    return builder.sign(issuer.private_key, issuer.hash_algorithm)  # type: ignore[arg-type]
