"""JWS for ACME (RFC 8555 section 6.2) on josepy: the flattened JSON serialization with
the nonce, url and kid protected headers, and the algorithms ACME accounts may use.

josepy has no Ed25519 (OKP) keys; they are registered here through josepy's own JWK and
JWASignature extension points, so every key type goes through the same verify().
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import josepy as jose
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ALLOWED_ALGORITHMS = ("RS256", "ES256", "ES384", "EdDSA")
_EC_CURVE_FOR_ALG = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}


class JWSError(Exception):
    """A JWS that cannot be accepted; ``kind`` is the ACME problem type it maps to and
    ``extra`` the further members its problem document carries."""

    def __init__(self, kind: str, detail: str, status: int = 400, **extra: Any) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.extra = extra


def _bad_algorithm(detail: str, accepted: tuple[str, ...] = ALLOWED_ALGORITHMS) -> JWSError:
    """badSignatureAlgorithm: RFC 8555 6.2 requires the list of accepted algorithms."""
    return JWSError("badSignatureAlgorithm", detail, algorithms=list(accepted))


@jose.JWK.register
class JWKOKP(jose.JWK):
    """Ed25519 public key (RFC 8037)."""

    typ = "OKP"
    __slots__ = ("key",)
    cryptography_key_types = (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)
    required = ("crv", jose.JWK.type_field_name, "x")

    def fields_to_partial_json(self) -> dict[str, Any]:
        public = self.key
        if isinstance(public, ed25519.Ed25519PrivateKey):
            public = public.public_key()
        return {"crv": "Ed25519", "x": jose.encode_b64jose(public.public_bytes_raw())}

    @classmethod
    def fields_from_json(cls, jobj: Mapping[str, Any]) -> JWKOKP:
        if jobj.get("crv") != "Ed25519" or "d" in jobj:
            raise jose.DeserializationError("only Ed25519 public keys are supported")
        raw = jose.decode_b64jose(jobj["x"])
        try:
            return cls(key=ed25519.Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as exc:
            raise jose.DeserializationError("bad Ed25519 key") from exc

    def public_key(self) -> JWKOKP:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return type(self)(key=self.key.public_key())
        return self


class _EdDSA(jose.JWASignature):
    kty = JWKOKP

    def sign(self, key: Any, msg: bytes) -> bytes:
        return bytes(key.sign(msg))

    def verify(self, key: Any, msg: bytes, sig: bytes) -> bool:
        try:
            key.verify(sig, msg)
        except (InvalidSignature, AttributeError, TypeError):
            return False
        return True


EdDSA = jose.JWASignature.register(_EdDSA("EdDSA"))


class Header(jose.Header):
    """JOSE header with ACME's nonce, url and kid."""

    nonce: str | None = jose.field("nonce", omitempty=True)
    kid: str | None = jose.field("kid", omitempty=True)
    url: str | None = jose.field("url", omitempty=True)


class Signature(jose.Signature):
    __slots__ = jose.Signature._orig_slots
    header_cls = Header
    header: Header = jose.field(
        "header", omitempty=True, default=Header(), decoder=Header.from_json
    )


class JWS(jose.JWS):
    signature_cls = Signature
    __slots__ = jose.JWS._orig_slots


@dataclass(frozen=True)
class Parsed:
    """A JWS whose structure and protected header are acceptable; not yet verified."""

    jws: JWS
    alg: str
    nonce: str
    url: str
    kid: str | None
    jwk: jose.JWK | None
    payload: bytes


def parse(body: bytes, max_bytes: int, *, inner: bool = False) -> Parsed:
    """Check a flattened JWS's shape and protected header (RFC 8555 6.2). An inner
    keyChange JWS (7.3.5) carries no nonce."""
    if len(body) > max_bytes:
        raise JWSError("malformed", f"The request body exceeds {max_bytes} bytes.", 413)
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JWSError("malformed", "The request body is not JSON.") from exc
    if not isinstance(obj, dict) or set(obj) != {"protected", "payload", "signature"}:
        raise JWSError(
            "malformed", "Use the flattened JWS serialization with a protected header only."
        )
    protected = _protected_header(obj["protected"])
    alg = protected.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise _bad_algorithm(f"Algorithm {alg!r} is not accepted for ACME requests.")
    if "kid" in protected and not isinstance(protected["kid"], str):
        raise JWSError("malformed", "The kid must be a string.")
    if "jwk" in protected and not isinstance(protected["jwk"], dict):
        raise JWSError("malformed", "The jwk must be a JSON object.")
    try:
        jws = cast(JWS, JWS.from_json(obj))
    # josepy reads untrusted JSON with plain attribute and key access: a wrong type or a
    # missing member deep in a jwk surfaces as any of these.
    except (jose.DeserializationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise JWSError("malformed", f"The JWS cannot be read: {exc}") from exc
    header = jws.signature.combined
    if not isinstance(protected.get("url"), str):
        raise JWSError("malformed", "The protected header needs a url.")
    if inner != ("nonce" not in protected) or not isinstance(protected.get("nonce", ""), str):
        raise JWSError(
            "malformed",
            "An inner keyChange JWS has no nonce."
            if inner
            else "The protected header needs a nonce.",
        )
    if (header.jwk is None) == (header.kid is None):
        raise JWSError("malformed", "The protected header needs exactly one of jwk and kid.")
    return Parsed(
        jws, alg, protected.get("nonce", ""), protected["url"], header.kid, header.jwk, jws.payload
    )


def _protected_header(encoded: Any) -> dict[str, Any]:
    try:
        header = json.loads(jose.b64.b64decode(encoded))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise JWSError("malformed", "The protected header is not base64url JSON.") from exc
    if not isinstance(header, dict):
        raise JWSError("malformed", "The protected header is not a JSON object.")
    return header


def check_account_key(key: jose.JWK) -> None:
    """Account keys are asymmetric public keys: RSA >= 2048, P-256, P-384, Ed25519."""
    if isinstance(key, jose.JWKRSA) and key.key.key_size >= 2048:
        return
    if isinstance(key, jose.JWKEC) and isinstance(key.key.curve, ec.SECP256R1 | ec.SECP384R1):
        return
    if isinstance(key, JWKOKP):
        return
    raise JWSError("badPublicKey", "Use an RSA (2048+), P-256, P-384 or Ed25519 public key.")


def verify(parsed: Parsed, key: jose.JWK) -> None:
    """The signature is by ``key`` with an algorithm that suits the key type."""
    if not _alg_suits(parsed.alg, key):
        raise _bad_algorithm(f"Algorithm {parsed.alg} does not fit this key.")
    try:
        valid = parsed.jws.verify(key)
    except (jose.Error, ValueError, TypeError):
        valid = False
    if not valid:
        raise JWSError("malformed", "The JWS signature is not valid.")


def _alg_suits(alg: str, key: jose.JWK) -> bool:
    if alg == "RS256":
        return isinstance(key, jose.JWKRSA) and isinstance(key.key._wrapped, rsa.RSAPublicKey)
    if alg in _EC_CURVE_FOR_ALG:
        return isinstance(key, jose.JWKEC) and isinstance(key.key.curve, _EC_CURVE_FOR_ALG[alg])
    return alg == "EdDSA" and isinstance(key, JWKOKP)


def jwk_for_public_key(public_key: Any) -> jose.JWK | None:
    """The JWK of a certificate's public key, for revocation by certificate key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return jose.JWKRSA(key=public_key)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return jose.JWKEC(key=public_key)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return JWKOKP(key=public_key)
    return None


def jwk_from_json(obj: Any) -> jose.JWK:
    return cast(jose.JWK, jose.JWK.from_json(obj))


def thumbprint(key: jose.JWK) -> str:
    return jose.encode_b64jose(key.thumbprint())


def load_jwk(obj: Any) -> jose.JWK:
    try:
        key = jwk_from_json(obj)
    except (jose.DeserializationError, ValueError, TypeError, KeyError) as exc:
        raise JWSError("badPublicKey", f"The JWK cannot be read: {exc}") from exc
    check_account_key(key)
    return key


def verify_eab(eab: Any, *, expected_url: str, account_key: jose.JWK, hmac_key: bytes) -> str:
    """Check an externalAccountBinding JWS (RFC 8555 7.3.4); returns its key id.

    The MAC is checked by josepy's HS256/384/512 with the HMAC key passed in."""
    if not isinstance(eab, dict):
        raise JWSError("malformed", "externalAccountBinding must be a flattened JWS.")
    try:
        inner = cast(JWS, JWS.from_json(eab))
        header = cast(Header, inner.signature.combined)
        payload_key = jwk_from_json(json.loads(inner.payload))
    except (jose.DeserializationError, ValueError, TypeError, KeyError) as exc:
        raise JWSError("malformed", f"externalAccountBinding cannot be read: {exc}") from exc
    if header.alg is None or header.alg.name not in ("HS256", "HS384", "HS512"):
        raise _bad_algorithm(
            "externalAccountBinding must use HS256/384/512.", ("HS256", "HS384", "HS512")
        )
    if header.url != expected_url or header.nonce is not None:
        raise JWSError("malformed", "externalAccountBinding has the wrong url, or a nonce.")
    if payload_key.thumbprint() != account_key.thumbprint():
        raise JWSError("malformed", "externalAccountBinding does not bind this account key.")
    if not inner.verify(jose.JWKOct(key=hmac_key)):
        raise JWSError("unauthorized", "externalAccountBinding MAC is wrong.", 403)
    return str(header.kid)


def eab_key_id(eab: Any) -> str:
    """The kid of an externalAccountBinding, read before its MAC can be checked."""
    try:
        header = _protected_header(eab["protected"])
    except (KeyError, TypeError) as exc:
        raise JWSError("malformed", "externalAccountBinding has no protected header.") from exc
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise JWSError("malformed", "externalAccountBinding has no kid.")
    return kid
