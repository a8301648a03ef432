"""Key generation, description, (de)serialisation and matching."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pki.errors import DecodeError, PolicyViolation

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

RSA_PUBLIC_EXPONENT = 65537
_PRIVATE_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)


class KeyAlgorithm(enum.StrEnum):
    # StrEnum (a str + Enum subclass) so str()/f-strings give the bare value, e.g. for forms.
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    EC_P256 = "EC_P256"
    EC_P384 = "EC_P384"
    ED25519 = "ED25519"


_RSA_BITS = {
    KeyAlgorithm.RSA_2048: 2048,
    KeyAlgorithm.RSA_3072: 3072,
    KeyAlgorithm.RSA_4096: 4096,
}
_EC_CURVES: dict[KeyAlgorithm, type[ec.EllipticCurve]] = {
    KeyAlgorithm.EC_P256: ec.SECP256R1,
    KeyAlgorithm.EC_P384: ec.SECP384R1,
}
# cryptography curve names -> the NIST names used in profiles and the UI.
_NIST_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_ALGORITHM_BY_SHAPE = {
    ("RSA", 2048, None): KeyAlgorithm.RSA_2048,
    ("RSA", 3072, None): KeyAlgorithm.RSA_3072,
    ("RSA", 4096, None): KeyAlgorithm.RSA_4096,
    ("EC", 256, "P-256"): KeyAlgorithm.EC_P256,
    ("EC", 384, "P-384"): KeyAlgorithm.EC_P384,
    ("ED25519", 256, None): KeyAlgorithm.ED25519,
}


def parse_algorithm(alg: KeyAlgorithm | str) -> KeyAlgorithm:
    """KeyAlgorithm for a name; ValueError with the valid choices otherwise."""
    try:
        return KeyAlgorithm(alg)
    except ValueError:
        choices = ", ".join(a.value for a in KeyAlgorithm)
        raise ValueError(f"Unknown key algorithm {alg!r} (expected one of {choices})") from None


def generate_private_key(alg: KeyAlgorithm | str) -> PrivateKey:
    algorithm = parse_algorithm(alg)
    if algorithm in _RSA_BITS:
        return rsa.generate_private_key(RSA_PUBLIC_EXPONENT, _RSA_BITS[algorithm])
    if algorithm in _EC_CURVES:
        return ec.generate_private_key(_EC_CURVES[algorithm]())
    return ed25519.Ed25519PrivateKey.generate()


@dataclass(frozen=True)
class KeyInfo:
    family: str  # "RSA" | "EC" | "ED25519"
    bits: int  # RSA modulus bits, EC curve bits, 256 for Ed25519
    curve: str | None  # "P-256" | "P-384" | "P-521" for EC (other curves: cryptography's name)
    algorithm: KeyAlgorithm | None  # exact match with a generatable algorithm, else None

    def label(self) -> str:
        if self.family == "EC":
            return f"EC {self.curve}"
        if self.family == "ED25519":
            return "Ed25519"
        return f"{self.family} {self.bits}"


def key_info_for(alg: KeyAlgorithm | str) -> KeyInfo:
    """KeyInfo of a key that ``generate_private_key(alg)`` would return, without generating
    it (policy checks for server-side key generation happen before the slow RSA keygen)."""
    algorithm = parse_algorithm(alg)
    for shape, candidate in _ALGORITHM_BY_SHAPE.items():
        if candidate is algorithm:
            return KeyInfo(*shape, algorithm)
    raise AssertionError(f"{algorithm} missing from _ALGORITHM_BY_SHAPE")  # pragma: no cover


def _key_info(family: str, bits: int, curve: str | None) -> KeyInfo:
    return KeyInfo(family, bits, curve, _ALGORITHM_BY_SHAPE.get((family, bits, curve)))


def describe_public_key(public_key: object) -> KeyInfo:
    """Describe a supported public key; PolicyViolation(bad_key) for anything else.

    Private keys are accepted too (their public half is described) because callers often
    hold only the private key.
    """
    if isinstance(public_key, _PRIVATE_KEY_TYPES):
        public_key = public_key.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        return _key_info("RSA", public_key.key_size, None)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = public_key.curve
        return _key_info("EC", curve.key_size, _NIST_CURVE_NAMES.get(curve.name, curve.name))
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return _key_info("ED25519", 256, None)
    raise PolicyViolation(
        f"Unsupported key type {_key_type_name(public_key)} (supported: RSA, EC, Ed25519)",
        code="bad_key",
        field="key",
    )


def _key_type_name(key: object) -> str:
    # "_DSAPublicKey" / "Ed448PublicKey" -> "DSA" / "Ed448": readable without a lookup table.
    name = type(key).__name__.lstrip("_")
    for suffix in ("PublicKey", "PrivateKey"):
        name = name.removesuffix(suffix)
    return name or "unknown"


def private_key_to_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_to_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Load a PEM (PKCS#8 or traditional RSA/EC) or DER private key."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    if not data.strip():
        raise DecodeError("Private key is empty", field="private_key")
    # Never strip DER: its last bytes may legitimately look like whitespace.
    is_pem = data[:1] != b"\x30" and b"-----BEGIN" in data
    key = _load_key_bytes(data.strip() if is_pem else data, password, is_pem)
    if isinstance(key, _PRIVATE_KEY_TYPES):
        return key
    raise PolicyViolation(
        f"Unsupported private key type {_key_type_name(key)} (supported: RSA, EC, Ed25519)",
        code="bad_key",
        field="private_key",
    )


def _load_key_bytes(data: bytes, password: bytes | None, is_pem: bool) -> object:
    loader = serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    try:
        return loader(data, password)
    except TypeError:
        if password is None:
            raise DecodeError(
                "Private key is encrypted; a password is required", field="password"
            ) from None
        # A password for an unencrypted key is harmless: users often fill the field anyway.
        return _load_key_bytes(data, None, is_pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        # A wrong password usually says so, but about 1 time in 256 the decrypted garbage
        # passes the padding check and fails later as a parse error: ask the key instead.
        if password is not None and ("password" in str(exc).lower() or _is_encrypted(loader, data)):
            raise DecodeError("Wrong password for the private key", field="password") from None
        raise DecodeError(
            "Private key is not valid PEM or DER (or the password is wrong)", field="private_key"
        ) from None


def _is_encrypted(loader: Any, data: bytes) -> bool:
    try:
        loader(data, None)
    except TypeError:  # "password was not given but private key is encrypted"
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False
    return False


def _spki_der(key: object) -> bytes:
    if isinstance(key, x509.Certificate | x509.CertificateSigningRequest):
        key = key.public_key()
    if hasattr(key, "private_bytes"):
        key = key.public_key()  # type: ignore[attr-defined]
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_sha256(key: object) -> str:
    """SHA-256 of the SubjectPublicKeyInfo DER, hex: one key's identity whatever holds it
    (a key, its private half, a certificate or a CSR)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(_spki_der(key))
    return digest.finalize().hex()


def keys_match(private_key: object, public_key_or_cert: object) -> bool:
    """True when the private key belongs to the public key / certificate / CSR."""
    try:
        return _spki_der(private_key) == _spki_der(public_key_or_cert)
    except (AttributeError, TypeError, ValueError):
        return False


def signing_hash(private_key: object) -> hashes.HashAlgorithm | None:
    """Hash to sign with: matched to the key strength, None where the scheme fixes it."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        size = private_key.curve.key_size
        if size > 384:
            return hashes.SHA512()
        if size > 256:
            return hashes.SHA384()
        return hashes.SHA256()
    if isinstance(private_key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return hashes.SHA256()
    return None
