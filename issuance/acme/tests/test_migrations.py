"""The migration that makes EAB credentials single-use keeps the existing ones reusable
(clients may already share them) and records when each first bound an account."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def executor():
    """A migration executor; afterwards the database is migrated to the latest again."""
    executor = MigrationExecutor(connection)
    yield executor
    latest = MigrationExecutor(connection)
    latest.migrate(latest.loader.graph.leaf_nodes())


def _single_use_migration(executor: MigrationExecutor) -> tuple[str, str]:
    """Found by name: migrations may be renumbered when branches merge."""
    (key,) = [k for k in executor.loader.disk_migrations if k[1].endswith("_eab_single_use")]
    return key


def test_existing_credentials_stay_reusable_and_get_bound_at(executor, application, tls_profile):
    after = [_single_use_migration(executor)]
    parents = executor.loader.graph.node_map[after[0]].parents
    before = [parent.key for parent in parents if parent.key[0] == "acme"]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    key_model = old.get_model("acme", "ExternalAccountKey")
    account_model = old.get_model("acme", "Account")
    used = key_model.objects.create(application_id=application.pk, name="used", hmac_key="x")
    key_model.objects.create(application_id=application.pk, name="unused", hmac_key="x")
    first = timezone.now() - timedelta(days=3)
    for i, created in enumerate((first, first + timedelta(days=1))):
        account = account_model.objects.create(
            id=f"a{i}", application_id=application.pk, profile_id=tls_profile.pk,
            eab_key=used, jwk={}, thumbprint=f"t{i}",
        )  # fmt: skip
        account_model.objects.filter(pk=account.pk).update(created_at=created)

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps.get_model("acme", "ExternalAccountKey")
    rows = {k.name: (k.reusable, k.bound_at) for k in new.objects.all()}
    assert rows == {"used": (True, first), "unused": (True, None)}
    fresh = new.objects.create(application_id=application.pk, name="fresh", hmac_key="x")
    assert fresh.reusable is False
