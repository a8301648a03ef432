"""Keys, CSRs and certificate checks on the host (the private key never leaves it)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def generate_key(key_type: str) -> PrivateKey:
    if key_type.startswith("RSA_"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    if key_type == "EC_P256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "EC_P384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ED25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type}")


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ValueError("unsupported private key type")
    return key


def build_csr(key: PrivateKey, common_name: str, sans: tuple[str, ...]) -> bytes:
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(name) for name in sans]), critical=False
        )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem) if pem.strip() else []


def public_der(key_or_cert: PrivateKey | x509.Certificate) -> bytes:
    public = key_or_cert.public_key()
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches(key: PrivateKey, certificate: x509.Certificate) -> bool:
    return public_der(key) == public_der(certificate)


def serial_hex(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "x")


def names_of(certificate: x509.Certificate) -> set[str]:
    """The DNS names and IP addresses in the SAN extension (the names clients check)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        cn = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return {str(cn[0].value)} if cn else set()
    return {*san.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


@dataclass(frozen=True)
class Lifetime:
    not_before: datetime
    not_after: datetime

    def two_thirds(self) -> datetime:
        """The fallback renewal time when the portal gives no window."""
        return self.not_before + (self.not_after - self.not_before) * 2 / 3


def lifetime(certificate: x509.Certificate) -> Lifetime:
    return Lifetime(
        certificate.not_valid_before_utc.astimezone(UTC),
        certificate.not_valid_after_utc.astimezone(UTC),
    )


def pkcs12_bytes(
    name: str,
    key: PrivateKey,
    certificate: x509.Certificate,
    chain: list[x509.Certificate],
    password: bytes,
) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        name.encode(),
        key,
        certificate,
        chain or None,
        serialization.BestAvailableEncryption(password),
    )


def key_from_pkcs12(data: bytes, password: bytes) -> PrivateKey:
    key, _, _ = pkcs12.load_key_and_certificates(data, password)
    if key is None:
        raise ValueError("the PKCS#12 file holds no key")
    return load_key(key_pem(key))  # type: ignore[arg-type]
