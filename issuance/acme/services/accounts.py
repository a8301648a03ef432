"""ACME accounts and the EAB credentials that bind them: create and revoke a
credential (portal side), newAccount, contact changes, deactivation, keyChange."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import josepy as jose
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from applications.models import Application
from certportal import generation
from certportal.event_types import EventType
from certportal.events import Actor, record
from certportal.secrets import seal_into
from issuance.acme import jws, limits, messages
from issuance.acme.choices import (
    AccountStatus,
    AuthorizationStatus,
    OrderStatus,
)
from issuance.acme.messages import AcmeProblem
from issuance.acme.models import (
    Account,
    Authorization,
    ExternalAccountKey,
    Order,
    new_token,
)
from issuance.acme.services.authentication import Authenticated, _from_jws
from profiles.models import CertificateProfile

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
