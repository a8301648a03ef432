"""ACME orders: newOrder (identifiers checked against the profile, ARI's
"replaces"), bringing an order up to date, and expiring stale orders."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from applications.models import Application
from issuance.acme import limits, messages, nonces
from issuance.acme.choices import (
    AuthorizationStatus,
    ChallengeType,
    IdentifierType,
    OrderStatus,
)
from issuance.acme.messages import AcmeProblem, Identifier
from issuance.acme.models import (
    Account,
    Authorization,
    Challenge,
    Order,
)
from issuance.acme.services.authentication import Authenticated
from issuance.choices import CertificateStatus, RequestState
from issuance.models import Certificate
from pki import certs, policy
from profiles.models import CertificateProfile

# --- Orders -----------------------------------------------------------------------------


def new_order(
    account: Account, profile: CertificateProfile, auth: Authenticated
) -> tuple[Order, list[Authorization]]:
    """newOrder: check every identifier against the profile, then one authorization each."""
    request = messages.parse_new_order(auth.json())
    limits.new_order(account, len(request.identifiers))
    if request.profile is not None and request.profile != profile.slug:
        raise AcmeProblem(
            "invalidProfile", f"This directory issues only the profile {profile.slug!r}."
        )
    _check_identifiers(request.identifiers, profile)
    replaces = (
        _replaced_certificate(account, request.replaces, request.identifiers)
        if request.replaces
        else None
    )
    now = timezone.now()
    expires = now + timedelta(hours=settings.CERTPORTAL_ACME_ORDER_LIFETIME_HOURS)
    with transaction.atomic():
        order = Order(
            account=account,
            profile=profile,
            identifiers=[i.as_json() for i in request.identifiers],
            expires_at=expires,
            replaces=replaces,
            replaces_ari=request.replaces or "",
        )
        order.save(force_insert=True)
        authorizations = [
            Authorization(
                order=order,
                identifier_type=i.type,
                identifier_value=i.base,
                wildcard=i.wildcard,
                expires_at=expires,
            )
            for i in request.identifiers
        ]
        Authorization.objects.bulk_create(authorizations)
        Challenge.objects.bulk_create(
            [
                Challenge(authorization=a, type=t)
                for a in authorizations
                for t in _challenge_types(a)
            ]
        )
    return order, authorizations


def _check_identifiers(identifiers: list[Identifier], profile: CertificateProfile) -> None:
    """Every identifier against the profile; all refusals at once, one subproblem each
    (RFC 8555 6.7.1) when there are several."""
    rules = profile.policy()
    refused = []
    for identifier in identifiers:
        try:
            _check_identifier(identifier, profile, rules)
        except AcmeProblem as problem:
            refused.append(messages.subproblem(problem, identifier.as_json()))
    messages.raise_identifier_problems(refused)


def _check_identifier(
    identifier: Identifier, profile: CertificateProfile, rules: policy.Policy
) -> None:
    if identifier.type == IdentifierType.IP:
        address = ipaddress.ip_address(identifier.value)
        networks = [ipaddress.ip_network(c, strict=False) for c in profile.ip_cidrs]
        if not any(address in network for network in networks):
            raise AcmeProblem(
                "rejectedIdentifier",
                f"IP address {identifier.value} is not allowed by this profile.",
            )
        return
    reason = policy.validate_dns_name(identifier.value)
    if reason is not None:
        raise AcmeProblem("rejectedIdentifier", f"{identifier.value} is not a valid name: {reason}")
    if identifier.wildcard and not rules.allow_wildcards:
        raise AcmeProblem("rejectedIdentifier", "This profile does not allow wildcard names.")
    if not policy.dns_name_allowed(rules.dns_rules, identifier.value, rules.allow_wildcards):
        raise AcmeProblem(
            "rejectedIdentifier", f"{identifier.value} is not allowed by profile {profile.slug}."
        )


def _challenge_types(authz: Authorization) -> list[str]:
    if authz.wildcard:
        return [ChallengeType.DNS_01]
    if authz.identifier_type == IdentifierType.IP:
        return [ChallengeType.HTTP_01, ChallengeType.TLS_ALPN_01]
    return [ChallengeType.HTTP_01, ChallengeType.DNS_01, ChallengeType.TLS_ALPN_01]


def _replaced_certificate(
    account: Account, cert_id: str, identifiers: list[Identifier]
) -> Certificate:
    """The certificate a newOrder "replaces" (RFC 9773 5). RFC 9773 leaves the match to
    the server; this one is strict: the certificate is one this account ordered and
    shares a name with the order, or the order names exactly its names (another
    account, or another front, of the same Application); and nothing replaced it yet."""
    certificate = find_certificate_by_ari_id(account.application, cert_id)
    if certificate is None:
        raise AcmeProblem(
            "malformed", "replaces names no certificate of this account's Application."
        )
    names = {_san_value(san) for san in certificate.sans}
    ordered = {i.value for i in identifiers}
    if ordered != names:
        if not Order.objects.filter(account=account, certificate=certificate).exists():
            raise AcmeProblem(
                "malformed",
                "replaces names a certificate this account did not order, and the order "
                "does not name exactly its names.",
            )
        if not ordered & names:
            raise AcmeProblem(
                "malformed", "replaces names a certificate that shares no name with this order."
            )
    if (
        certificate.status == CertificateStatus.SUPERSEDED
        or Order.objects.filter(
            replaces=certificate, status__in=[OrderStatus.PROCESSING, OrderStatus.VALID]
        ).exists()
    ):
        raise AcmeProblem("alreadyReplaced", "That certificate has already been replaced.", 409)
    return certificate


def _san_value(san: str) -> str:
    """A stored SAN as an order identifier's value (lowercase name, compressed address)."""
    try:
        return str(ipaddress.ip_address(san))
    except ValueError:
        return san.lower().rstrip(".")


def find_certificate_by_ari_id(application: Application, cert_id: str) -> Certificate | None:
    aki, serial = messages.parse_ari_cert_id(cert_id)
    candidates = Certificate.objects.filter(
        application=application, serial_number=certs.serial_hex(serial)
    ).select_related("ca", "profile")
    for certificate in candidates:
        if certificate.ca is not None and _ski(certificate.ca.certificate()) == aki:
            return certificate
    return None


def _ski(cert: x509.Certificate) -> bytes:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def refresh_order(order: Order) -> Order:
    """Bring an order up to date: expiry, authorizations done, a pending request decided."""
    now = timezone.now()
    if order.status in (OrderStatus.PENDING, OrderStatus.READY) and order.expires_at <= now:
        _set_order(order, OrderStatus.INVALID, messages.problem("malformed", "The order expired."))
        Authorization.objects.filter(order=order, status=AuthorizationStatus.PENDING).update(
            status=AuthorizationStatus.EXPIRED
        )
    elif order.status == OrderStatus.PROCESSING and order.request_id:
        _follow_request(order)
    return order


def _follow_request(order: Order) -> None:
    assert order.request is not None
    state = order.request.state
    if state == RequestState.ISSUED:
        certificate = Certificate.objects.filter(request_id=order.request_id).first()
        if certificate is not None:
            Order.objects.filter(pk=order.pk, status=OrderStatus.PROCESSING).update(
                status=OrderStatus.VALID, certificate=certificate
            )
            order.status, order.certificate = OrderStatus.VALID, certificate
    elif state in (RequestState.REJECTED, RequestState.EXPIRED, RequestState.FAILED):
        detail = order.request.reason or f"The certificate request was {state}."
        _set_order(order, OrderStatus.INVALID, messages.problem("unauthorized", detail))


def _set_order(order: Order, status: str, error: dict[str, Any] | None = None) -> None:
    Order.objects.filter(pk=order.pk, status=order.status).update(status=status, error=error)
    order.status, order.error = status, error


# --- Housekeeping -----------------------------------------------------------------------


def expire_objects(*, now: datetime | None = None) -> int:
    """Scheduled: mark expired pending orders and authorizations, drop used-up nonces."""
    now = now or timezone.now()
    with transaction.atomic():
        orders = Order.objects.filter(
            status__in=[OrderStatus.PENDING, OrderStatus.READY], expires_at__lte=now
        ).update(
            status=OrderStatus.INVALID, error=messages.problem("malformed", "The order expired.")
        )
        Authorization.objects.filter(
            status=AuthorizationStatus.PENDING, expires_at__lte=now
        ).update(status=AuthorizationStatus.EXPIRED)
    return orders + nonces.purge_expired()
