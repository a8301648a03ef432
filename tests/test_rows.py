"""certportal.rows: new rows of several tables in one statement, all or nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from applications.models import Application, AuditEvent
from certportal import rows
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
def test_a_failing_insert_writes_nothing_of_any_table() -> None:
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


@pytest.mark.django_db
def test_a_shape_seen_before_skips_djangos_compile_and_writes_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows._SHAPES.clear()
    app = Application.objects.create(name="shape-app")
    first = [*outbox(app, 1), AuditEvent(application=app, actor_label="a", action="x")]
    rows.insert_rows(first[:1], first[1:])
    compiled: list[str] = []
    original = rows._django_sql

    def counted(shape: Any, *args: Any, **kwargs: Any) -> tuple[str, list[Any]]:
        compiled.append(shape.model.__name__)
        return original(shape, *args, **kwargs)

    monkeypatch.setattr(rows, "_django_sql", counted)

    second = outbox(app, 1)
    second[0].payload = {"nested": ["list", 1, None]}
    rows.insert_rows(second, [AuditEvent(application=app, actor_label="b", action="y")])

    assert compiled == []  # both shapes learnt from the first write
    stored = OutboxEvent.objects.filter(application=app).order_by("id")
    assert [e.payload for e in stored] == [{"i": 0}, {"nested": ["list", 1, None]}]
    assert all(e.created_at is not None and e.dispatched_at is None for e in stored)
    assert AuditEvent.objects.get(application=app, action="y").actor_label == "b"


@pytest.mark.django_db
def test_an_expression_among_the_values_is_compiled_by_django() -> None:
    from django.db.models.functions import Now

    app = Application.objects.create(name="expr-app")
    rows.insert_rows(outbox(app, 1))  # the shape is learnt
    [event] = batch = outbox(app, 1)
    event.dispatched_at = Now()

    rows.insert_rows(batch)

    assert OutboxEvent.objects.filter(application=app, dispatched_at__isnull=False).count() == 1


@pytest.mark.skipif(not POSTGRES, reason="psycopg's statement cache: PostgreSQL only")
@pytest.mark.django_db
def test_psycopg_parses_a_statement_of_many_parameters_once() -> None:
    from psycopg import _queries

    app = Application.objects.create(name="cached-app")

    def write() -> int:
        batches = [[AuditEvent(application=app, actor_label="a", action="x")] for _ in range(6)]
        params = sum(len(rows._compile(b, connection)[1]) for b in batches)
        rows.insert_rows(
            *[[AuditEvent(application=app, actor_label="a", action="x")] for _ in range(6)]
        )
        return params

    assert write() > 50  # above psycopg's own limit for caching a statement's parse
    before = _queries._query2pg.cache_info()
    write()
    after = _queries._query2pg.cache_info()

    assert after.hits > before.hits and after.misses == before.misses
    assert AuditEvent.objects.filter(application=app, action="x").count() == 12


def prepared_on_server(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall() if table in row[0]]


@pytest.mark.skipif(not POSTGRES, reason="server-side prepared statements: PostgreSQL only")
@pytest.mark.django_db
def test_the_write_is_prepared_on_the_server_and_nothing_else_is() -> None:
    app = Application.objects.create(name="prepared-app")
    for _ in range(6):
        list(AuditEvent.objects.filter(application=app))
    assert prepared_on_server("applications_auditevent") == []

    for _ in range(3):
        rows.insert_rows(outbox(app), [AuditEvent(application=app, actor_label="a", action="p")])
        [statement] = prepared_on_server("applications_auditevent")
        assert statement.startswith("WITH w0 AS (INSERT INTO")

    assert connection.connection.prepare_threshold is None  # as Django leaves it
    assert AuditEvent.objects.filter(application=app, action="p").count() == 3


@pytest.mark.skipif(not POSTGRES, reason="server-side prepared statements: PostgreSQL only")
@pytest.mark.django_db
def test_prepared_writes_can_be_turned_off(settings: Any) -> None:
    settings.CERTPORTAL_DB_PREPARED_WRITES = False
    app = Application.objects.create(name="unprepared-app")
    for _ in range(3):
        rows.insert_rows(outbox(app), [AuditEvent(application=app, actor_label="a", action="u")])
    assert prepared_on_server("applications_auditevent") == []
    assert AuditEvent.objects.filter(application=app, action="u").count() == 3
