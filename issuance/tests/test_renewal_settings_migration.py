"""Moving renewal into issuance keeps what is stored: every Application's settings (and
their content type) and an installed renewal schedule. Only the code moved."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_q.models import Schedule

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def executor():
    """A migration executor; afterwards the database is migrated to the latest again."""
    executor = MigrationExecutor(connection)
    yield executor
    latest = MigrationExecutor(connection)
    latest.migrate(latest.loader.graph.leaf_nodes())


def _migration(executor: MigrationExecutor, app: str, suffix: str) -> tuple[str, str]:
    """Found by name: migrations may be renumbered when branches merge."""
    (key,) = [k for k in executor.loader.disk_migrations if k[0] == app and k[1].endswith(suffix)]
    return key


def _parents(executor: MigrationExecutor, key: tuple[str, str]) -> list[tuple[str, str]]:
    return [p.key for p in executor.loader.graph.node_map[key].parents if p.key[0] == key[0]]


def test_settings_rows_survive_the_move_to_issuance(executor, application):
    taken_over = _migration(executor, "issuance", "_renewal_settings")
    given_up = _migration(executor, "alerts", "_renewal_settings_moved_to_issuance")
    before = _parents(executor, given_up) + _parents(executor, taken_over)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("alerts", "RenewalSettings")
    old.objects.create(
        application_id=application.pk, auto_renew=False, renew_days_before=12, key_mode="reuse"
    )

    executor = MigrationExecutor(connection)
    executor.migrate([taken_over])
    new = executor.loader.project_state([taken_over]).apps.get_model("issuance", "RenewalSettings")
    rows = list(new.objects.values_list("application_id", "auto_renew", "renew_days_before"))
    assert rows == [(application.pk, False, 12)]
    assert new.objects.get().key_mode == "reuse"
    labels = set(
        ContentType.objects.filter(model="renewalsettings").values_list("app_label", flat=True)
    )
    assert labels == {"issuance"}


def test_an_installed_renewal_schedule_follows_the_task_to_its_new_module(executor):
    moved = _migration(executor, "issuance", "_renewal_tasks_moved")
    before = _parents(executor, moved)
    executor.migrate(before)
    Schedule.objects.create(name="renewal-sweep", func="issuance.tasks.renew_due_certificates")

    executor = MigrationExecutor(connection)
    executor.migrate([moved])
    assert Schedule.objects.get(name="renewal-sweep").func == (
        "issuance.renewal.tasks.renew_due_certificates"
    )
