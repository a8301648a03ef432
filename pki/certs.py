"""Building and describing certificates (roots, intermediates, leaves, OCSP signers).

build_leaf is on the issuance hot path: everything derivable from the issuer alone (AKI,
CRL DP, AIA, signing hash) is computed once in Issuer.__post_init__, and certificates are
assembled by passing a complete extension list to CertificateBuilder instead of chaining
add_extension (each call copies the builder).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
    SignatureAlgorithmOID,
)

from pki.errors import DecodeError, KeyMismatch, PKIError
from pki.keys import KeyInfo, PrivateKey, PublicKey, describe_public_key, keys_match, signing_hash
from pki.names import first_common_name, name_to_string
from pki.policy import Decision
from pki.usages import (
    EKU_NAMES,
    KEY_USAGE_CANONICAL,
    KEY_USAGE_NAMES,
    check_key_usage,
    eku_name,
    parse_eku,
)

__all__ = [
    "EKU_NAMES",
    "KEY_USAGE_NAMES",
    "CertInfo",
    "Issuer",
    "build_intermediate_ca",
    "build_leaf",
    "build_ocsp_signer",
    "build_root_ca",
    "check_serial",
    "describe_certificate",
    "fingerprint_sha256",
    "is_ca_or_responder",
    "parse_eku",
    "random_serial",
    "serial_hex",
    "verify_issued_by",
]

Ext = x509.Extension[x509.ExtensionType]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_E = TypeVar("_E", bound=x509.ExtensionType)

_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_LEAF_BASIC_CONSTRAINTS: Ext = x509.Extension(
    x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=False, path_length=None)
)
# Usages a leaf never gets: only RSA encrypts, Ed25519 cannot agree keys, and keyCertSign
# requires cA=TRUE (RFC 5280 4.2.1.3), which a leaf never has.
_MEANINGLESS_USAGES = {
    "RSA": frozenset({"key_cert_sign"}),
    "EC": frozenset({"key_cert_sign", "key_encipherment", "data_encipherment"}),
    "ED25519": frozenset(
        {"key_cert_sign", "key_encipherment", "data_encipherment", "key_agreement"}
    ),
}


def random_serial() -> int:
    """Positive serial with ≥ 64 random bits that fits RFC 5280's 20-octet limit."""
    return x509.random_serial_number()


def fingerprint_sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def serial_hex(serial: int) -> str:
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


# --------------------------------------------------------------------------- issuer


def _ext(value: x509.ExtensionType, critical: bool = False) -> Ext:
    return x509.Extension(value.oid, critical, value)


def _aki_for(cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    return x509.CRLDistributionPoints([point])


def _aia(ocsp_url: str | None, ca_issuers_url: str | None) -> x509.AuthorityInformationAccess:
    descriptions = []
    if ocsp_url:
        uri = x509.UniformResourceIdentifier(ocsp_url)
        descriptions.append(x509.AccessDescription(AuthorityInformationAccessOID.OCSP, uri))
    if ca_issuers_url:
        uri = x509.UniformResourceIdentifier(ca_issuers_url)
        descriptions.append(x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, uri))
    return x509.AuthorityInformationAccess(descriptions)


@dataclass(frozen=True)
class Issuer:
    """A CA certificate with its key and the URLs it advertises in what it issues.

    Raises KeyMismatch when the key does not belong to the certificate: signing with the
    wrong key would produce certificates nobody can verify.
    """

    certificate: x509.Certificate
    private_key: PrivateKey
    crl_url: str | None = None
    ocsp_url: str | None = None
    ca_issuers_url: str | None = None
    # Derived once; build_leaf reuses them for every certificate.
    name: x509.Name = field(init=False, repr=False, compare=False)
    hash_algorithm: hashes.HashAlgorithm | None = field(init=False, repr=False, compare=False)
    aki_extension: Ext = field(init=False, repr=False, compare=False)
    issued_extensions: tuple[Ext, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not keys_match(self.private_key, self.certificate):
            raise KeyMismatch("The CA private key does not match the CA certificate")
        aki = _ext(_aki_for(self.certificate))
        extensions = [aki]
        if self.crl_url:
            extensions.append(_ext(_crl_dp(self.crl_url)))
        if self.ocsp_url or self.ca_issuers_url:
            extensions.append(_ext(_aia(self.ocsp_url, self.ca_issuers_url)))
        object.__setattr__(self, "name", self.certificate.subject)
        object.__setattr__(self, "hash_algorithm", signing_hash(self.private_key))
        object.__setattr__(self, "aki_extension", aki)
        object.__setattr__(self, "issued_extensions", tuple(extensions))

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return builder.sign(self.private_key, self.hash_algorithm)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- CA certificates


def _name_constraints(permitted: Sequence[str], excluded: Sequence[str]) -> list[Ext]:
    if not permitted and not excluded:
        return []
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName(d) for d in permitted] or None,
        excluded_subtrees=[x509.DNSName(d) for d in excluded] or None,
    )
    return [_ext(constraints, critical=True)]


def _ca_extensions(
    public_key: PublicKey,
    path_length: int | None,
    permitted: Sequence[str],
    excluded: Sequence[str],
) -> list[Ext]:
    return [
        _ext(x509.BasicConstraints(ca=True, path_length=path_length), critical=True),
        _ext(_CA_KEY_USAGE, critical=True),
        _ext(x509.SubjectKeyIdentifier.from_public_key(public_key)),
        *_name_constraints(permitted, excluded),
    ]


def build_root_ca(
    private_key: PrivateKey,
    subject: x509.Name,
    *,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None = None,
    permitted_dns: Sequence[str] = (),
    excluded_dns: Sequence[str] = (),
) -> x509.Certificate:
    public_key = private_key.public_key()
    extensions = _ca_extensions(public_key, path_length, permitted_dns, excluded_dns)
    ski = extensions[2].value
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)  # type: ignore[arg-type]
    builder = x509.CertificateBuilder(
        issuer_name=subject,
        subject_name=subject,
        public_key=public_key,
        serial_number=random_serial(),
        not_valid_before=not_before,
        not_valid_after=not_after,
        extensions=[*extensions, _ext(aki)],
    )
    return builder.sign(private_key, signing_hash(private_key))  # type: ignore[arg-type]


def _child_path_length(issuer_cert: x509.Certificate, requested: int | None) -> int | None:
    """Path length for a new CA under ``issuer_cert``; ValueError when none is allowed."""
    try:
        constraints = issuer_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise ValueError("The issuer is not a CA certificate") from None
    if not constraints.ca:
        raise ValueError("The issuer is not a CA certificate")
    limit = constraints.path_length
    if limit is None:
        return requested
    if limit == 0:
        raise ValueError("The issuer's path length constraint (0) forbids subordinate CAs")
    # Relying parties enforce the issuer's tighter limit anyway; a larger value would lie.
    return limit - 1 if requested is None else min(requested, limit - 1)


def build_intermediate_ca(
    issuer: Issuer,
    public_key: PublicKey,
    subject: x509.Name,
    *,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None = 0,
    permitted_dns: Sequence[str] = (),
    excluded_dns: Sequence[str] = (),
) -> x509.Certificate:
    path_length = _child_path_length(issuer.certificate, path_length)
    extensions = _ca_extensions(public_key, path_length, permitted_dns, excluded_dns)
    builder = x509.CertificateBuilder(
        issuer_name=issuer.name,
        subject_name=subject,
        public_key=public_key,
        serial_number=random_serial(),
        not_valid_before=not_before,
        not_valid_after=min(not_after, issuer.certificate.not_valid_after_utc),
        extensions=[*extensions, *issuer.issued_extensions],
    )
    return issuer.sign(builder)


# --------------------------------------------------------------------------- leaves


@functools.lru_cache(maxsize=256)
def _key_usage(names: tuple[str, ...], family: str) -> x509.KeyUsage | None:
    flags = {attr: False for attr in KEY_USAGE_CANONICAL}
    for name in names:
        flags[check_key_usage(name)] = True
    for attr in _MEANINGLESS_USAGES.get(family, frozenset()):
        flags[attr] = False
    if not flags["key_agreement"]:
        # encipherOnly/decipherOnly qualify keyAgreement and are invalid without it.
        flags["encipher_only"] = flags["decipher_only"] = False
    return x509.KeyUsage(**flags) if any(flags.values()) else None


@functools.lru_cache(maxsize=256)
def _extended_key_usage(names: tuple[str, ...]) -> x509.ExtendedKeyUsage:
    return x509.ExtendedKeyUsage([parse_eku(name) for name in names])


def _key_family(public_key: PublicKey) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ED25519"
    return "EC"


def _san(decision: Decision) -> x509.SubjectAlternativeName | None:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in decision.dns_names]
    names += [x509.IPAddress(ip) for ip in decision.ip_addresses]
    names += [x509.RFC822Name(e) for e in decision.emails]
    names += [x509.UniformResourceIdentifier(u) for u in decision.uris]
    return x509.SubjectAlternativeName(names) if names else None


def _leaf_extensions(
    issuer: Issuer,
    public_key: PublicKey,
    subject: x509.Name,
    key_usages: Sequence[str],
    extended_key_usages: Sequence[str],
    san: x509.SubjectAlternativeName | None,
) -> list[Ext]:
    extensions = [_LEAF_BASIC_CONSTRAINTS]
    key_usage = _key_usage(tuple(key_usages), _key_family(public_key))
    if key_usage is not None:
        extensions.append(_ext(key_usage, critical=True))
    if extended_key_usages:
        extensions.append(_ext(_extended_key_usage(tuple(extended_key_usages))))
    if san is not None:
        # RFC 5280 4.2.1.6: with an empty subject the SAN carries the identity: critical.
        extensions.append(_ext(san, critical=len(subject) == 0))
    extensions.append(_ext(x509.SubjectKeyIdentifier.from_public_key(public_key)))
    extensions.extend(issuer.issued_extensions)
    return extensions


def build_leaf(
    issuer: Issuer, public_key: PublicKey, decision: Decision, *, serial: int | None = None
) -> x509.Certificate:
    builder = x509.CertificateBuilder(
        issuer_name=issuer.name,
        subject_name=decision.subject,
        public_key=public_key,
        serial_number=serial if serial is not None else random_serial(),
        not_valid_before=decision.not_before,
        not_valid_after=decision.not_after,
        extensions=_leaf_extensions(
            issuer,
            public_key,
            decision.subject,
            decision.key_usages,
            decision.extended_key_usages,
            _san(decision),
        ),
    )
    return issuer.sign(builder)


def _ocsp_signer_subject(issuer_subject: x509.Name) -> x509.Name:
    cn = first_common_name(issuer_subject) or "CA"
    others = [a for a in issuer_subject if a.oid != NameOID.COMMON_NAME]
    # Trim so the derived CN stays within the 64-character X.520 limit.
    return x509.Name(
        [*others, x509.NameAttribute(NameOID.COMMON_NAME, f"{cn[:45]} OCSP Responder")]
    )


def build_ocsp_signer(
    issuer: Issuer,
    public_key: PublicKey,
    *,
    not_before: datetime,
    not_after: datetime,
    subject: x509.Name | None = None,
) -> x509.Certificate:
    """Delegated OCSP responder certificate (RFC 6960 4.2.2.2), with id-pkix-ocsp-nocheck.

    ``subject`` defaults to the issuer's subject with "<CN> OCSP Responder" as CN.
    """
    name = subject if subject is not None else _ocsp_signer_subject(issuer.name)
    extensions = _leaf_extensions(
        issuer, public_key, name, ("digitalSignature",), ("OCSPSigning",), None
    )
    builder = x509.CertificateBuilder(
        issuer_name=issuer.name,
        subject_name=name,
        public_key=public_key,
        serial_number=random_serial(),
        not_valid_before=not_before,
        not_valid_after=min(not_after, issuer.certificate.not_valid_after_utc),
        extensions=[*extensions, _ext(x509.OCSPNoCheck())],
    )
    return issuer.sign(builder)


# --------------------------------------------------------------------------- inspection

_SIGNATURE_ALGORITHM_NAMES = {
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.RSASSA_PSS: "RSASSA-PSS",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    SignatureAlgorithmOID.ED25519: "Ed25519",
    SignatureAlgorithmOID.ED448: "Ed448",
}


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    common_name: str | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    emails: tuple[str, ...]
    uris: tuple[str, ...]
    serial: str  # serial_hex()
    not_before: datetime
    not_after: datetime
    key_info: KeyInfo
    key_usages: tuple[str, ...]
    extended_key_usages: tuple[str, ...]
    is_ca: bool
    path_length: int | None
    fingerprint_sha256: str
    fingerprint_sha1: str
    signature_algorithm: str


def _describe_any_key(cert: x509.Certificate) -> KeyInfo:
    # Imported certificates may carry keys we refuse to issue for (DSA, Ed448, exotic
    # curves): describe them as well as possible instead of failing the whole import.
    try:
        public_key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return KeyInfo(family="UNKNOWN", bits=0, curve=None, algorithm=None)
    try:
        return describe_public_key(public_key)
    except PKIError:
        name = type(public_key).__name__.lstrip("_").removesuffix("PublicKey").upper()
        bits = getattr(public_key, "key_size", 0)
        return KeyInfo(family=name or "UNKNOWN", bits=bits, curve=None, algorithm=None)


def _extension(cert: x509.Certificate, cls: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _usage_names(key_usage: x509.KeyUsage | None) -> tuple[str, ...]:
    if key_usage is None:
        return ()
    names = []
    for attr, name in KEY_USAGE_CANONICAL.items():
        try:
            if getattr(key_usage, attr):
                names.append(name)
        except ValueError:  # encipher/decipher_only raise unless keyAgreement is set
            continue
    return tuple(names)


def describe_certificate(cert: x509.Certificate) -> CertInfo:
    """Summarise a certificate for display/storage; DecodeError for malformed extensions."""
    try:
        return _describe(cert)
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        raise DecodeError(f"Certificate could not be decoded: {exc}") from None


# RFC 5280 4.1.2.2 allows 20 octets; a 160-bit value (which DER encodes in 21) is a
# common slip of real CAs, so it is tolerated.
MAX_SERIAL_BITS = 160


def check_serial(cert: x509.Certificate) -> None:
    """DecodeError unless the serial is positive and at most 20 octets (RFC 5280 4.1.2.2)."""
    serial = cert.serial_number
    if serial <= 0:
        raise DecodeError("The certificate's serial number is not positive (RFC 5280 4.1.2.2).")
    if serial.bit_length() > MAX_SERIAL_BITS:
        raise DecodeError("The certificate's serial number is longer than 20 octets.")


def is_ca_or_responder(info: CertInfo) -> bool:
    """A CA or OCSP responder certificate: part of a CA, never a certificate the CA's CRL or
    OCSP answers speak for."""
    responder = eku_name(ExtendedKeyUsageOID.OCSP_SIGNING) in info.extended_key_usages
    return info.is_ca or responder


def _san_values(
    san: x509.SubjectAlternativeName | None, kind: type[x509.GeneralName]
) -> tuple[str, ...]:
    if san is None:
        return ()
    return tuple(str(v) for v in san.get_values_for_type(kind))  # type: ignore[arg-type]


def _describe(cert: x509.Certificate) -> CertInfo:
    san = _extension(cert, x509.SubjectAlternativeName)
    eku = _extension(cert, x509.ExtendedKeyUsage)
    constraints = _extension(cert, x509.BasicConstraints)
    sig_oid = cert.signature_algorithm_oid
    return CertInfo(
        subject=name_to_string(cert.subject),
        issuer=name_to_string(cert.issuer),
        common_name=first_common_name(cert.subject),
        dns_names=_san_values(san, x509.DNSName),
        ip_addresses=_san_values(san, x509.IPAddress),
        emails=_san_values(san, x509.RFC822Name),
        uris=_san_values(san, x509.UniformResourceIdentifier),
        serial=serial_hex(cert.serial_number),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_info=_describe_any_key(cert),
        key_usages=_usage_names(_extension(cert, x509.KeyUsage)),
        extended_key_usages=tuple(eku_name(oid) for oid in eku) if eku is not None else (),
        is_ca=constraints is not None and constraints.ca,
        path_length=constraints.path_length if constraints is not None else None,
        fingerprint_sha256=fingerprint_sha256(cert),
        fingerprint_sha1=cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - display only
        signature_algorithm=_SIGNATURE_ALGORITHM_NAMES.get(sig_oid, sig_oid.dotted_string),
    )


def verify_issued_by(cert: x509.Certificate, issuer_cert: x509.Certificate) -> bool:
    """True when ``issuer_cert`` signed ``cert`` and the issuer name matches."""
    try:
        cert.verify_directly_issued_by(issuer_cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True
