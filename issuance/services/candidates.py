"""An ask turned into a candidate: its CSR parsed or its key spec read, decided by
the profile's policy, and its key checked against the blocked list."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from django.utils import timezone

from issuance.models import BlockedKey
from issuance.services._common import Ask, IssuanceRejected, KeySpec
from pki import csr as pki_csr
from pki import keys, policy
from pki.errors import PKIError
from profiles.models import CertificateAuthority

if TYPE_CHECKING:
    from profiles.models import CertificateProfile


@dataclass(frozen=True)
class _Candidate:
    """An ask parsed and decided by policy, ready to be stored and signed."""

    ask: Ask
    public_key: keys.PublicKey | None
    policy_request: policy.Request
    decision: policy.Decision
    csr_pem: str = ""

    @cached_property
    def spki_sha256(self) -> str | None:
        """The hash of a key the requester brought (CSR or reused key); a key the
        portal is about to generate is new, so it has none to check."""
        return keys.spki_sha256(self.public_key) if self.public_key is not None else None


def _blocked_keys(candidates: Iterable[_Candidate]) -> set[str]:
    """Which of the candidates' keys were reported compromised: one indexed query for
    the batch, none when every key is generated here."""
    hashes = {digest for c in candidates if (digest := c.spki_sha256)}
    if not hashes:
        return set()
    return set(BlockedKey.objects.filter(spki_sha256__in=hashes).values_list("pk", flat=True))


def _compromised_key(candidate: _Candidate) -> IssuanceRejected:
    return IssuanceRejected(
        "bad_key",
        "This key was reported compromised (a certificate with it was revoked for "
        "keyCompromise); generate a new key.",
        "csr" if candidate.ask.csr is not None else None,
    )


def _candidate(
    ask: Ask, profile: CertificateProfile, rules: policy.Policy, ca: CertificateAuthority
) -> _Candidate:
    if (ask.csr is None) == (ask.key_spec is None):
        raise IssuanceRejected("malformed", "Give either a CSR or a key specification.")
    if ask.csr is not None:
        public_key, request, csr_pem = _from_csr(ask.csr, ask.validity_days)
    else:
        assert ask.key_spec is not None
        public_key, csr_pem = None, ""
        request = _from_key_spec(ask.key_spec, profile, ask.validity_days)
        if ask.reuse_key_pem is not None:
            public_key = keys.load_private_key(ask.reuse_key_pem).public_key()
            request = replace(request, key_info=keys.describe_public_key(public_key))
    decision = _decide(rules, ca, request)
    return _Candidate(ask, public_key, request, decision, csr_pem)


def _from_csr(
    csr: bytes | str | pki_csr.ParsedCSR, validity_days: int | None
) -> tuple[keys.PublicKey, policy.Request, str]:
    if isinstance(csr, pki_csr.ParsedCSR):
        parsed = csr
    else:
        try:
            parsed = pki_csr.parse_csr(csr)
        except PKIError as exc:
            raise IssuanceRejected(exc.code, exc.message, "csr") from exc
    return parsed.public_key, policy.Request.from_csr(parsed, validity_days), parsed.pem


def split_sans(sans: Sequence[str]) -> dict[str, list[str]]:
    """Sort free-form SAN strings into DNS names, IPs, emails and URIs."""
    kinds: dict[str, list[str]] = {"dns": [], "ip": [], "email": [], "uri": []}
    for raw in sans:
        value = raw.strip()
        try:
            kinds["ip"].append(str(ipaddress.ip_address(value)))
            continue
        except ValueError:
            pass
        if "://" in value:
            kinds["uri"].append(value)
        elif "@" in value:
            kinds["email"].append(value)
        else:
            kinds["dns"].append(value.lower())
    return kinds


def _from_key_spec(
    spec: KeySpec, profile: CertificateProfile, validity_days: int | None
) -> policy.Request:
    if not profile.allow_server_keygen:
        raise IssuanceRejected(
            "bad_key",
            f"Profile {profile.slug} does not allow server-generated keys.",
            "key_algorithm",
        )
    try:
        key_info = keys.key_info_for(spec.algorithm)
    except ValueError as exc:
        raise IssuanceRejected("bad_key", str(exc), "key_algorithm") from exc
    kinds = split_sans(spec.sans)
    attrs = {k: [v] for k, v in spec.subject_attrs.items() if v}
    return policy.Request(
        key_info=key_info,
        common_name=spec.common_name or None,
        subject_attrs=attrs,
        dns_names=kinds["dns"],
        ip_addresses=kinds["ip"],
        emails=kinds["email"],
        uris=kinds["uri"],
        validity_days=validity_days,
    )


def _decide(
    rules: policy.Policy, ca: CertificateAuthority, request: policy.Request
) -> policy.Decision:
    assert ca.not_after is not None
    try:
        return policy.evaluate(rules, request, now=timezone.now(), ca_not_after=ca.not_after)
    except PKIError as exc:
        raise IssuanceRejected(exc.code, exc.message, exc.field) from exc
