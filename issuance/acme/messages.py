"""ACME wire format (RFC 8555, RFC 8737, RFC 9773): problem documents, the JSON of
directory, account, order, authorization and challenge objects, and request payloads."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import josepy as jose
from cryptography import x509

from certportal.refusals import Refused

if TYPE_CHECKING:
    from issuance.acme.models import Account, Authorization, Challenge, Order

ERROR_NS = "urn:ietf:params:acme:error:"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
PEM_CHAIN = "application/pem-certificate-chain"
JOSE_JSON = "application/jose+json"

# Refusal codes of the service verbs (certportal.refusals.Refused) -> ACME problem
# types (RFC 8555 6.7). A code not listed is malformed.
REFUSAL_PROBLEMS = {
    "malformed": "malformed",
    "bad_csr": "badCSR",
    "bad_key": "badCSR",
    "bad_subject": "badCSR",
    "rejected_identifier": "rejectedIdentifier",
    "already_renewed": "alreadyReplaced",
    "already_revoked": "alreadyRevoked",
    "bad_reason": "badRevocationReason",
    "bad_validity": "malformed",
    "profile_unavailable": "serverInternal",
    "ca_unavailable": "serverInternal",
}
# At finalize, already_revoked is about the certificate the order replaces, not one the
# client asked to revoke, which is all alreadyRevoked means.
FINALIZE_PROBLEMS = {**REFUSAL_PROBLEMS, "already_revoked": "malformed"}


class AcmeProblem(Exception):
    """An RFC 8555 problem document to send instead of the resource. ``retry_after``
    (seconds) becomes a Retry-After header, as rateLimited needs (RFC 8555 6.6);
    ``location`` a Location header, as a keyChange conflict needs (7.3.5)."""

    def __init__(
        self,
        kind: str,
        detail: str,
        status: int = 400,
        subproblems: list[dict[str, Any]] | None = None,
        retry_after: int | None = None,
        location: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.subproblems = subproblems or []
        self.retry_after = retry_after
        self.location = location
        self.extra = extra

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": ERROR_NS + self.kind, "detail": self.detail}
        body["status"] = self.status
        if self.subproblems:
            body["subproblems"] = self.subproblems
        body.update(self.extra)
        return body


def problem_for(refused: Refused, problems: dict[str, str] = REFUSAL_PROBLEMS) -> AcmeProblem:
    """A service refusal as the problem document an ACME client understands."""
    return AcmeProblem(problems.get(refused.code, "malformed"), refused.message)


def subproblem(problem: AcmeProblem, identifier: dict[str, Any]) -> dict[str, Any]:
    """One identifier's refusal, as a subproblem (RFC 8555 6.7.1)."""
    return {"type": ERROR_NS + problem.kind, "detail": problem.detail, "identifier": identifier}


def raise_identifier_problems(refused: list[dict[str, Any]]) -> None:
    """Refuse an order for its identifiers' subproblems: one refusal as itself, several
    under one problem of their common type (malformed when they differ, as RFC 8555
    6.7.1's example), each naming its identifier."""
    if not refused:
        return
    kinds = {sub["type"].removeprefix(ERROR_NS) for sub in refused}
    kind = kinds.pop() if len(kinds) == 1 else "malformed"
    if len(refused) == 1:
        raise AcmeProblem(kind, refused[0]["detail"], subproblems=refused)
    details = "; ".join(sub["detail"] for sub in refused)
    raise AcmeProblem(
        kind, f"{len(refused)} identifiers were refused: {details}", subproblems=refused
    )


def problem(kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A problem document as stored on orders and challenges."""
    return {"type": ERROR_NS + kind, "detail": detail, **extra}


def timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Request payloads -------------------------------------------------------------------


def parse_json_object(payload: bytes) -> dict[str, Any]:
    """A non-empty JWS payload as a JSON object."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AcmeProblem("malformed", "The payload is not JSON.") from exc
    if not isinstance(obj, dict):
        raise AcmeProblem("malformed", "The payload must be a JSON object.")
    return obj


def parse_contacts(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise AcmeProblem("malformed", "contact must be a list of strings.")
    for contact in value:
        if not contact.startswith("mailto:") or "@" not in contact or "," in contact:
            raise AcmeProblem("unsupportedContact", f"Contact {contact!r} is not a mailto: URL.")
    if len(value) > 10:
        raise AcmeProblem("malformed", "At most 10 contacts.")
    return list(value)


@dataclass(frozen=True)
class Identifier:
    """One order identifier, normalised (lowercase names, compressed IPs)."""

    type: str
    value: str

    @property
    def wildcard(self) -> bool:
        return self.type == "dns" and self.value.startswith("*.")

    @property
    def base(self) -> str:
        return self.value[2:] if self.wildcard else self.value

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}


@dataclass(frozen=True)
class NewOrder:
    """A newOrder payload."""

    identifiers: list[Identifier]
    replaces: str | None = None
    profile: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_new_order(payload: dict[str, Any]) -> NewOrder:
    raw = payload.get("identifiers")
    if not isinstance(raw, list) or not raw:
        raise AcmeProblem("malformed", "identifiers must be a non-empty list.")
    if len(raw) > 100:
        raise AcmeProblem("rejectedIdentifier", "At most 100 identifiers per order.")
    parsed, refused = [], []
    for item in raw:
        try:
            parsed.append(_identifier(item))
        except AcmeProblem as problem:
            refused.append(subproblem(problem, _as_given(item)))
    raise_identifier_problems(refused)
    identifiers = list(dict.fromkeys(parsed))
    if payload.get("notBefore") or payload.get("notAfter"):
        raise AcmeProblem(
            "malformed", "notBefore and notAfter are not supported; the profile sets validity."
        )
    replaces = payload.get("replaces")
    if replaces is not None and not isinstance(replaces, str):
        raise AcmeProblem("malformed", "replaces must be a string.")
    profile = payload.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise AcmeProblem("malformed", "profile must be a string.")
    return NewOrder(identifiers=identifiers, replaces=replaces, profile=profile)


def _as_given(item: Any) -> dict[str, Any]:
    """An identifier as the client sent it, for a subproblem (strings only)."""
    if not isinstance(item, dict):
        return {}
    return {k: item[k] for k in ("type", "value") if isinstance(item.get(k), str)}


def _identifier(item: Any) -> Identifier:
    if not isinstance(item, dict) or not isinstance(item.get("value"), str):
        raise AcmeProblem("malformed", "Each identifier needs a type and a value.")
    kind, value = item.get("type"), item["value"].strip()
    if kind == "dns":
        return Identifier("dns", value.lower().rstrip("."))
    if kind == "ip":
        try:
            return Identifier("ip", str(ipaddress.ip_address(value)))
        except ValueError:
            raise AcmeProblem("malformed", f"{value!r} is not an IP address.") from None
    raise AcmeProblem("unsupportedIdentifier", f"Identifier type {kind!r} is not supported.")


def csr_from_finalize(payload: dict[str, Any]) -> bytes:
    """The DER CSR of a finalize payload."""
    encoded = payload.get("csr")
    if not isinstance(encoded, str):
        raise AcmeProblem("malformed", "finalize needs a csr.")
    try:
        return jose.decode_b64jose(encoded)
    except (ValueError, TypeError, jose.DeserializationError) as exc:
        raise AcmeProblem("badCSR", "The csr is not base64url.") from exc


def certificate_from_revoke(payload: dict[str, Any]) -> tuple[x509.Certificate, int]:
    """The certificate and reason code of a revokeCert payload."""
    encoded = payload.get("certificate")
    try:
        if not isinstance(encoded, str):
            raise TypeError("not a string")
        cert = x509.load_der_x509_certificate(jose.decode_b64jose(encoded))
    except (ValueError, TypeError, jose.DeserializationError) as exc:
        raise AcmeProblem("malformed", "revokeCert needs a DER certificate, base64url.") from exc
    reason = payload.get("reason", 0)
    if not isinstance(reason, int):
        raise AcmeProblem("badRevocationReason", "reason must be an integer.")
    return cert, reason


# RFC 5280 CRLReason codes -> issuance.choices.RevocationReason values (7 is unused,
# 8 removeFromCRL is not a reason a subscriber may give).
REVOCATION_REASONS = {
    0: "unspecified",
    1: "keyCompromise",
    3: "affiliationChanged",
    4: "superseded",
    5: "cessationOfOperation",
}


# --- Key authorizations (RFC 8555 8.1, 8.4; RFC 8737) -----------------------------------


def key_authorization(token: str, thumbprint: str) -> str:
    return f"{token}.{thumbprint}"


def dns01_txt(key_auth: str) -> str:
    return jose.encode_b64jose(hashlib.sha256(key_auth.encode()).digest())


def tls_alpn01_digest(key_auth: str) -> bytes:
    return hashlib.sha256(key_auth.encode()).digest()


# --- ARI (RFC 9773) ---------------------------------------------------------------------


def ari_cert_id(aki: bytes, serial: int) -> str:
    """The renewalInfo path component of a certificate: base64url(AKI) "." base64url(serial)."""
    length = (serial.bit_length() + 8) // 8
    serial_der = serial.to_bytes(length, "big", signed=True)
    return f"{jose.encode_b64jose(aki)}.{jose.encode_b64jose(serial_der)}"


def parse_ari_cert_id(cert_id: str) -> tuple[bytes, int]:
    try:
        aki_part, serial_part = cert_id.split(".")
        aki = jose.decode_b64jose(aki_part)
        serial = int.from_bytes(jose.decode_b64jose(serial_part), "big", signed=True)
    except (ValueError, TypeError, jose.DeserializationError) as exc:
        raise AcmeProblem(
            "malformed", "The certificate id is not AKI.serial in base64url."
        ) from exc
    if not aki or serial <= 0:
        raise AcmeProblem("malformed", "The certificate id is not AKI.serial in base64url.")
    return aki, serial


def renewal_info(start: datetime, end: datetime) -> dict[str, Any]:
    return {"suggestedWindow": {"start": timestamp(start), "end": timestamp(end)}}


# --- Resource representations -----------------------------------------------------------


@dataclass(frozen=True)
class Urls:
    """Absolute URLs of one Application's ACME objects, for one directory."""

    directory_base: str  # .../acme/<app>/<profile>
    object_base: str  # .../acme/<app>

    def directory(self) -> dict[str, str]:
        base = self.directory_base
        return {
            "newNonce": f"{base}/new-nonce",
            "newAccount": f"{base}/new-account",
            "newOrder": f"{base}/new-order",
            "revokeCert": f"{base}/revoke-cert",
            "keyChange": f"{base}/key-change",
            "renewalInfo": f"{base}/renewal-info",
        }

    def index(self) -> str:
        return f"{self.directory_base}/directory"

    def account(self, account_id: str) -> str:
        return f"{self.object_base}/acct/{account_id}"

    def obj(self, kind: str, obj_id: str) -> str:
        return f"{self.object_base}/{kind}/{obj_id}"


def directory(urls: Urls, terms_url: str, website: str, profile: tuple[str, str]) -> dict[str, Any]:
    """The directory; meta.profiles names the one profile this directory issues (the
    ACME profiles extension, draft-ietf-acme-profiles), as slug -> description."""
    slug, description = profile
    return {
        **urls.directory(),
        "meta": {
            "termsOfService": terms_url,
            "website": website,
            "externalAccountRequired": True,
            "profiles": {slug: description or slug},
        },
    }


def account_json(account: Account, urls: Urls) -> dict[str, Any]:
    return {
        "status": account.status,
        "contact": account.contact,
        "orders": urls.account(account.id) + "/orders",
        "termsOfServiceAgreed": True,
        "externalAccountBinding": None,
    }


def order_json(order: Order, authz_ids: list[str], urls: Urls) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": order.status,
        "expires": timestamp(order.expires_at),
        "identifiers": order.identifiers,
        "authorizations": [urls.obj("authz", a) for a in authz_ids],
        "finalize": urls.obj("order", order.id) + "/finalize",
    }
    if order.replaces_ari:
        body["replaces"] = order.replaces_ari
    if order.error:
        body["error"] = order.error
    if order.certificate_id:
        body["certificate"] = urls.obj("cert", str(order.certificate_id))
    return body


def challenge_json(challenge: Challenge, urls: Urls) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": challenge.type,
        "url": urls.obj("chall", challenge.id),
        "status": challenge.status,
        "token": challenge.token,
    }
    if challenge.validated_at:
        body["validated"] = timestamp(challenge.validated_at)
    if challenge.error:
        body["error"] = challenge.error
    return body


def authorization_json(
    authz: Authorization, challenges: Sequence[Challenge], urls: Urls
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "identifier": {
            "type": authz.identifier_type,
            "value": authz.identifier_value,
        },
        "status": authz.status,
        "expires": timestamp(authz.expires_at),
        "challenges": [challenge_json(c, urls) for c in challenges],
    }
    if authz.wildcard:
        body["wildcard"] = True
    return body
