"""Parsing and building PKCS#10 certificate signing requests.

parse_csr is fed untrusted bytes straight from the network (ACME, EST, SCEP, the API), so it
never lets a cryptography/ASN.1 exception escape: everything becomes CSRError (or
PolicyViolation(bad_key) for an unsupported key type).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from pki.errors import CSRError, PolicyViolation
from pki.keys import KeyInfo, PrivateKey, PublicKey, describe_public_key, signing_hash
from pki.names import build_name, first_common_name

MAX_CSR_BYTES = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Everything cryptography may raise while lazily decoding a hostile CSR.
_DECODE_ERRORS = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    OverflowError,
    IndexError,
)
_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----(.*?)-----END (?:NEW )?CERTIFICATE REQUEST-----",
    re.DOTALL,
)
_WHITESPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class ParsedCSR:
    csr: x509.CertificateSigningRequest
    public_key: PublicKey
    key_info: KeyInfo
    subject: x509.Name
    common_name: str | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[IPAddress, ...]
    emails: tuple[str, ...]
    uris: tuple[str, ...]
    pem: str  # normalised "CERTIFICATE REQUEST" PEM


def _bad(message: str) -> CSRError:
    return CSRError(message, field="csr")


def _to_der(data: bytes | str) -> bytes:
    """Turn PEM, DER or bare base64 (EST) into DER bytes, enforcing the size limit."""
    if isinstance(data, str):
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise _bad("CSR is not valid PEM or DER (it contains non-ASCII text)") from None
    if len(data) > MAX_CSR_BYTES:
        raise _bad(f"CSR is too large ({len(data)} bytes; the limit is {MAX_CSR_BYTES} bytes)")
    # Checked before stripping: DER may legitimately end in bytes that look like whitespace.
    # Text never starts with 0x30 ("0"): base64 of a DER SEQUENCE starts with "M".
    if data[:1] == b"\x30":
        return data
    stripped = data.strip()
    if not stripped:
        raise _bad("CSR is empty")
    match = _PEM_BLOCK.search(stripped)
    if match is not None:
        return _b64decode(match.group(1), "CSR PEM body is not valid base64")
    if b"-----BEGIN" in stripped:
        raise _bad("CSR is not valid PEM or DER (expected a CERTIFICATE REQUEST PEM block)")
    return _b64decode(stripped, "CSR is not valid PEM or DER")


def _b64decode(text: bytes, message: str) -> bytes:
    compact = _WHITESPACE.sub(b"", text)
    if b"-" in compact or b"_" in compact:  # tolerate base64url (as used by ACME)
        compact = compact.replace(b"-", b"+").replace(b"_", b"/")
    compact += b"=" * (-len(compact) % 4)
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(message) from None
    if not der:
        raise _bad("CSR is empty")
    return der


def _load(der: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_der_x509_csr(der)
    except _DECODE_ERRORS:
        raise _bad("CSR is not valid PEM or DER") from None
    try:
        valid = csr.is_signature_valid
    except _DECODE_ERRORS:
        raise _bad("CSR signature could not be checked (unsupported algorithm)") from None
    if not valid:
        raise _bad("CSR signature is invalid")
    return csr


def _public_key(csr: x509.CertificateSigningRequest) -> tuple[PublicKey, KeyInfo]:
    try:
        key = csr.public_key()
    except _DECODE_ERRORS:
        raise PolicyViolation(
            "CSR public key type is not supported (supported: RSA, EC, Ed25519)",
            code="bad_key",
            field="csr",
        ) from None
    return key, describe_public_key(key)  # type: ignore[return-value]


def _dedupe(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _sans(csr: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    except _DECODE_ERRORS:
        raise _bad("CSR extensions are malformed") from None


def _ip_addresses(san: x509.SubjectAlternativeName) -> tuple[IPAddress, ...]:
    values = san.get_values_for_type(x509.IPAddress)
    addresses = [v for v in values if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address)]
    if len(addresses) != len(values):
        # 8/32-byte values are networks, meaningful only in name constraints.
        raise _bad("CSR contains an IP address SAN that is a network, not an address")
    return tuple(dict.fromkeys(addresses))


def parse_csr(data: bytes | str) -> ParsedCSR:
    """Decode, verify and summarise a CSR (PEM, DER, or bare base64 DER)."""
    csr = _load(_to_der(data))
    public_key, key_info = _public_key(csr)
    try:
        subject = csr.subject
        cn = first_common_name(subject)
    except _DECODE_ERRORS:
        raise _bad("CSR subject is malformed") from None
    san = _sans(csr)
    # Other SAN types (otherName, directoryName, registeredID) are deliberately ignored:
    # policy cannot vet them, so they never reach an issued certificate.
    if san is None:
        dns: tuple[str, ...] = ()
        ips: tuple[IPAddress, ...] = ()
        emails: tuple[str, ...] = ()
        uris: tuple[str, ...] = ()
    else:
        dns = _dedupe(name.lower() for name in san.get_values_for_type(x509.DNSName))
        ips = _ip_addresses(san)
        emails = _dedupe(san.get_values_for_type(x509.RFC822Name))
        uris = _dedupe(san.get_values_for_type(x509.UniformResourceIdentifier))
    pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return ParsedCSR(csr, public_key, key_info, subject, cn, dns, ips, emails, uris, pem)


def _general_names(
    dns_names: Sequence[str],
    ip_addresses: Sequence[str | IPAddress],
    emails: Sequence[str],
    uris: Sequence[str],
) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    names += [x509.RFC822Name(e) for e in emails]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    return names


def build_csr(
    private_key: PrivateKey,
    common_name: str | None = None,
    *,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str | IPAddress] = (),
    emails: Sequence[str] = (),
    uris: Sequence[str] = (),
    subject: x509.Name | None = None,
) -> x509.CertificateSigningRequest:
    """Build and sign a CSR; ``subject`` wins over ``common_name`` when both are given."""
    name = subject if subject is not None else build_name(common_name)
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    general_names = _general_names(dns_names, ip_addresses, emails, uris)
    if general_names:
        # RFC 5280 4.2.1.6: SAN must be critical when the subject is empty.
        critical = len(name) == 0
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names), critical)
    return builder.sign(private_key, signing_hash(private_key))  # type: ignore[arg-type]
