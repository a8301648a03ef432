"""ACME verbs: the only writers of ACME state. Views authenticate through
``authenticate`` and call one verb each; every verb that changes state runs in a
transaction and records its audit event there.

- ``authentication``: ``Authenticated`` and ``authenticate`` (JWS, nonce, the kid's
  account and its per-process cache).
- ``accounts``: EAB credentials (create, revoke), newAccount, account updates,
  deactivation, keyChange.
- ``orders``: newOrder, ``refresh_order``, ARI's certificate lookup, ``expire_objects``.
- ``challenges``: answering a challenge, its validation task, authorization deactivation.
- ``finalization``: finalize through the issuance pipeline, certificate chains for
  downloads, revokeCert.

Callers import this package (``from issuance.acme import services``); a test that patches
a function patches the submodule that looks it up.
"""

from issuance.acme.services.accounts import (
    bound_accounts,
    change_key,
    create_eab_key,
    deactivate_account,
    new_account,
    revoke_eab_key,
    update_account,
)
from issuance.acme.services.authentication import Authenticated, authenticate
from issuance.acme.services.challenges import (
    answer_challenge,
    await_validation,
    deactivate_authorization,
    validate_challenge,
)
from issuance.acme.services.finalization import (
    certificate_chain_pem,
    certs_pem,
    finalize,
    profile_slug,
    revoke,
)
from issuance.acme.services.orders import (
    expire_objects,
    find_certificate_by_ari_id,
    new_order,
    refresh_order,
)

__all__ = [
    "Authenticated",
    "answer_challenge",
    "authenticate",
    "await_validation",
    "bound_accounts",
    "certificate_chain_pem",
    "certs_pem",
    "change_key",
    "create_eab_key",
    "deactivate_account",
    "deactivate_authorization",
    "expire_objects",
    "finalize",
    "find_certificate_by_ari_id",
    "new_account",
    "new_order",
    "profile_slug",
    "refresh_order",
    "revoke",
    "revoke_eab_key",
    "update_account",
    "validate_challenge",
]
