"""certportal.db.rows: new rows of several tables written together, all or nothing, and
exactly the rows the plain ORM writes."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from applications.models import Application, AuditEvent
from certportal.db import rows
from certportal.models import OutboxEvent

POSTGRES = connection.vendor == "postgresql"


def outbox(app: Application | None = None, n: int = 1) -> list[OutboxEvent]:
    return [
        OutboxEvent(event_type="test.event", application=app, payload={"i": i}) for i in range(n)
    ]


@pytest.mark.django_db(transaction=True)
def test_rows_of_several_tables_referring_to_each_other_are_written() -> None:
    app = Application(pk=900_001, name="rows-app")  # its key is known before the write
    events = outbox(app, 2)
    audit = AuditEvent(application=app, actor_label="t", action="test.event")

    with CaptureQueriesContext(connection) as ctx:
        rows.insert_rows([app], events, [audit])

    assert Application.objects.get(pk=900_001).name == "rows-app"
    assert OutboxEvent.objects.filter(application_id=900_001).count() == 2
    assert AuditEvent.objects.filter(application_id=900_001, action="test.event").exists()
    statements = [q["sql"] for q in ctx.captured_queries]
    if POSTGRES:  # one statement, atomic by itself: no BEGIN, no COMMIT
        assert len(statements) == 1 and statements[0].startswith("WITH ")
    else:
        assert sum(s.startswith("INSERT") for s in statements) == 3
    # auto_now_add and field defaults are applied as bulk_create applies them
    assert all(e.created_at is not None for e in events)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("one_statement", [True, False])
def test_a_failing_insert_writes_nothing_of_any_table(settings: Any, one_statement: bool) -> None:
    settings.CERTPORTAL_DB_ONE_STATEMENT_WRITES = one_statement
    before = OutboxEvent.objects.count()
    clash = [Application(name="same-name"), Application(name="same-name")]

    with pytest.raises(IntegrityError):
        rows.insert_rows(outbox(n=3), clash)

    assert OutboxEvent.objects.count() == before
    assert not Application.objects.filter(name="same-name").exists()


@pytest.mark.django_db(transaction=True)
def test_too_many_parameters_for_one_statement_still_all_or_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rows, "_MAX_PARAMS", 10)
    before = OutboxEvent.objects.count()

    with pytest.raises(IntegrityError):
        rows.insert_rows(outbox(n=5), [Application(name="x-1"), Application(name="x-1")])
    assert OutboxEvent.objects.count() == before

    with CaptureQueriesContext(connection) as ctx:
        rows.insert_rows(outbox(n=5), [Application(name="x-2")])
    assert OutboxEvent.objects.count() == before + 5
    assert sum(q["sql"].startswith("INSERT") for q in ctx.captured_queries) == 2


@pytest.mark.django_db
def test_written_rows_are_saved_instances() -> None:
    [app] = batch = [Application(pk=900_002, name="saved-app")]
    rows.insert_rows(batch)

    app.description = "changed"
    app.save()  # an UPDATE: the instance knows it is in the database

    assert Application.objects.get(pk=900_002).description == "changed"
    assert app._state.db == "default" and not app._state.adding


@pytest.mark.django_db
def test_a_batch_is_one_model_with_or_without_primary_keys() -> None:
    with pytest.raises(TypeError):
        rows.insert_rows([Application(name="a"), *outbox()])
    with pytest.raises(ValueError, match="primary key"):
        rows.insert_rows([Application(pk=900_003, name="b"), Application(name="c")])
    assert not Application.objects.filter(name__in=["a", "b", "c"]).exists()
    rows.insert_rows([], [])  # nothing to write is not an error


def _written(app: Application) -> list[dict[str, Any]]:
    """What the database holds for the app's events, without keys and clock values."""
    ignored = {"id", "created_at", "dispatched_at"}
    stored = [
        *OutboxEvent.objects.filter(application=app).order_by("id"),
        *AuditEvent.objects.filter(application=app).order_by("id"),
    ]
    return [
        {k: v for k, v in model_to_dict(row).items() if k not in ignored and k != "application"}
        for row in stored
    ]


@pytest.mark.django_db
def test_the_one_statement_write_stores_what_the_plain_orm_stores(settings: Any) -> None:
    from django.db.models.functions import Now

    written = {}
    for one_statement in (True, False):
        settings.CERTPORTAL_DB_ONE_STATEMENT_WRITES = one_statement
        app = Application.objects.create(name=f"same-{one_statement}")
        events = outbox(app, 2)
        events[0].payload = {"nested": ["list", 1, None], "text": "é"}
        events[1].dispatched_at = Now()  # an expression among the values
        audits = [AuditEvent(application=app, actor_label="a", action="x", data={"k": [1]})]
        with CaptureQueriesContext(connection) as ctx:
            rows.insert_rows(events, audits)
        inserts = [q["sql"] for q in ctx.captured_queries if "INSERT" in q["sql"]]
        assert len(inserts) == (1 if one_statement and POSTGRES else 2)
        assert all(e.created_at is not None and not e._state.adding for e in events)
        written[one_statement] = _written(app)

    assert written[True] == written[False]
    assert OutboxEvent.objects.filter(dispatched_at__isnull=False).count() == 2  # Now() ran


@pytest.mark.django_db
def test_the_plain_orm_write_when_one_statement_writes_are_off(settings: Any) -> None:
    settings.CERTPORTAL_DB_ONE_STATEMENT_WRITES = False
    app = Application.objects.create(name="plain-app")

    with CaptureQueriesContext(connection) as ctx:
        rows.insert_rows(outbox(app), [AuditEvent(application=app, actor_label="a", action="u")])

    assert not any(q["sql"].startswith("WITH") for q in ctx.captured_queries)
    assert sum(q["sql"].startswith("INSERT") for q in ctx.captured_queries) == 2
    assert AuditEvent.objects.filter(application=app, action="u").count() == 1


def test_a_release_other_than_the_checked_one_is_warned_about(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from certportal import db

    assert db.check_versions() == []  # the installed releases are the checked ones
    monkeypatch.setitem(db.CHECKED_AGAINST, "django", "4.0")
    [warning] = db.check_versions()
    assert warning.id == "certportal.W001" and "django" in warning.msg
