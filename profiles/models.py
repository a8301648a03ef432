"""Certificate authorities and the certificate profiles that issue from them."""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict
from threading import Lock
from typing import Any

from cryptography import x509
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from certportal.secrets import SealedField, unseal_for
from pki import certs, export, keys, policy
from profiles.choices import CAKind, CAStatus, Preset

_ISSUER_CACHE: OrderedDict[tuple[Any, ...], certs.Issuer] = OrderedDict()
_ISSUER_CACHE_LOCK = Lock()
_ISSUER_CACHE_SIZE = 64


class CertificateAuthority(models.Model):
    """A CA that signs certificates: internal root or intermediate, imported, or external."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=63, unique=True)
    kind = models.CharField(max_length=16, choices=CAKind.choices)
    status = models.CharField(max_length=24, choices=CAStatus.choices, default=CAStatus.ACTIVE)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    key_algorithm = models.CharField(max_length=16)
    private_key = SealedField()
    certificate_pem = models.TextField(blank=True)
    # The certificates above this CA, nearest first (empty for a root).
    chain_pem = models.TextField(blank=True)
    csr_pem = models.TextField(blank=True)
    subject = models.CharField(max_length=500)
    serial_number = models.CharField(max_length=64, blank=True)
    fingerprint_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    path_length = models.PositiveSmallIntegerField(null=True, blank=True)
    permitted_dns = models.JSONField(default=list, blank=True)
    excluded_dns = models.JSONField(default=list, blank=True)
    crl_number = models.BigIntegerField(default=0)
    crl_der = models.BinaryField(null=True, blank=True)
    crl_this_update = models.DateTimeField(null=True, blank=True)
    crl_next_update = models.DateTimeField(null=True, blank=True)
    # Raised by every revocation; the next CRL fetch or the refresh task rebuilds.
    crl_stale = models.BooleanField(default=True)
    # Delegated OCSP responder (RFC 6960 4.2.2.2): short-lived, renewed before it expires,
    # so the CA key itself signs only certificates and CRLs.
    ocsp_signer_pem = models.TextField(blank=True)
    ocsp_signer_key = SealedField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "certificate authority"
        verbose_name_plural = "certificate authorities"

    def __str__(self) -> str:
        return self.name

    @property
    def is_usable(self) -> bool:
        return self.status == CAStatus.ACTIVE and bool(self.certificate_pem)

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())

    def chain(self) -> list[x509.Certificate]:
        """This CA's certificate followed by the ones above it."""
        above = export.load_certificates(self.chain_pem) if self.chain_pem else []
        return [self.certificate(), *above]

    def chain_pem_with_self(self) -> str:
        return (
            self.certificate_pem.strip()
            + "\n"
            + (self.chain_pem.strip() + "\n" if self.chain_pem else "")
        )

    def load_private_key(self) -> keys.PrivateKey:
        return keys.load_private_key(unseal_for(self, "private_key"))

    def urls(self) -> dict[str, str]:
        base = settings.CERTPORTAL_BASE_URL
        return {
            "crl_url": base + reverse("issuance:crl", args=[self.slug]),
            "ocsp_url": base + reverse("issuance:ocsp", args=[self.slug]),
            "ca_issuers_url": base + reverse("issuance:ca-certificate", args=[self.slug]),
        }

    def issuer(self) -> certs.Issuer:
        """The signing context, cached per process: unsealing and parsing cost more than signing."""
        cache_key = (self.pk, self.private_key, self.certificate_pem, settings.CERTPORTAL_BASE_URL)
        with _ISSUER_CACHE_LOCK:
            cached = _ISSUER_CACHE.get(cache_key)
            if cached is not None:
                _ISSUER_CACHE.move_to_end(cache_key)
                return cached
        issuer = certs.Issuer(
            certificate=self.certificate(), private_key=self.load_private_key(), **self.urls()
        )
        with _ISSUER_CACHE_LOCK:
            _ISSUER_CACHE[cache_key] = issuer
            while len(_ISSUER_CACHE) > _ISSUER_CACHE_SIZE:
                _ISSUER_CACHE.popitem(last=False)
        return issuer


def ocsp_responder(ca: CertificateAuthority) -> tuple[x509.Certificate, keys.PrivateKey]:
    """The delegated responder's certificate and key, cached per process like issuers."""
    cache_key = ("ocsp", ca.pk, ca.ocsp_signer_key, ca.ocsp_signer_pem)
    with _ISSUER_CACHE_LOCK:
        cached = _RESPONDER_CACHE.get(cache_key)
    if cached is None:
        cert = x509.load_pem_x509_certificate(ca.ocsp_signer_pem.encode())
        cached = (cert, keys.load_private_key(unseal_for(ca, "ocsp_signer_key")))
        with _ISSUER_CACHE_LOCK:
            if len(_RESPONDER_CACHE) >= _ISSUER_CACHE_SIZE:
                _RESPONDER_CACHE.clear()
            _RESPONDER_CACHE[cache_key] = cached
    return cached


_RESPONDER_CACHE: dict[tuple[Any, ...], tuple[x509.Certificate, keys.PrivateKey]] = {}


def _strings(value: Any, field: str, what: str, fail: Any) -> list[str]:
    """The value if it is a list of strings; otherwise report it against field, and []."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(field, f"{what} must be a list of strings.")
        return []
    return value


class CertificateProfile(models.Model):
    """What may be issued from a CA: validity, keys, usages, names, subject rules."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=63, unique=True)
    description = models.TextField(blank=True, max_length=2000)
    preset = models.CharField(max_length=16, choices=Preset.choices, default=Preset.CUSTOM)
    issuing_ca = models.ForeignKey(
        CertificateAuthority, on_delete=models.PROTECT, related_name="profiles"
    )
    is_active = models.BooleanField(default=True)
    validity_days_default = models.PositiveIntegerField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(36500)]
    )
    validity_days_max = models.PositiveIntegerField(
        default=397, validators=[MinValueValidator(1), MaxValueValidator(36500)]
    )
    key_algorithms = models.JSONField(default=list, blank=True)  # ["RSA", "EC", "ED25519"]
    rsa_min_bits = models.PositiveIntegerField(default=2048)
    ec_curves = models.JSONField(default=list, blank=True)  # ["P-256", "P-384"]
    key_usages = models.JSONField(default=list, blank=True)
    extended_key_usages = models.JSONField(default=list, blank=True)
    dns_rules = models.JSONField(default=list, blank=True)
    allow_wildcards = models.BooleanField(default=True)
    ip_cidrs = models.JSONField(default=list, blank=True)
    email_patterns = models.JSONField(default=list, blank=True)
    uri_patterns = models.JSONField(default=list, blank=True)
    subject_rules = models.JSONField(default=dict, blank=True)
    copy_cn_to_sans = models.BooleanField(default=True)
    require_san = models.BooleanField(default=True)
    max_sans = models.PositiveIntegerField(default=100, validators=[MinValueValidator(1)])
    allow_server_keygen = models.BooleanField(default=True)
    renewal_window_days = models.PositiveIntegerField(default=30)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def policy(self) -> policy.Policy:
        rules = {
            attr: policy.SubjectRule(mode=rule.get("mode", "drop"), pattern=rule.get("pattern", ""))
            for attr, rule in (self.subject_rules or {}).items()
        }
        return policy.Policy(
            validity_days_default=self.validity_days_default,
            validity_days_max=self.validity_days_max,
            key_algorithms=frozenset(self.key_algorithms or ["RSA", "EC", "ED25519"]),
            rsa_min_bits=self.rsa_min_bits,
            ec_curves=frozenset(self.ec_curves or ["P-256", "P-384"]),
            key_usages=tuple(self.key_usages),
            extended_key_usages=tuple(self.extended_key_usages),
            dns_rules=tuple(self.dns_rules),
            allow_wildcards=self.allow_wildcards,
            ip_cidrs=tuple(self.ip_cidrs),
            email_patterns=tuple(self.email_patterns),
            uri_patterns=tuple(self.uri_patterns),
            subject_rules=rules or policy.Policy().subject_rules,
            copy_cn_to_sans=self.copy_cn_to_sans,
            require_san=self.require_san,
            max_sans=self.max_sans,
        )

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}

        def fail(field: str, message: str) -> None:
            errors.setdefault(field, []).append(message)

        if self.validity_days_default > self.validity_days_max:
            fail("validity_days_default", "The default validity cannot exceed the maximum.")
        if self.renewal_window_days >= self.validity_days_default:
            fail(
                "renewal_window_days",
                f"The renewal window ({self.renewal_window_days} days) must be shorter than the "
                f"default validity ({self.validity_days_default} days), or renewal would loop.",
            )
        self._clean_keys(fail)
        self._clean_names(fail)
        self._clean_usages(fail)
        self._clean_subject_rules(fail)
        if errors:
            raise ValidationError(errors)

    def _clean_keys(self, fail: Any) -> None:
        unknown = set(_strings(self.key_algorithms, "key_algorithms", "Key algorithms", fail)) - {
            "RSA",
            "EC",
            "ED25519",
        }
        if unknown:
            fail("key_algorithms", f"Unknown key algorithms: {', '.join(sorted(unknown))}.")
        bad_curves = set(_strings(self.ec_curves, "ec_curves", "Curves", fail)) - {
            "P-256",
            "P-384",
            "P-521",
        }
        if bad_curves:
            fail("ec_curves", f"Unknown curves: {', '.join(sorted(bad_curves))}.")
        if self.rsa_min_bits < 2048:
            fail("rsa_min_bits", "RSA keys below 2048 bits are not allowed.")

    def _clean_names(self, fail: Any) -> None:
        for rule in _strings(self.dns_rules, "dns_rules", "DNS rules", fail):
            reason = policy.validate_dns_rule(rule)
            if reason:
                fail("dns_rules", f"DNS rule {rule!r}: {reason}")
        for cidr in _strings(self.ip_cidrs, "ip_cidrs", "IP ranges", fail):
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                fail("ip_cidrs", f"{cidr!r} is not a CIDR network: {exc}")
        _strings(self.email_patterns, "email_patterns", "Email patterns", fail)
        _strings(self.uri_patterns, "uri_patterns", "URI patterns", fail)

    def _clean_usages(self, fail: Any) -> None:
        for usage in _strings(self.key_usages, "key_usages", "Key usages", fail):
            if usage not in certs.KEY_USAGE_NAMES:
                fail("key_usages", f"Unknown key usage {usage!r}.")
        for eku in _strings(
            self.extended_key_usages, "extended_key_usages", "Extended key usages", fail
        ):
            try:
                certs.parse_eku(eku)
            except ValueError:
                fail("extended_key_usages", f"Unknown extended key usage {eku!r}.")

    def _clean_subject_rules(self, fail: Any) -> None:
        if not isinstance(self.subject_rules, dict):
            fail("subject_rules", "Subject rules must be a mapping of attribute to rule.")
            return
        for attr, rule in self.subject_rules.items():
            if attr not in ("CN", "O", "OU", "C"):
                fail("subject_rules", f"Subject attribute {attr!r} is not supported.")
                continue
            if not isinstance(rule, dict) or rule.get("mode") not in (
                "drop",
                "optional",
                "required",
            ):
                fail("subject_rules", f"{attr}: mode must be drop, optional or required.")
                continue
            try:
                re.compile(rule.get("pattern", ""))
            except re.error as exc:
                fail("subject_rules", f"{attr}: pattern is not a valid regular expression ({exc}).")


def issuer_cache_clear() -> None:
    with _ISSUER_CACHE_LOCK:
        _ISSUER_CACHE.clear()
