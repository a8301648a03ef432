"""Issuance policy: decides what an issued certificate may contain.

Pure logic, no signing: ``evaluate(policy, request, now=..., ca_not_after=...)`` either
returns a ``Decision`` (exactly what goes into the certificate) or raises ``PolicyViolation``
with a message that can be shown to the requester verbatim and the ``field`` it is about.

Checks run in a fixed order so the first error a requester sees is the most fundamental:
key -> subject -> subject alternative names -> validity.

DNS rules (``Policy.dns_rules``), matched case-insensitively:

* ``example.test`` allows exactly ``example.test``.
* ``*.example.test`` allows any name exactly one label below (``app.example.test``, not
  ``a.b.example.test`` nor ``example.test``) and, when ``allow_wildcards``, the wildcard
  name ``*.example.test`` itself.
* ``.example.test`` allows any name at any depth below ``example.test`` (but not
  ``example.test`` itself) and, when ``allow_wildcards``, wildcard names at any depth below
  it (``*.example.test``, ``*.a.example.test``): every name such a wildcard covers is
  itself allowed by the rule.
* No rules means no DNS names at all (deny by default, like IPs, emails and URIs).

A wildcard name is only ever ``*.`` followed by a valid hostname; ``*`` anywhere else
(``a*.example.test``, ``a.*.example.test``) makes the name invalid. Names must be valid
hostnames: LDH labels (letters, digits, hyphens, not at either end) of at most 63 characters,
at most 253 characters in total, ASCII only (IDNA A-labels such as ``xn--bcher-kva.test`` are
fine), no trailing dot, and not an IP address in disguise.

The subject is policy too. No attribute the requester sends, kept or dropped, may carry a
control character (C0, DEL, C1), NUL, a line separator or an unpaired surrogate, and a CN
is at most 64 characters. A kept CN has no surrounding spaces and no trailing dot; an IP
address CN must be allowed by ``ip_cidrs``; a ``*`` in it makes it a wildcard name, valid
only as ``*.`` + hostname and only when ``allow_wildcards``. A CN that is a hostname must
pass the DNS rules when the profile copies the CN to the SANs (then also a single label
such as ``jsmith``), or when it is dotted (``app.example.test``) unless the profile's CN
pattern admitted it; a CN no host could have (``Alice Smith``) only meets the subject rules.
A kept emailAddress must be allowed by ``email_patterns``, like an email SAN.

IP SANs must lie inside one of ``ip_cidrs``. Emails and URIs must match one of the
fnmatch-style ``email_patterns`` (case-insensitive) / ``uri_patterns`` (case-sensitive); an
empty list allows none.

Requested validity above ``validity_days_max`` is clamped rather than rejected, because
clients such as ACME/EST rarely let the user pick and a shorter certificate is harmless.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509

from pki.errors import PolicyViolation
from pki.keys import KeyInfo
from pki.names import ATTRIBUTE_OIDS, name_attrs
from pki.usages import check_key_usage, parse_eku

if TYPE_CHECKING:
    from pki.csr import ParsedCSR

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SUBJECT_RULE_MODES = ("drop", "optional", "required")
BACKDATE = timedelta(seconds=60)  # tolerate relying parties whose clocks run a little slow
MIN_CA_REMAINING = timedelta(hours=1)
MAX_CN_LENGTH = 64  # X.520 ub-common-name; cryptography refuses longer values anyway

_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_KEY_FAMILIES = ("RSA", "EC", "ED25519")


# --------------------------------------------------------------------------- DNS names


def validate_dns_name(name: str) -> str | None:
    """Why ``name`` is not a valid (possibly wildcard) DNS name, or None when it is."""
    if not name:
        return "the name is empty"
    if not name.isascii():
        return "it contains non-ASCII characters (use the IDNA A-label form, xn--...)"
    if name.endswith("."):
        return "it ends with a dot"
    if len(name) > 253:
        return "it is longer than 253 characters"
    if _is_ip_address(name):
        return "it is an IP address (request an IP address SAN instead)"
    labels = name.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if not labels:
            return "a wildcard needs a domain after '*.'"
    return _label_error(labels)


def _label_error(labels: Sequence[str]) -> str | None:
    for label in labels:
        if not label:
            return "it contains an empty label"
        if "*" in label:
            return "a wildcard '*' is only allowed as the entire leftmost label"
        if len(label) > 63:
            return f'label "{label[:16]}..." is longer than 63 characters'
        if not _LDH_LABEL.fullmatch(label):
            if label.startswith("-") or label.endswith("-"):
                return f'label "{label}" starts or ends with a hyphen'
            return f'label "{label}" contains characters other than letters, digits and hyphens'
    return None


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def validate_dns_rule(rule: str) -> str | None:
    """Why a profile DNS rule is malformed, or None; for profile forms."""
    base = rule[2:] if rule.startswith("*.") else rule.removeprefix(".")
    if base.startswith("*"):
        return "only one leading '*.' or '.' is allowed"
    return validate_dns_name(base)


def _rule_allows(rule: str, name: str, allow_wildcards: bool) -> bool:
    wildcard_base = name[2:] if name.startswith("*.") else None
    if rule.startswith("*."):
        base = rule[2:]
        if wildcard_base is not None:
            return allow_wildcards and wildcard_base == base
        head, dot, tail = name.partition(".")
        return bool(dot) and tail == base and bool(head)
    if rule.startswith("."):
        if wildcard_base is not None:
            return allow_wildcards and (wildcard_base == rule[1:] or wildcard_base.endswith(rule))
        return name.endswith(rule) and len(name) > len(rule)
    return name == rule


def dns_name_allowed(rules: Iterable[str], name: str, allow_wildcards: bool) -> bool:
    """Whether any rule allows ``name`` (semantics in the module docstring)."""
    name = name.lower()
    return any(_rule_allows(rule.lower(), name, allow_wildcards) for rule in rules)


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class SubjectRule:
    mode: str = "drop"  # "drop" | "optional" | "required"
    pattern: str = ""  # full-match regex, "" = anything

    def __post_init__(self) -> None:
        if self.mode not in SUBJECT_RULE_MODES:
            raise ValueError(f"Subject rule mode must be one of {SUBJECT_RULE_MODES}")
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"Invalid subject pattern {self.pattern!r}: {exc}") from None

    def matches(self, value: str) -> bool:
        return not self.pattern or _compiled(self.pattern).fullmatch(value) is not None


_PATTERN_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERN_CACHE.get(pattern)
    if compiled is None:
        compiled = _PATTERN_CACHE[pattern] = re.compile(pattern)
    return compiled


def _default_subject_rules() -> Mapping[str, SubjectRule]:
    return MappingProxyType(
        {
            "CN": SubjectRule("optional"),
            "O": SubjectRule("drop"),
            "OU": SubjectRule("drop"),
            "C": SubjectRule("drop"),
        }
    )


def _subject_rule(value: SubjectRule | Mapping[str, Any]) -> SubjectRule:
    # Profiles are stored as JSON, so accept {"mode": ..., "pattern": ...} too.
    return value if isinstance(value, SubjectRule) else SubjectRule(**value)


@dataclass(frozen=True)
class Policy:
    """An issuance profile. Construction validates it (ValueError for a broken profile).

    Lists (e.g. from JSON) are accepted wherever tuples/frozensets are declared.
    """

    validity_days_default: int = 90
    validity_days_max: int = 397
    key_algorithms: frozenset[str] = frozenset({"RSA", "EC", "ED25519"})
    rsa_min_bits: int = 2048
    ec_curves: frozenset[str] = frozenset({"P-256", "P-384"})
    key_usages: tuple[str, ...] = ("digitalSignature", "keyEncipherment")
    extended_key_usages: tuple[str, ...] = ("serverAuth",)
    dns_rules: tuple[str, ...] = ()
    allow_wildcards: bool = True
    ip_cidrs: tuple[str, ...] = ()
    email_patterns: tuple[str, ...] = ()
    uri_patterns: tuple[str, ...] = ()
    subject_rules: Mapping[str, SubjectRule] = field(default_factory=_default_subject_rules)
    copy_cn_to_sans: bool = True
    require_san: bool = True
    max_sans: int = 100
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._normalise()
        self._validate()
        try:
            networks = tuple(ipaddress.ip_network(c, strict=False) for c in self.ip_cidrs)
        except ValueError as exc:
            raise ValueError(f"Invalid IP range in profile: {exc}") from None
        object.__setattr__(self, "_networks", networks)

    def _normalise(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "key_algorithms", frozenset(a.upper() for a in self.key_algorithms))
        setattr_(self, "ec_curves", frozenset(self.ec_curves))
        for name in ("key_usages", "extended_key_usages", "ip_cidrs", "uri_patterns"):
            setattr_(self, name, tuple(getattr(self, name)))
        setattr_(self, "dns_rules", tuple(r.strip().lower() for r in self.dns_rules))
        setattr_(self, "email_patterns", tuple(p.lower() for p in self.email_patterns))
        rules = {k: _subject_rule(v) for k, v in self.subject_rules.items()}
        setattr_(self, "subject_rules", MappingProxyType(rules))

    def _validate(self) -> None:
        if self.validity_days_default < 1 or self.validity_days_max < 1:
            raise ValueError("Validity days must be at least 1")
        unknown = self.key_algorithms - set(_KEY_FAMILIES)
        if unknown:
            raise ValueError(f"Unknown key algorithms {sorted(unknown)}")
        for usage in self.key_usages:
            check_key_usage(usage)
        for eku in self.extended_key_usages:
            parse_eku(eku)
        for rule in self.dns_rules:
            reason = validate_dns_rule(rule)
            if reason is not None:
                raise ValueError(f"Invalid DNS rule {rule!r}: {reason}")
        unknown_attrs = set(self.subject_rules) - set(ATTRIBUTE_OIDS)
        if unknown_attrs:
            raise ValueError(f"Unknown subject attributes {sorted(unknown_attrs)}")


# --------------------------------------------------------------------------- request / decision


@dataclass(frozen=True)
class Request:
    key_info: KeyInfo
    common_name: str | None = None
    subject_attrs: Mapping[str, Sequence[str]] = field(default_factory=dict)  # CN excluded
    dns_names: Sequence[str] = ()
    ip_addresses: Sequence[str | IPAddress] = ()
    emails: Sequence[str] = ()
    uris: Sequence[str] = ()
    validity_days: int | None = None

    @classmethod
    def from_csr(cls, parsed: ParsedCSR, validity_days: int | None = None) -> Request:
        attrs = name_attrs(parsed.subject)
        attrs.pop("CN", None)
        return cls(
            key_info=parsed.key_info,
            common_name=parsed.common_name,
            subject_attrs=attrs,
            dns_names=parsed.dns_names,
            ip_addresses=parsed.ip_addresses,
            emails=parsed.emails,
            uris=parsed.uris,
            validity_days=validity_days,
        )


@dataclass(frozen=True)
class Decision:
    subject: x509.Name
    common_name: str | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[IPAddress, ...]
    emails: tuple[str, ...]
    uris: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    key_usages: tuple[str, ...]
    extended_key_usages: tuple[str, ...]


@dataclass(frozen=True)
class _SANs:
    dns_names: tuple[str, ...]
    ip_addresses: tuple[IPAddress, ...]
    emails: tuple[str, ...]
    uris: tuple[str, ...]

    def count(self) -> int:
        return len(self.dns_names) + len(self.ip_addresses) + len(self.emails) + len(self.uris)


def evaluate(
    policy: Policy, request: Request, *, now: datetime, ca_not_after: datetime
) -> Decision:
    """Apply ``policy`` to ``request``; raise PolicyViolation on the first problem."""
    _check_key(policy, request.key_info)
    subject_attrs, common_name = _check_subject(policy, request)
    sans = _check_sans(policy, request, common_name)
    not_before, not_after = _validity(policy, request.validity_days, now, ca_not_after)
    return Decision(
        subject=x509.Name([x509.NameAttribute(ATTRIBUTE_OIDS[k], v) for k, v in subject_attrs]),
        common_name=common_name,
        dns_names=sans.dns_names,
        ip_addresses=sans.ip_addresses,
        emails=sans.emails,
        uris=sans.uris,
        not_before=not_before,
        not_after=not_after,
        key_usages=policy.key_usages,
        extended_key_usages=policy.extended_key_usages,
    )


# --------------------------------------------------------------------------- key


def _key_violation(message: str) -> PolicyViolation:
    return PolicyViolation(message, code="bad_key", field="key")


def _allowed_keys(policy: Policy) -> str:
    parts = []
    if "RSA" in policy.key_algorithms:
        parts.append(f"RSA ≥ {policy.rsa_min_bits} bits")
    if "EC" in policy.key_algorithms and policy.ec_curves:
        parts.append("EC " + "/".join(sorted(policy.ec_curves)))
    if "ED25519" in policy.key_algorithms:
        parts.append("Ed25519")
    return ", ".join(parts) or "none"


def _check_key(policy: Policy, info: KeyInfo) -> None:
    family_ok = info.family in policy.key_algorithms
    if not family_ok or (info.family == "EC" and not policy.ec_curves):
        raise _key_violation(
            f"Key type {info.label()} is not allowed by this profile "
            f"(allowed: {_allowed_keys(policy)})"
        )
    if info.family == "RSA" and info.bits < policy.rsa_min_bits:
        raise _key_violation(
            f"RSA key of {info.bits} bits is too small (minimum {policy.rsa_min_bits} bits)"
        )
    if info.family == "EC" and info.curve not in policy.ec_curves:
        raise _key_violation(
            f"EC curve {info.curve} is not allowed by this profile "
            f"(allowed: {', '.join(sorted(policy.ec_curves))})"
        )


# --------------------------------------------------------------------------- subject


def _subject_violation(message: str) -> PolicyViolation:
    return PolicyViolation(message, code="bad_subject", field="subject")


def bad_character(value: str) -> str | None:
    """What makes ``value`` unfit for a name (a control character, NUL, a line or paragraph
    separator, an unpaired surrogate), or None. Such characters forge extra lines in
    logs, mail headers and rendered alerts, and PostgreSQL refuses NUL in text outright."""
    if value.isprintable():
        return None
    for char in value:
        category = unicodedata.category(char)
        if char == "\x00":
            return "a NUL character (U+0000)"
        if category == "Cc":
            return f"a control character (U+{ord(char):04X})"
        if category in ("Zl", "Zp"):
            return f"a line or paragraph separator (U+{ord(char):04X})"
        if category == "Cs":
            return f"an unpaired surrogate (U+{ord(char):04X})"
    return None


def _check_characters(request: Request) -> None:
    """Every attribute the requester sent, kept or dropped: the request row keeps them all."""
    sent: list[tuple[str, str]] = [("CN", request.common_name)] if request.common_name else []
    sent += [(attr, v) for attr, values in request.subject_attrs.items() for v in values]
    for attr, value in sent:
        what = bad_character(value)
        if what is not None:
            raise _subject_violation(f"Subject {attr} contains {what}")
    if request.common_name and len(request.common_name) > MAX_CN_LENGTH:
        raise _subject_violation(f"Subject CN is longer than {MAX_CN_LENGTH} characters")


def _check_values(attr: str, rule: SubjectRule, values: Sequence[str]) -> None:
    if rule.mode == "required" and not values:
        raise _subject_violation(f"Subject {attr} is required by this profile")
    for value in values:
        if not rule.matches(value):
            raise _subject_violation(
                f'Subject {attr} "{value}" does not match the profile\'s pattern "{rule.pattern}"'
            )
        if attr == "C" and not (len(value) == 2 and value.isascii() and value.isalpha()):
            raise _subject_violation(f'Subject C "{value}" is not a two-letter country code')


def _check_subject(policy: Policy, request: Request) -> tuple[list[tuple[str, str]], str | None]:
    """Return the (attribute, value) pairs to copy, in DN order, and the kept CN."""
    _check_characters(request)
    kept: list[tuple[str, str]] = []
    for attr in ATTRIBUTE_OIDS:  # dict order is the DN order: C, ST, L, ..., O, OU, ..., CN
        rule = policy.subject_rules.get(attr)
        if rule is None or rule.mode == "drop":
            continue
        if attr == "CN":
            values = [request.common_name] if request.common_name else []
        else:
            values = [v for v in request.subject_attrs.get(attr, ()) if v]
        _check_values(attr, rule, values)
        kept.extend((attr, v) for v in values)
    for email in (v for a, v in kept if a == "emailAddress"):
        _check_subject_email(policy, email)
    common_name = next((v for a, v in kept if a == "CN"), None)
    if common_name is not None:
        _check_common_name(policy, policy.subject_rules["CN"], common_name)
    return kept, common_name


def _check_subject_email(policy: Policy, email: str) -> None:
    # Mail clients read emailAddress from the subject as readily as the SAN.
    if not _EMAIL.fullmatch(email) or not _email_allowed(policy, email):
        raise _subject_violation(
            f'Subject emailAddress "{email}" is not an email address this profile allows'
        )


def _check_common_name(policy: Policy, rule: SubjectRule, cn: str) -> None:
    """A CN is a name some relying party may still match a host against: it obeys the
    same rules as a SAN whenever it could name a host (see ``_cn_names_a_host``)."""
    if cn != cn.strip():
        raise _subject_violation(f'Subject CN "{cn}" starts or ends with a space')
    if cn.endswith("."):
        raise _subject_violation(f'Subject CN "{cn}" ends with a dot')
    if _is_ip_address(cn):
        _check_cn_ip(policy, cn)
        return
    if "*" in cn:
        reason = validate_dns_name(cn)
        if reason is not None:
            raise _subject_violation(f'Subject CN "{cn}" is not a valid wildcard name: {reason}')
        if not policy.allow_wildcards:
            raise _subject_violation(
                f'Subject CN "{cn}" is a wildcard name, which this profile does not allow'
            )
    if _cn_names_a_host(policy, rule, cn) and not dns_name_allowed(
        policy.dns_rules, cn, policy.allow_wildcards
    ):
        raise _subject_violation(f'Subject CN "{cn}" is a DNS name not allowed by this profile')


def _cn_names_a_host(policy: Policy, rule: SubjectRule, cn: str) -> bool:
    """Whether the CN must pass the DNS rules: any hostname when the profile copies the CN
    to the SANs; otherwise a wildcard, or a dotted hostname unless the profile's own CN
    pattern already admitted it (client profiles whose CNs are dotted user names)."""
    if validate_dns_name(cn) is not None:
        return False  # "Alice Smith", "ops@example.test": no host has such a name
    if policy.copy_cn_to_sans or cn.startswith("*."):
        return True
    return "." in cn and not rule.pattern


def _check_cn_ip(policy: Policy, cn: str) -> None:
    if not policy._networks:
        raise _subject_violation(
            f'Subject CN "{cn}" is an IP address, and this profile allows no IP addresses'
        )
    address = ipaddress.ip_address(cn)
    if not any(address in network for network in policy._networks):
        raise _subject_violation(f'Subject CN "{cn}" is an IP address not allowed by this profile')


# --------------------------------------------------------------------------- SANs


def _san_violation(message: str) -> PolicyViolation:
    return PolicyViolation(message, code="rejected_identifier", field="sans")


def _shown(value: str) -> str:
    """The value for a message, its unprintable characters escaped: messages are shown in
    pages and stored as reasons, where a NUL or a line break must not arrive raw."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in value)


def _check_dns_names(policy: Policy, names: Sequence[str]) -> None:
    for name in names:
        reason = validate_dns_name(name)
        if reason is not None:
            raise _san_violation(f'DNS name "{_shown(name)}" is invalid: {_shown(reason)}')
        if name.startswith("*.") and not policy.allow_wildcards:
            raise _san_violation(f'Wildcard name "{name}" is not allowed by this profile')
        if not dns_name_allowed(policy.dns_rules, name, policy.allow_wildcards):
            raise _san_violation(f'DNS name "{name}" is not allowed by this profile')


def _check_ips(policy: Policy, values: Sequence[str | IPAddress]) -> tuple[IPAddress, ...]:
    addresses: list[IPAddress] = []
    for value in values:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise _san_violation(f'IP address "{_shown(str(value))}" is invalid') from None
        if not any(address in network for network in policy._networks):
            raise _san_violation(f'IP address "{address}" is not allowed by this profile')
        addresses.append(address)
    return tuple(dict.fromkeys(addresses))


def _check_emails(policy: Policy, emails: Sequence[str]) -> None:
    for email in emails:
        if not _EMAIL.fullmatch(email) or not email.isprintable():
            raise _san_violation(f'Email address "{_shown(email)}" is invalid')
        if not _email_allowed(policy, email):
            raise _san_violation(f'Email address "{email}" is not allowed by this profile')


def _email_allowed(policy: Policy, email: str) -> bool:
    lowered = email.lower()
    return any(fnmatch.fnmatchcase(lowered, p) for p in policy.email_patterns)


def _check_uris(policy: Policy, uris: Sequence[str]) -> None:
    for uri in uris:
        if not _is_uri(uri):
            raise _san_violation(f'URI "{_shown(uri)}" is invalid')
        if not any(fnmatch.fnmatchcase(uri, p) for p in policy.uri_patterns):
            raise _san_violation(f'URI "{uri}" is not allowed by this profile')


def _is_uri(value: str) -> bool:
    if not value.isascii() or not value.isprintable() or " " in value:
        return False
    try:
        return bool(urlsplit(value).scheme)
    except ValueError:
        return False


def _with_cn(policy: Policy, common_name: str | None, sans: _SANs) -> _SANs:
    """Put the CN first among the SANs of its kind when the profile copies it and it names
    a host (a DNS name or an IP address; the subject checks already allowed it)."""
    if not common_name or not policy.copy_cn_to_sans:
        return sans
    if _is_ip_address(common_name):
        address = ipaddress.ip_address(common_name)
        if address not in sans.ip_addresses:
            sans = replace(sans, ip_addresses=(address, *sans.ip_addresses))
    elif validate_dns_name(common_name) is None:
        name = common_name.lower()
        if name not in sans.dns_names:
            sans = replace(sans, dns_names=(name, *sans.dns_names))
    return sans


def _check_sans(policy: Policy, request: Request, common_name: str | None) -> _SANs:
    dns = list(dict.fromkeys(name.lower() for name in request.dns_names))
    _check_dns_names(policy, dns)
    ips = _check_ips(policy, request.ip_addresses)
    emails = tuple(dict.fromkeys(request.emails))
    _check_emails(policy, emails)
    uris = tuple(dict.fromkeys(request.uris))
    _check_uris(policy, uris)
    sans = _with_cn(policy, common_name, _SANs(tuple(dns), ips, emails, uris))
    total = sans.count()
    if total > policy.max_sans:
        raise _san_violation(
            f"The request has {total} subject alternative names; "
            f"this profile allows at most {policy.max_sans}"
        )
    if total == 0 and policy.require_san:
        raise _san_violation(
            "The request has no subject alternative names; this profile requires at least one"
        )
    return sans


# --------------------------------------------------------------------------- validity


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are taken as UTC: that is what every X.509 time is.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _validity(
    policy: Policy, requested: int | None, now: datetime, ca_not_after: datetime
) -> tuple[datetime, datetime]:
    if requested is not None and requested < 1:
        raise PolicyViolation(
            f"Requested validity of {requested} days is invalid (minimum 1 day)",
            code="bad_validity",
            field="validity_days",
        )
    # Certificates carry whole seconds; truncating here keeps the Decision equal to the cert.
    now = _utc(now).replace(microsecond=0)
    ca_not_after = _utc(ca_not_after).replace(microsecond=0)
    if ca_not_after < now + MIN_CA_REMAINING:
        raise PolicyViolation(
            f"Issuing CA expires at {ca_not_after:%Y-%m-%d %H:%M:%S} UTC; "
            "it can no longer issue certificates",
            code="bad_validity",
        )
    days = min(
        requested if requested is not None else policy.validity_days_default,
        policy.validity_days_max,
    )
    return now - BACKDATE, min(now + timedelta(days=days), ca_not_after)
