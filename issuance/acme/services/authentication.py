"""Authenticating an ACME request: the JWS checks, the nonce's single use, and
the kid's account (cached per process with Redis)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import josepy as jose
from django.conf import settings

from applications.models import Application
from certportal import generation
from certportal.events import Actor
from issuance.acme import jws, messages, nonces
from issuance.acme.choices import (
    AccountStatus,
)
from issuance.acme.messages import AcmeProblem
from issuance.acme.models import (
    Account,
    could_be_token,
)

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
