"""ACME verbs: the only writers of ACME state. Views authenticate through
``authenticate`` and call one verb each; every verb that changes state runs in a
transaction and records its audit event there."""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import josepy as jose
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from applications.models import Application
from certportal import generation, queue, wakeups
from certportal.cache import is_shared
from certportal.event_types import EventType
from certportal.events import Actor, record
from certportal.secrets import seal_into
from issuance import services as issuance
from issuance.acme import jws, limits, messages, nonces, validation
from issuance.acme.choices import (
    AccountStatus,
    AuthorizationStatus,
    ChallengeStatus,
    ChallengeType,
    IdentifierType,
    OrderStatus,
)
from issuance.acme.messages import AcmeProblem, Identifier
from issuance.acme.models import (
    Account,
    Authorization,
    Challenge,
    ExternalAccountKey,
    Order,
    could_be_token,
    new_token,
)
from issuance.choices import CertificateStatus, EnrollmentMethod, RequestState
from issuance.models import Certificate
from pki import certs, export, policy
from pki import csr as pki_csr
from pki.errors import PKIError
from profiles.models import CertificateAuthority, CertificateProfile

logger = logging.getLogger(__name__)

# --- EAB credentials (portal side) ------------------------------------------------------


def create_eab_key(
    application: Application,
    *,
    name: str,
    actor: Actor,
    expires_at: datetime | None = None,
    reusable: bool = False,
) -> tuple[ExternalAccountKey, str]:
    """A new EAB credential; returns it with the HMAC key (base64url), shown once.
    Unless reusable, it binds the first ACME account that presents it and no other.

    Neither the key id nor the HMAC key starts with "-": command lines such as certbot's
    ``--eab-hmac-key VALUE`` would read it as another option (1 value in 64 would)."""
    encoded = _cli_safe(lambda: jose.encode_b64jose(secrets.token_bytes(32)))
    hmac_key = jose.decode_b64jose(encoded)
    with transaction.atomic():
        eab = ExternalAccountKey(
            application=application,
            name=name,
            key_id=_cli_safe(new_token),
            expires_at=expires_at,
            reusable=reusable,
            created_by=actor.describe(),
            created_by_user_id=actor.user_id,
        )
        eab.save(force_insert=True)
        seal_into(eab, "hmac_key", hmac_key)  # bound to the row: sealed once it has its id
        record(
            EventType.ACME_EAB_CREATED,
            actor=actor,
            obj=eab,
            application=application,
            data={
                "name": name,
                "key_id": eab.key_id,
                "expires_at": messages.timestamp(expires_at),
                "reusable": reusable,
            },
        )
    return eab, encoded


def _cli_safe(make: Callable[[], str]) -> str:
    """make() again until what it gives does not start with "-"."""
    while (made := make()).startswith("-"):
        pass
    return made


def revoke_eab_key(
    eab: ExternalAccountKey, *, actor: Actor, deactivate_accounts: bool = False
) -> list[Account]:
    """Revoke an EAB credential: no new account can bind with it. With
    deactivate_accounts, the valid accounts it bound are deactivated in the same
    transaction; returns those. An account binding at the same moment either commits
    first (and is deactivated here) or finds the credential revoked: binding updates
    the credential's row too (``_bind``), so the two wait on each other."""
    with transaction.atomic():
        updated = ExternalAccountKey.objects.filter(pk=eab.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            record(
                EventType.ACME_EAB_REVOKED,
                actor=actor,
                obj=eab,
                application=eab.application,
                data={"name": eab.name, "key_id": eab.key_id},
            )
        if not deactivate_accounts:
            return []
        bound = Account.objects.filter(eab_key=eab, status=AccountStatus.VALID).order_by("pk")
        reason = {"reason": "eab_revoked", "eab_key_id": eab.key_id}
        return [
            account
            for account in bound.select_related("application")
            if _deactivate(account, actor, data=reason)
        ]


def bound_accounts(eab: ExternalAccountKey) -> list[Account]:
    """The valid accounts an EAB credential bound (what revoking it may deactivate)."""
    return list(Account.objects.filter(eab_key=eab, status=AccountStatus.VALID).order_by("pk"))


# --- Request authentication -------------------------------------------------------------


@dataclass(frozen=True)
class Authenticated:
    """A verified ACME POST: the signer (account or bare key) and the payload."""

    key: jose.JWK
    account: Account | None
    payload: bytes
    source_ip: str | None

    @property
    def post_as_get(self) -> bool:
        return self.payload == b""

    def json(self) -> dict[str, Any]:
        return messages.parse_json_object(self.payload)

    def actor(self) -> Actor:
        label = f"acme-account:{self.account.id}" if self.account else "acme"
        return Actor(label=label, source_ip=self.source_ip)


def authenticate(
    app: str,
    *,
    body: bytes,
    url: str,
    want_jwk: bool | None,
    source_ip: str | None,
) -> Authenticated:
    """Check a JWS POST: shape, algorithm, url, nonce, signer, signature, and then
    record the nonce's use (single use; nothing is written before the signature holds).

    app is the Application's name from the URL. want_jwk: True where a jwk is required
    (newAccount), False where a kid is (most), None where either is allowed (revokeCert).
    A kid's account comes with its Application (one query)."""
    try:
        parsed = jws.parse(body, settings.CERTPORTAL_ACME_MAX_BODY_BYTES)
        if parsed.url != url:
            raise AcmeProblem("unauthorized", "The JWS url is not the URL of this request.", 401)
        nonce = nonces.check(parsed.nonce)
        if nonce is None:
            raise AcmeProblem("badNonce", "The nonce is unknown, used or expired.")
        if want_jwk is True and parsed.jwk is None:
            raise AcmeProblem("malformed", "This request must carry a jwk, not a kid.")
        if want_jwk is False and parsed.kid is None:
            raise AcmeProblem("malformed", "This request must carry a kid, not a jwk.")
        account = None
        if parsed.kid is not None:
            account, key = _account_for_kid(app, parsed.kid)
        else:
            assert parsed.jwk is not None
            jws.check_account_key(parsed.jwk)
            key = parsed.jwk
        jws.verify(parsed, key)
    except jws.JWSError as error:
        raise _from_jws(error) from error
    # Only now, with the signature checked, is the use recorded (a row without Redis).
    if not nonce.first_use():
        raise AcmeProblem("badNonce", "The nonce is unknown, used or expired.")
    return Authenticated(key=key, account=account, payload=parsed.payload, source_ip=source_ip)


def _from_jws(error: jws.JWSError) -> AcmeProblem:
    return AcmeProblem(error.kind, error.detail, error.status, **error.extra)


def _account_for_kid(app: str, kid: str) -> tuple[Account, jose.JWK]:
    """The kid's account, with its Application, and its public key."""
    account_id = kid.rstrip("/").rsplit("/", 1)[-1]
    cached = (
        _ACCOUNTS.get((app, account_id), lambda: _load_account(app, account_id))
        if f"/acme/{app}/acct/" in kid and could_be_token(account_id)
        else None
    )
    if cached is None:
        if not Application.objects.filter(name=app).exists():
            raise AcmeProblem("malformed", "No such ACME directory.", 404)
        raise AcmeProblem("accountDoesNotExist", "No such account for this directory.")
    found, key = cached
    if found.status != AccountStatus.VALID:
        # RFC 8555 7.3.6: requests from a deactivated account get 401 unauthorized.
        raise AcmeProblem("unauthorized", f"The account is {found.status}.", 401)
    account = copy.copy(found)
    account.application = copy.copy(found.application)
    return account, key


def _load_account(app: str, account_id: str) -> tuple[Account, jose.JWK] | None:
    try:
        account = Account.objects.select_related("application").get(
            pk=account_id, application__name=app
        )
    except Account.DoesNotExist:
        return None
    return account, jws.jwk_from_json(account.jwk)


# Every signed request looks its account up. With Redis the account and its parsed key
# are kept per process until the configuration generation moves: on any change to an
# account (status, key, contact: each bumps it) or to an Application. Without Redis,
# always from the database.
_ACCOUNTS: generation.Cache[tuple[Account, jose.JWK]] = generation.Cache(
    depends_on=("acme.Account", "applications.Application"), shared_only=True
)


# --- Accounts ---------------------------------------------------------------------------


def new_account(
    application: Application,
    profile: CertificateProfile,
    auth: Authenticated,
    *,
    url: str,
) -> tuple[Account, bool]:
    """newAccount: find the key's account, or create one bound through EAB."""
    payload = auth.json()
    thumbprint = jws.thumbprint(auth.key)
    existing = Account.objects.filter(thumbprint=thumbprint).first()
    if existing is not None:
        if existing.application_id != application.pk:
            # The key belongs to another Application: it cannot be reused here.
            raise AcmeProblem("unauthorized", "This key is bound to another account.", 403)
        if existing.status != AccountStatus.VALID:
            # As Boulder does: the key's account exists but may no longer be used.
            raise AcmeProblem("unauthorized", f"This key's account is {existing.status}.", 401)
        return existing, False
    if payload.get("onlyReturnExisting") is True:
        raise AcmeProblem("accountDoesNotExist", "No account exists for this key.")
    if payload.get("termsOfServiceAgreed") is not True:
        raise AcmeProblem("userActionRequired", "Agree to the terms of service.", 403)
    contacts = messages.parse_contacts(payload.get("contact"))
    limits.new_account(application.pk, auth.source_ip, verified=False)
    eab = _checked_eab(application, payload.get("externalAccountBinding"), auth.key, url)
    limits.new_account(application.pk, auth.source_ip, verified=True)
    return _create_account(application, profile, auth, eab, contacts, thumbprint), True


def _checked_eab(
    application: Application, binding: Any, key: jose.JWK, url: str
) -> ExternalAccountKey:
    if binding is None:
        raise AcmeProblem(
            "externalAccountRequired", "This server requires external account binding."
        )
    try:
        kid = jws.eab_key_id(binding)
        eab = ExternalAccountKey.objects.filter(key_id=kid, application=application).first()
        if eab is None:
            raise AcmeProblem("unauthorized", "Unknown external account key id.", 403)
        if eab.revoked_at or (eab.expires_at and eab.expires_at <= timezone.now()):
            raise AcmeProblem(
                "unauthorized", "This external account key is revoked or expired.", 403
            )
        jws.verify_eab(binding, expected_url=url, account_key=key, hmac_key=eab.hmac_key_bytes())
    except jws.JWSError as error:
        raise _from_jws(error) from error
    if not eab.reusable and eab.bound_at is not None:
        raise _already_bound()
    return eab


def _already_bound() -> AcmeProblem:
    # unauthorized, as step-ca answers a used single-use key: the binding is well formed
    # (not malformed) and present (not externalAccountRequired), but it grants nothing.
    return AcmeProblem(
        "unauthorized",
        "This external account key is single-use and already bound an account; "
        "ask an Admin for a new one.",
        403,
    )


def _create_account(
    application: Application,
    profile: CertificateProfile,
    auth: Authenticated,
    eab: ExternalAccountKey,
    contacts: list[str],
    thumbprint: str,
) -> Account:
    account = Account(
        application=application,
        profile=profile,
        eab_key=eab,
        jwk=auth.key.public_key().to_json(),
        thumbprint=thumbprint,
        contact=contacts,
    )
    try:
        with transaction.atomic():
            if not _bind(eab):
                raise _refused_binding(eab)
            account.save(force_insert=True)
            record(
                EventType.ACME_ACCOUNT_CREATED,
                actor=Actor(label=f"acme-account:{account.id}", source_ip=auth.source_ip),
                obj=account,
                application=application,
                data={"eab_key_id": eab.key_id, "eab_name": eab.name, "contact": contacts},
            )
    except (IntegrityError, AcmeProblem):
        # Two newAccount requests with one key raced; the other one created it (and
        # maybe used up the credential doing so).
        existing = Account.objects.filter(thumbprint=thumbprint, application=application).first()
        if existing is None:
            raise
        return existing
    return account


def _bind(eab: ExternalAccountKey) -> bool:
    """Claim the credential for one more account, in the caller's transaction: one
    conditional UPDATE, so of two accounts binding a single-use credential at once only
    one matches (the other waits on the row, then finds it bound). It also refuses a
    credential revoked or expired since it was checked."""
    now = timezone.now()
    usable = ExternalAccountKey.objects.filter(pk=eab.pk, revoked_at__isnull=True).exclude(
        expires_at__lte=now
    )
    if not eab.reusable:
        usable = usable.filter(bound_at__isnull=True)
    return bool(usable.update(bound_at=Coalesce(F("bound_at"), Value(now))))


def _refused_binding(eab: ExternalAccountKey) -> AcmeProblem:
    current = ExternalAccountKey.objects.filter(pk=eab.pk, revoked_at__isnull=True).first()
    if current is None or (current.expires_at and current.expires_at <= timezone.now()):
        return AcmeProblem("unauthorized", "This external account key is revoked or expired.", 403)
    return _already_bound()


def update_account(account: Account, auth: Authenticated) -> Account:
    """POST to the account URL: contact change and/or deactivation (POST-as-GET reads)."""
    if auth.post_as_get:
        return account
    payload = auth.json()
    with transaction.atomic():
        if "contact" in payload:
            account.contact = messages.parse_contacts(payload["contact"])
            Account.objects.filter(pk=account.pk).update(contact=account.contact)
            generation.changed()
        if payload.get("status") == AccountStatus.DEACTIVATED:
            _deactivate(account, auth.actor())
        elif payload.get("status") not in (None, AccountStatus.VALID):
            raise AcmeProblem("malformed", "An account may only be deactivated.")
    return account


def deactivate_account(account: Account, *, actor: Actor) -> bool:
    """An Admin deactivates an account (the server's side of RFC 8555 7.3.6): its later
    requests are refused as unauthorized, at once in every process (the account lookup
    cache follows the configuration generation, moved on commit). False when it was no
    longer valid."""
    with transaction.atomic():
        return _deactivate(account, actor)


def _deactivate(account: Account, actor: Actor, *, data: dict[str, Any] | None = None) -> bool:
    if not Account.objects.filter(pk=account.pk, status=AccountStatus.VALID).update(
        status=AccountStatus.DEACTIVATED
    ):
        return False
    generation.changed()
    Authorization.objects.filter(order__account=account, status=AuthorizationStatus.PENDING).update(
        status=AuthorizationStatus.DEACTIVATED
    )
    # RFC 8555 7.3.6: the account's pending operations end with it.
    Order.objects.filter(
        account=account, status__in=[OrderStatus.PENDING, OrderStatus.READY]
    ).update(
        status=OrderStatus.INVALID,
        error=messages.problem("unauthorized", "The account was deactivated."),
    )
    account.status = AccountStatus.DEACTIVATED
    record(
        EventType.ACME_ACCOUNT_DEACTIVATED,
        actor=actor,
        obj=account,
        application=account.application,
        data={"thumbprint": account.thumbprint, **(data or {})},
    )
    return True


def change_key(account: Account, auth: Authenticated, *, url: str, account_url: str) -> Account:
    """keyChange (RFC 8555 7.3.5): the inner JWS, signed by the new key, names the old."""
    try:
        inner = jws.parse(auth.payload, settings.CERTPORTAL_ACME_MAX_BODY_BYTES, inner=True)
        if inner.jwk is None or inner.kid is not None:
            raise AcmeProblem("malformed", "The inner JWS must carry the new key as jwk.")
        if inner.url != url:
            raise AcmeProblem("malformed", "The inner JWS url must be the keyChange URL.")
        jws.check_account_key(inner.jwk)
        jws.verify(inner, inner.jwk)
    except jws.JWSError as error:
        raise _from_jws(error) from error
    body = messages.parse_json_object(inner.payload)
    if body.get("account") != account_url:
        raise AcmeProblem("malformed", "The inner payload must name this account.")
    if not _same_key(body.get("oldKey"), auth.key):
        raise AcmeProblem("malformed", "oldKey is not this account's key.")
    new_thumbprint = jws.thumbprint(inner.jwk)
    conflict = Account.objects.filter(thumbprint=new_thumbprint).first()
    if conflict is not None:
        # RFC 8555 7.3.5: the Location header names the account that holds the key.
        holder = account_url.rsplit("/", 1)[0] + "/" + conflict.id
        raise AcmeProblem("conflict", "The new key is already in use.", 409, location=holder)
    with transaction.atomic():
        Account.objects.filter(pk=account.pk).update(
            jwk=inner.jwk.public_key().to_json(), thumbprint=new_thumbprint
        )
        generation.changed()
        record(
            EventType.ACME_ACCOUNT_KEY_CHANGED,
            actor=auth.actor(),
            obj=account,
            application=account.application,
        )
    account.refresh_from_db()
    return account


def _same_key(claimed: Any, key: jose.JWK) -> bool:
    try:
        return bool(jws.jwk_from_json(claimed).thumbprint() == key.thumbprint())
    except (jose.DeserializationError, ValueError, TypeError, KeyError):
        return False


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


# --- Challenges -------------------------------------------------------------------------


def answer_challenge(challenge: Challenge, auth: Authenticated) -> Challenge:
    """The client says the challenge is ready: validate it off the request path."""
    if auth.post_as_get:
        return challenge
    authz = challenge.authorization
    if authz.status != AuthorizationStatus.PENDING or challenge.status != ChallengeStatus.PENDING:
        return challenge
    if authz.expires_at <= timezone.now():
        raise AcmeProblem("malformed", "The authorization has expired.")
    updated = Challenge.objects.filter(pk=challenge.pk, status=ChallengeStatus.PENDING).update(
        status=ChallengeStatus.PROCESSING
    )
    if updated:
        challenge.status = ChallengeStatus.PROCESSING
        challenge_id = challenge.pk
        transaction.on_commit(lambda: _queue_validation(challenge_id))
    return challenge


def _queue_validation(challenge_id: str) -> None:
    queue.enqueue(
        "issuance.acme.tasks.validate_challenge",
        challenge_id,
        task_name=f"acme-{challenge_id}",
        cluster=settings.CERTPORTAL_ACME_VALIDATION_CLUSTER,
    )


def await_validation(challenge: Challenge) -> Challenge:
    """Wait briefly (CERTPORTAL_ACME_VALIDATION_WAIT_MS, with Redis) for the worker to
    settle a processing challenge; the validation itself stays off the request path.
    Returns the challenge as it then stands."""
    wait = settings.CERTPORTAL_ACME_VALIDATION_WAIT_MS / 1000
    if challenge.status != ChallengeStatus.PROCESSING or not wait or not is_shared():
        return challenge
    notice = wakeups.wait(_settled_key(challenge.pk), wait)
    if notice is not None:
        # The worker's committed verdict travels in the notice: no need to read it back.
        settled = json.loads(notice)
        challenge.status, challenge.error = settled["status"], settled["error"]
        challenge.validated_at = parse_datetime(settled["validated_at"] or "")
    return challenge


def _settled_key(challenge_id: str) -> str:
    return f"acme-challenge-settled:{challenge_id}"


def _processing_challenge(challenge_id: str) -> list[Challenge]:
    return list(
        Challenge.objects.select_related("authorization__order__account").filter(
            pk=challenge_id, status=ChallengeStatus.PROCESSING
        )
    )


def _lock_order(order_id: str) -> None:
    """Lock the order's row until the transaction ends."""
    list(Order.objects.select_for_update().filter(pk=order_id).order_by().values_list("pk"))


def validate_challenge(challenge_id: str) -> str | None:
    """The task: check one processing challenge and settle its authorization and order.
    Safe to run twice: only a challenge still processing is decided."""
    found = _processing_challenge(challenge_id=challenge_id)
    if not found:
        return None
    challenge = found[0]
    authz = challenge.authorization
    account = authz.order.account
    key_auth = messages.key_authorization(challenge.token, account.thumbprint)
    failure = _run_check(challenge.type, authz.identifier_value, challenge.token, key_auth)
    with transaction.atomic():
        if failure is None:
            _challenge_valid(challenge)
        else:
            _challenge_invalid(challenge, messages.problem(*failure))
    if is_shared():
        verdict = {
            "status": challenge.status,
            "validated_at": challenge.validated_at.isoformat() if challenge.validated_at else None,
            "error": challenge.error,
        }
        wakeups.notify(_settled_key(challenge_id), json.dumps(verdict))
    return challenge.status


def _run_check(kind: str, identifier: str, token: str, key_auth: str) -> validation.Failure:
    """The check's verdict. What the other side sends is untrusted input: a check that
    breaks on it fails the challenge instead of the task (which would leave it
    processing, retried, for good)."""
    try:
        return _check(kind, identifier, token, key_auth)
    except Exception:
        logger.exception("ACME %s check of %s broke", kind, identifier)
        return ("serverInternal", f"The {kind} check could not be completed.")


def _check(kind: str, identifier: str, token: str, key_auth: str) -> validation.Failure:
    if kind == ChallengeType.HTTP_01:
        return validation.http01(identifier, token, key_auth)
    if kind == ChallengeType.DNS_01:
        return validation.dns01(identifier, key_auth)
    return validation.tls_alpn01(identifier, key_auth)


def _challenge_valid(challenge: Challenge) -> None:
    now = timezone.now()
    authz = challenge.authorization
    # Lock the order first. Validations of its other authorizations wait here until this
    # one commits, and each statement after the lock sees what committed before it, so
    # the last authorization to become valid always sees the others valid too. (Without
    # the lock, two committing at once could each still see the other pending, and the
    # order would never become ready.) SQLite's IMMEDIATE transactions serialize anyway.
    _lock_order(order_id=authz.order_id)
    if not Challenge.objects.filter(pk=challenge.pk, status=ChallengeStatus.PROCESSING).update(
        status=ChallengeStatus.VALID, validated_at=now
    ):
        return
    challenge.status, challenge.validated_at = ChallengeStatus.VALID, now
    Authorization.objects.filter(pk=authz.pk, status=AuthorizationStatus.PENDING).update(
        status=AuthorizationStatus.VALID
    )
    _ready_if_all_valid(authz.order_id)


def _ready_if_all_valid(order_id: str) -> None:
    """The order is ready once none of its authorizations is anything but valid (one
    statement: the check is the UPDATE's own condition)."""
    unsettled = Authorization.objects.filter(order_id=OuterRef("pk")).exclude(
        status=AuthorizationStatus.VALID
    )
    Order.objects.filter(pk=order_id, status=OrderStatus.PENDING).exclude(Exists(unsettled)).update(
        status=OrderStatus.READY
    )


def _challenge_invalid(challenge: Challenge, error: dict[str, Any]) -> None:
    authz = challenge.authorization
    _lock_order(order_id=authz.order_id)  # as _challenge_valid: one verdict at a time
    if not Challenge.objects.filter(pk=challenge.pk, status=ChallengeStatus.PROCESSING).update(
        status=ChallengeStatus.INVALID, error=error, failed_at=timezone.now()
    ):
        return
    challenge.status, challenge.error = ChallengeStatus.INVALID, error
    # Only a pending authorization fails: another of its challenges may have made it
    # valid while this one was still being checked, and a late failure must not undo that.
    if Authorization.objects.filter(pk=authz.pk, status=AuthorizationStatus.PENDING).update(
        status=AuthorizationStatus.INVALID
    ):
        _invalidate_order(authz.order_id, error)


def _invalidate_order(order_id: str, error: dict[str, Any]) -> None:
    """An authorization of the order ended other than valid (RFC 8555 7.1.6): an order
    not yet finalized becomes invalid."""
    Order.objects.filter(pk=order_id, status__in=[OrderStatus.PENDING, OrderStatus.READY]).update(
        status=OrderStatus.INVALID, error=error
    )


def deactivate_authorization(authz: Authorization, auth: Authenticated) -> Authorization:
    """POST to an authorization: {"status": "deactivated"} deactivates a pending or
    valid one (RFC 8555 7.5.2) and with it its order; POST-as-GET reads it."""
    payload = auth.json() if not auth.post_as_get else {}
    if "status" not in payload:
        return authz
    if payload["status"] != AuthorizationStatus.DEACTIVATED:
        raise AcmeProblem("malformed", 'An authorization may only be set to "deactivated".')
    with transaction.atomic():
        _lock_order(order_id=authz.order_id)
        if not Authorization.objects.filter(
            pk=authz.pk, status__in=[AuthorizationStatus.PENDING, AuthorizationStatus.VALID]
        ).update(status=AuthorizationStatus.DEACTIVATED):
            authz.refresh_from_db(fields=["status"])
            if authz.status == AuthorizationStatus.DEACTIVATED:
                return authz
            raise AcmeProblem(
                "malformed", f"The authorization is {authz.status}; it cannot be deactivated."
            )
        authz.status = AuthorizationStatus.DEACTIVATED
        _invalidate_order(
            authz.order_id,
            messages.problem("unauthorized", "An authorization of this order was deactivated."),
        )
        record(
            EventType.ACME_AUTHORIZATION_DEACTIVATED,
            actor=auth.actor(),
            obj=authz,
            application=auth.account.application if auth.account else None,
            data={"identifier": authz.identifier_value},
            outbox=False,
        )
    return authz


# --- Finalize ---------------------------------------------------------------------------


def finalize(order: Order, auth: Authenticated) -> Order:
    """finalize: the CSR must name exactly the order's identifiers; then the pipeline.

    One transaction: the pipeline's writes and the order's outcome commit together. The
    outcome is written only to an order still ready, which makes a concurrent second
    finalize wait for the first to commit and then fail, rolling back what it wrote; a
    CSR the pipeline rejects writes nothing, so the order stays ready and the client may
    send a better CSR."""
    refresh_order(order)
    if order.status != OrderStatus.READY:
        raise AcmeProblem("orderNotReady", f"The order is {order.status}, not ready.", 403)
    csr = _csr_matching(order, messages.csr_from_finalize(auth.json()))
    actor = auth.actor()
    application = order.account.application
    profile = issuance.attached_profile(application, profile_slug(order.profile_id))
    if profile is None:
        raise AcmeProblem("unauthorized", "The order's profile is no longer available.", 403)
    try:
        with transaction.atomic():
            submission = issuance.submit(
                application=application,
                profile=profile,
                method=EnrollmentMethod.ACME,
                actor=actor,
                csr=csr,
                replaces=order.replaces,
            )
            return _record_finalized(order, submission, actor)
    except issuance.IssuanceRejected as rejected:
        raise messages.problem_for(rejected, messages.FINALIZE_PROBLEMS) from rejected


def _record_finalized(order: Order, submission: issuance.Submission, actor: Actor) -> Order:
    """The order's outcome, in finalize's transaction; audited (the certificate's own
    event is what alerts and syncs consume)."""
    status = OrderStatus.PROCESSING if submission.pending else OrderStatus.VALID
    with transaction.atomic(savepoint=False):
        written = Order.objects.filter(pk=order.pk, status=OrderStatus.READY).update(
            status=status, request=submission.request, certificate=submission.certificate
        )
        if not written:  # another finalize committed first: roll this one back
            raise AcmeProblem("orderNotReady", "The order is already finalized.", 403)
        record(
            EventType.ACME_ORDER_FINALIZED,
            actor=actor,
            obj=order,
            application=order.account.application,
            data={
                "identifiers": order.identifiers,
                "status": status,
                "request_id": str(submission.request.pk),
                "certificate_id": str(submission.certificate.pk)
                if submission.certificate
                else None,
            },
            outbox=False,
        )
    order.status, order.request, order.certificate = (
        status,
        submission.request,
        submission.certificate,
    )
    return order


def _csr_matching(order: Order, csr_der: bytes) -> pki_csr.ParsedCSR:
    """The finalize CSR, parsed and verified, once it names exactly the order's identifiers."""
    try:
        parsed = pki_csr.parse_csr(csr_der)
    except PKIError as exc:
        raise AcmeProblem("badCSR", exc.message) from exc
    requested = {(i["type"], i["value"]) for i in order.identifiers}
    named = {("dns", n.lower()) for n in parsed.dns_names} | {
        ("ip", str(a)) for a in parsed.ip_addresses
    }
    if parsed.emails or parsed.uris:
        raise AcmeProblem("badCSR", "The CSR may only name DNS names and IP addresses.")
    if parsed.common_name and not _cn_in(parsed.common_name, requested):
        raise AcmeProblem(
            "badCSR", f"The CSR's common name {parsed.common_name} is not in the order."
        )
    if named != requested:
        extra = sorted(v for _, v in named - requested)
        missing = sorted(v for _, v in requested - named)
        raise AcmeProblem(
            "badCSR", f"The CSR names do not match the order (extra: {extra}, missing: {missing})."
        )
    return parsed


def _cn_in(common_name: str, requested: set[tuple[str, str]]) -> bool:
    return ("dns", common_name.lower()) in requested or ("ip", common_name) in requested


def certificate_chain_pem(certificate_pem: str, chain_pem: str, ca_id: int | None) -> str:
    """A certificate and its issuers, without the self-signed root. chain_pem is the
    certificate's own chain (imported ones); otherwise its issuing CA's is used."""
    chain = chain_pem
    if not chain and ca_id is not None:
        chain = _CA_CHAINS.get(ca_id, lambda: _ca_chain(ca_id)) or ""  # CAs are PROTECTed
    issuers = _issuers_pem(chain) if chain else ""
    return certificate_pem.strip() + "\n" + issuers


def profile_slug(profile_id: int) -> str:
    """A profile's slug (order URLs name their profile's directory), from a generation
    cache: profiles change rarely and every change moves the generation."""
    slug = _PROFILE_SLUGS.get(
        profile_id,
        lambda: (
            CertificateProfile.objects.filter(pk=profile_id).values_list("slug", flat=True).first()
        ),
    )
    return slug or ""  # PROTECTed by the orders that name it


_PROFILE_SLUGS: generation.Cache[str] = generation.Cache(
    depends_on=("profiles.CertificateProfile",)
)


def _ca_chain(ca_id: int) -> str | None:
    """The CA's certificate and the chain above it (not its keys or CRL)."""
    found = (
        CertificateAuthority.objects.filter(pk=ca_id)
        .values_list("certificate_pem", "chain_pem")
        .first()
    )
    return None if found is None else found[0].strip() + "\n" + found[1]


# Downloads need the issuing CA's chain.
_CA_CHAINS: generation.Cache[str] = generation.Cache(depends_on=("profiles.CertificateAuthority",))


@functools.lru_cache(maxsize=64)
def _issuers_pem(chain_pem: str) -> str:
    """The chain's certificates but a self-signed root, as PEM (parsed once per chain)."""
    return "".join(
        certs_pem(issuer) + "\n"
        for issuer in export.load_certificates(chain_pem)
        if issuer.issuer != issuer.subject
    )


def certs_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode().strip()


# --- Revocation -------------------------------------------------------------------------


def revoke(application: Application, auth: Authenticated) -> Certificate:
    """revokeCert by the account that ordered the certificate, or by the certificate's key."""
    cert, code = messages.certificate_from_revoke(auth.json())
    reason = messages.REVOCATION_REASONS.get(code)
    if reason is None:
        raise AcmeProblem("badRevocationReason", f"Reason code {code} is not accepted.")
    fingerprint = certs.fingerprint_sha256(cert)
    certificate = Certificate.objects.filter(
        application=application, fingerprint_sha256=fingerprint
    ).first()
    if certificate is None:
        raise AcmeProblem("malformed", "This certificate was not issued to this Application.", 404)
    if not _may_revoke(certificate, cert, auth):
        raise AcmeProblem("unauthorized", "Neither this account nor this key may revoke it.", 403)
    # A certificate on hold may still be revoked for good (revoke says when it may); a
    # refusal reaches the client through acme_endpoint's mapping (alreadyRevoked).
    return issuance.revoke(certificate, reason=reason, actor=auth.actor())


def _may_revoke(certificate: Certificate, cert: x509.Certificate, auth: Authenticated) -> bool:
    if auth.account is not None:
        return Order.objects.filter(account=auth.account, certificate=certificate).exists()
    cert_key = jws.jwk_for_public_key(cert.public_key())
    return cert_key is not None and cert_key.thumbprint() == auth.key.thumbprint()


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
