"""Two newAccount requests presenting one single-use EAB credential at the same moment
(PostgreSQL; SQLite serializes writers anyway): one account is created, the other
request is refused with unauthorized and leaves nothing behind."""

from __future__ import annotations

import json
import threading
import time

import josepy as jose
import pytest
from acme import messages as acme_messages
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection, connections

from certportal.events import Actor
from issuance.acme import services
from issuance.acme.messages import AcmeProblem
from issuance.acme.models import Account
from issuance.acme.services import accounts

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

URL = "http://testserver/acme/payments-api/tls-server/new-account"


def _new_account_auth(kid: str, hmac_key: str) -> services.Authenticated:
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    directory = acme_messages.Directory.from_json({"newAccount": URL})
    binding = acme_messages.ExternalAccountBinding.from_data(
        key.public_key(), kid, hmac_key, directory
    )
    payload = {"termsOfServiceAgreed": True, "externalAccountBinding": binding}
    return services.Authenticated(
        key=key.public_key(), account=None, payload=json.dumps(payload).encode(), source_ip=None
    )


def test_two_accounts_binding_one_single_use_credential_at_once_one_wins(
    application, tls_profile, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass of scripts/test.sh")
    eab, hmac_key = services.create_eab_key(application, name="once", actor=Actor(label="t"))
    # Both requests have checked the credential (still unbound) before either binds; the
    # first to bind then holds its transaction open a while.
    checked = threading.Barrier(2)
    bind = accounts._bind
    binds: list[bool] = []

    def slow_bind(key):
        checked.wait(5)
        won = bind(key)
        binds.append(won)
        time.sleep(0.3)
        return won

    monkeypatch.setattr(accounts, "_bind", slow_bind)
    outcomes: list[str] = []

    def register(auth: services.Authenticated) -> None:
        try:
            services.new_account(application, tls_profile, auth, url=URL)
            outcomes.append("created")
        except AcmeProblem as problem:
            outcomes.append(problem.kind)
        finally:
            connections.close_all()

    auths = [_new_account_auth(eab.key_id, hmac_key) for _ in range(2)]
    workers = [threading.Thread(target=register, args=(auth,)) for auth in auths]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert sorted(outcomes) == ["created", "unauthorized"]
    assert sorted(binds) == [False, True]  # both bound at once; one matched
    assert Account.objects.filter(eab_key=eab).count() == 1
