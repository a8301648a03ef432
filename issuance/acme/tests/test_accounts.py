"""ACME account control in the portal: every member sees the Application's accounts,
Admins deactivate one (its client is refused at once), EAB credentials bind one account
unless reusable, and revoking a credential can deactivate the accounts it bound."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import josepy as jose
import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from applications.models import Application, AuditEvent
from certportal import generation
from certportal.events import Actor
from certportal.models import OutboxEvent
from issuance.acme import services
from issuance.acme.models import Account, ExternalAccountKey, Order
from issuance.acme.services import accounts as account_services
from issuance.acme.tests.conftest import AcmeSession

pytestmark = pytest.mark.django_db

ERR = "urn:ietf:params:acme:error:"
ADMIN = Actor(label="pytest-admin")


def enrollment(client: Client, application: Application) -> str:
    response = client.get(reverse("applications:enrollment", args=[application.name]))
    assert response.status_code == 200
    return response.content.decode()


def registered(client: Client, application: Application, eab: tuple[str, str]) -> AcmeSession:
    session = AcmeSession(client, application.name)
    assert session.register(eab).status_code == 201
    return session


def account_of(session: AcmeSession) -> Account:
    return Account.objects.get(pk=session.kid.rsplit("/", 1)[-1])


def rfc7638_thumbprint(key: jose.JWKEC) -> str:
    """Computed by hand: SHA-256 of the required members, sorted, no whitespace."""
    public = key.public_key().to_partial_json()
    members = {name: public[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return jose.encode_b64jose(hashlib.sha256(canonical).digest())


def deactivate_url(application: Application, account: Account) -> str:
    return reverse("acme:account-deactivate", args=[application.name, account.pk])


# --- The accounts list ------------------------------------------------------------------


def test_members_see_each_account_with_thumbprint_contact_eab_and_last_order(
    client, personas, application, eab
):
    session = registered(Client(), application, eab)
    session.new_order("a.example.test")
    account = account_of(session)
    last = Order.objects.get(account=account).created_at
    client.force_login(personas["auditor"])
    page = enrollment(client, application)
    assert rfc7638_thumbprint(session.key) == account.thumbprint
    assert '<code title="RFC 7638 SHA-256 thumbprint' in page and account.thumbprint in page
    assert "mailto:ops@example.test" in page
    assert f"ci (<code>{eab[0]}</code>)" in page
    assert timezone.localtime(last).strftime("%Y-%m-%d %H:%M") in page
    assert "<td>Valid</td>" in page
    assert "Deactivate…" not in page  # Auditors read; only Admins deactivate


def test_admins_get_a_deactivate_link_per_valid_account(client, personas, application, eab):
    account = account_of(registered(Client(), application, eab))
    client.force_login(personas["admin"])
    assert deactivate_url(application, account) in enrollment(client, application)


def test_the_list_shows_only_this_applications_accounts(client, personas, application, eab):
    other = Application.objects.get(name="other-app")
    other_key, other_hmac = services.create_eab_key(other, name="o", actor=ADMIN)
    theirs = account_of(registered(Client(), other, (other_key.key_id, other_hmac)))
    client.force_login(personas["admin"])
    page = enrollment(client, application)
    assert theirs.thumbprint not in page and "No ACME accounts yet." in page


def test_the_list_costs_the_same_queries_for_two_accounts_or_seven(
    client, personas, application, reusable_eab
):
    client.force_login(personas["admin"])

    def queries_with(accounts: int) -> int:
        while Account.objects.count() < accounts:
            registered(Client(), application, reusable_eab).new_order("a.example.test")
        with CaptureQueriesContext(connection) as ctx:
            page = enrollment(client, application)
        assert page.count('class="acme-account"') == accounts
        return len(ctx.captured_queries)

    assert queries_with(2) == queries_with(7)


# --- Deactivation by an Admin -----------------------------------------------------------


def test_admin_deactivates_an_account_audited_with_an_outbox_event(
    client, personas, application, eab
):
    session = registered(Client(), application, eab)
    account = account_of(session)
    client.force_login(personas["admin"])
    assert "Deactivate account" in client.get(deactivate_url(application, account)).content.decode()
    response = client.post(deactivate_url(application, account))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.status == "deactivated"
    event = AuditEvent.objects.get(action="acme.account_deactivated")
    assert event.actor == personas["admin"] and event.object_id == account.pk
    assert OutboxEvent.objects.filter(
        event_type="acme.account_deactivated", object_id=account.pk
    ).exists()
    refused = session.new_order("a.example.test")
    assert refused.status_code == 401
    assert refused.json()["type"] == ERR + "unauthorized"


def test_deactivating_twice_records_once(client, personas, application, eab):
    account = account_of(registered(Client(), application, eab))
    client.force_login(personas["admin"])
    client.post(deactivate_url(application, account))
    client.post(deactivate_url(application, account))
    assert AuditEvent.objects.filter(action="acme.account_deactivated").count() == 1


def test_deactivation_is_refused_without_a_csrf_token(personas, application, eab):
    account = account_of(registered(Client(), application, eab))
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas["admin"])
    assert client.post(deactivate_url(application, account)).status_code == 403
    account.refresh_from_db()
    assert account.status == "valid"


def test_an_account_of_another_application_is_not_found(client, personas, application, eab):
    other = Application.objects.get(name="other-app")
    other_key, other_hmac = services.create_eab_key(other, name="o", actor=ADMIN)
    theirs = account_of(registered(Client(), other, (other_key.key_id, other_hmac)))
    client.force_login(personas["admin"])  # Admin of payments-api, not of other-app
    for url in (deactivate_url(application, theirs), deactivate_url(other, theirs)):
        assert client.post(url).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "valid"


@pytest.mark.parametrize("persona", ["operator", "auditor"])
def test_operators_and_auditors_cannot_deactivate(client, personas, application, eab, persona):
    account = account_of(registered(Client(), application, eab))
    client.force_login(personas[persona])
    assert client.post(deactivate_url(application, account)).status_code == 403
    account.refresh_from_db()
    assert account.status == "valid"


def test_with_redis_deactivation_reaches_every_process_at_commit(
    redis_cache, settings, client, personas, application, eab
):
    settings.CERTPORTAL_CONFIG_CACHE_SECONDS = 60
    session = registered(Client(), application, eab)
    assert session.new_order("a.example.test").status_code == 201  # the account is cached
    shared_before = cache.get(generation.KEY)
    client.force_login(personas["admin"])
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(deactivate_url(application, account_of(session)))
    # Other processes compare this shared number with the one their entry was read under.
    assert cache.get(generation.KEY) == shared_before + 1
    refused = session.new_order("b.example.test")
    assert refused.status_code == 401
    assert refused.json()["type"] == ERR + "unauthorized"


def test_a_deactivated_accounts_key_cannot_register_again(client, application, reusable_eab):
    session = registered(client, application, reusable_eab)
    services.deactivate_account(account_of(session), actor=ADMIN)
    again = session.register(reusable_eab)
    assert again.status_code == 401
    assert again.json()["type"] == ERR + "unauthorized"
    assert Account.objects.count() == 1


# --- Single-use and reusable EAB credentials --------------------------------------------


def test_a_single_use_credential_binds_one_account(client, application, eab):
    registered(client, application, eab)
    second = AcmeSession(client, application.name)
    refused = second.register(eab)
    assert refused.status_code == 403
    body = refused.json()
    assert body["type"] == ERR + "unauthorized"
    assert "single-use" in body["detail"]
    assert Account.objects.count() == 1
    assert ExternalAccountKey.objects.get(key_id=eab[0]).bound_at is not None


def test_the_bound_key_registering_again_gets_its_account(client, application, eab):
    session = registered(client, application, eab)
    again = session.register(eab)
    assert again.status_code == 200 and again["Location"] == session.kid


def test_a_reusable_credential_binds_several_accounts(client, application, reusable_eab):
    for _ in range(3):
        registered(client, application, reusable_eab)
    assert Account.objects.filter(eab_key__key_id=reusable_eab[0]).count() == 3


def test_a_credential_revoked_after_the_check_does_not_bind(client, application, eab, monkeypatch):
    checked = account_services._checked_eab

    def revoked_meanwhile(*args, **kwargs):
        found = checked(*args, **kwargs)
        ExternalAccountKey.objects.filter(pk=found.pk).update(revoked_at=timezone.now())
        return found

    monkeypatch.setattr(account_services, "_checked_eab", revoked_meanwhile)
    refused = AcmeSession(client, application.name).register(eab)
    assert refused.status_code == 403 and "revoked" in refused.json()["detail"]
    assert not Account.objects.exists()


def test_the_create_form_offers_reusable_and_the_list_shows_it(client, personas, application):
    client.force_login(personas["admin"])
    url = reverse("acme:eab-create", args=[application.name])
    assert 'name="reusable"' in enrollment(client, application)
    client.post(url, {"name": "fleet", "reusable": "on"})
    client.post(url, {"name": "one-host"})
    assert dict(ExternalAccountKey.objects.values_list("name", "reusable")) == {
        "fleet": True,
        "one-host": False,
    }
    page = enrollment(client, application)
    assert "<td>reusable</td>" in page and "<td>single-use</td>" in page
    assert AuditEvent.objects.filter(action="acme.eab_created", data__reusable=True).count() == 1


# --- Revoking a credential and the accounts it bound ------------------------------------


def revoke_url(application: Application, key_id: str) -> str:
    pk = ExternalAccountKey.objects.get(key_id=key_id).pk
    return reverse("acme:eab-revoke", args=[application.name, pk])


def test_revoke_confirmation_lists_bound_accounts_with_the_box_ticked(
    client, personas, application, reusable_eab
):
    accounts = [account_of(registered(Client(), application, reusable_eab)) for _ in range(2)]
    client.force_login(personas["admin"])
    page = client.get(revoke_url(application, reusable_eab[0])).content.decode()
    assert all(account.thumbprint in page for account in accounts)
    assert "Also deactivate 2 accounts bound with this key" in page
    box = page.split('name="deactivate_accounts"')[1].split(">")[0]
    assert "checked" in box


def test_revoking_with_the_box_deactivates_the_bound_accounts(
    client, personas, application, reusable_eab, eab
):
    sessions = [registered(Client(), application, reusable_eab) for _ in range(2)]
    other = registered(Client(), application, eab)  # bound with another credential
    client.force_login(personas["admin"])
    response = client.post(revoke_url(application, reusable_eab[0]), {"deactivate_accounts": "on"})
    assert response.status_code == 302
    assert ExternalAccountKey.objects.get(key_id=reusable_eab[0]).revoked_at is not None
    statuses = [account_of(s).status for s in sessions]
    assert statuses == ["deactivated", "deactivated"]
    assert account_of(other).status == "valid"
    events = AuditEvent.objects.filter(action="acme.account_deactivated")
    assert {e.data["reason"] for e in events} == {"eab_revoked"} and events.count() == 2
    assert sessions[0].new_order("a.example.test").status_code == 401


def test_revoking_without_the_box_keeps_the_accounts(client, personas, application, eab):
    session = registered(Client(), application, eab)
    client.force_login(personas["admin"])
    assert client.post(revoke_url(application, eab[0]), {}).status_code == 302
    assert ExternalAccountKey.objects.get(key_id=eab[0]).revoked_at is not None
    assert account_of(session).status == "valid"
    assert session.new_order("a.example.test").status_code == 201


def test_revoke_and_deactivation_commit_together_or_not_at_all(
    application, reusable_eab, monkeypatch
):
    for _ in range(2):
        registered(Client(), application, reusable_eab)
    eab = ExternalAccountKey.objects.get(key_id=reusable_eab[0])
    record = account_services.record
    calls: list[str] = []

    def failing_second_deactivation(action, **kwargs):
        calls.append(action)
        if calls.count("acme.account_deactivated") == 2:
            raise RuntimeError("the database went away")
        record(action, **kwargs)

    monkeypatch.setattr(account_services, "record", failing_second_deactivation)
    with pytest.raises(RuntimeError):
        services.revoke_eab_key(eab, actor=ADMIN, deactivate_accounts=True)
    eab.refresh_from_db()
    assert eab.revoked_at is None
    assert set(Account.objects.values_list("status", flat=True)) == {"valid"}


def test_an_expired_credential_still_offers_its_accounts(client, personas, application, eab):
    registered(Client(), application, eab)
    ExternalAccountKey.objects.update(expires_at=timezone.now() - timedelta(days=1))
    client.force_login(personas["admin"])
    page = client.get(revoke_url(application, eab[0])).content.decode()
    assert "Also deactivate 1 account bound with this key" in page
