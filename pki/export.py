"""Certificate serialisation: PEM/DER, certificate bundles and PKCS#12."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from pki.errors import DecodeError, KeyMismatch
from pki.keys import PrivateKey, describe_public_key, keys_match

MAX_BUNDLE_BYTES = 1024 * 1024
MAX_PKCS12_BYTES = 1024 * 1024
# PBKDF2 rounds: well above OpenSSL's 2048 default, yet an export stays quick.
PKCS12_KDF_ROUNDS = 20_000


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def pem_chain(certs: Sequence[x509.Certificate]) -> str:
    return "".join(pem(cert) for cert in certs)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Load a PEM bundle (one or more certificates) or a single DER certificate."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    if len(data) > MAX_BUNDLE_BYTES:
        raise DecodeError(f"Certificate data is larger than {MAX_BUNDLE_BYTES} bytes")
    if not data.strip():
        raise DecodeError("Certificate data is empty")
    try:
        if data[:1] != b"\x30" and b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion):
        raise DecodeError("Not a PEM or DER certificate (or the data is corrupt)") from None


def to_pkcs12(
    cert: x509.Certificate,
    key: PrivateKey,
    chain: Sequence[x509.Certificate],
    password: bytes,
    *,
    friendly_name: bytes | None = None,
) -> bytes:
    """PKCS#12 with PBES2 (PBKDF2-SHA256, AES-256-CBC) and an HMAC-SHA256 MAC.

    These are OpenSSL 3 defaults, so ``openssl pkcs12`` reads the file without -legacy;
    Windows 10 1709+ / macOS 11+ import it as well.
    """
    if not password:
        raise ValueError("A PKCS#12 password is required")
    if not keys_match(key, cert):
        raise KeyMismatch("The private key does not match the certificate")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password)
    )
    return pkcs12.serialize_key_and_certificates(
        friendly_name, key, cert, list(chain) or None, encryption
    )


def load_pkcs12(
    data: bytes, password: bytes | None
) -> tuple[PrivateKey | None, x509.Certificate, list[x509.Certificate]]:
    """(key, certificate, additional certificates); DecodeError for garbage/wrong password."""
    if len(data) > MAX_PKCS12_BYTES:
        raise DecodeError(f"PKCS#12 data is larger than {MAX_PKCS12_BYTES} bytes")
    try:
        key, cert, additional = pkcs12.load_key_and_certificates(data, password)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # cryptography cannot tell a wrong password from corrupt data: neither can we.
        raise DecodeError(
            "Could not read the PKCS#12 file (wrong password or corrupt data)", field="password"
        ) from None
    if cert is None:
        raise DecodeError("The PKCS#12 file contains no certificate")
    if key is not None:
        describe_public_key(key.public_key())  # PolicyViolation(bad_key) for DSA, Ed448, ...
    return key, cert, list(additional)  # type: ignore[return-value]
