"""New rows of several tables written in one statement: the issuance pipeline's write.

An issued certificate is four rows (request, certificate, audit event, outbox event).
Written with one ``bulk_create`` each inside ``atomic()``, that is six round trips to
PostgreSQL (BEGIN, four INSERTs, COMMIT), each with the ORM's and the driver's cost per
statement. ``insert_rows`` compiles each table's INSERT exactly as ``bulk_create`` would
(pre_save, defaults, the field's own conversion), then sends them on PostgreSQL as one
statement: every INSERT but the last goes into a WITH clause, which PostgreSQL runs once
and to completion. One statement is atomic on its own, so outside a transaction the
write needs no BEGIN or COMMIT either: one round trip instead of six. Foreign keys
between the new rows hold: Django declares them DEFERRABLE INITIALLY DEFERRED, and the
checks see every row the statement wrote. The statement is prepared on the server, so
PostgreSQL parses and plans each shape once per connection (``_prepared_on_server``).

Other backends (SQLite) run the INSERTs one after the other in one transaction. Like
``bulk_create``: no signals, no RETURNING; so rows must carry their primary key or not
need it afterwards (audit and outbox events get theirs from a sequence, unread).

Django's INSERT compile costs more than the rest of the write. Each shape (model, number
of rows, with or without primary keys) is compiled by Django once per process; later
batches of that shape reuse its SQL with parameters prepared as Django prepares them
(``pre_save``, ``get_db_prep_save``), which that first compile checks equal to Django's
own. Values that are expressions, and shapes that fail the check, go through Django.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import AutoField, Model
from django.db.models.sql import InsertQuery

# PostgreSQL's extended protocol carries at most 65,535 parameters per statement.
_MAX_PARAMS = 32_000


def insert_rows(*batches: Sequence[Model], using: str = DEFAULT_DB_ALIAS) -> None:
    """INSERT every batch (unsaved instances of one model each), all or nothing."""
    connection = connections[using]
    statements = [_compile(batch, connection) for batch in batches if batch]
    if not statements:
        return
    if connection.vendor == "postgresql" and sum(len(p) for _, p in statements) <= _MAX_PARAMS:
        statements = [_with_clause(statements)]
    if len(statements) == 1:
        with connection.cursor() as cursor, _prepared_on_server(connection):
            cursor.execute(*statements[0])
    else:
        with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
    for batch in batches:
        for obj in batch:
            obj._state.adding = False
            obj._state.db = using


@contextmanager
def _prepared_on_server(connection: Any) -> Iterator[None]:
    """Statements run inside are prepared on the PostgreSQL server, which from their
    second run on skips parsing and planning them (psycopg prepares what runs while its
    connection's prepare_threshold is 0; Django keeps it off).

    Only for statements that return no rows: after a migration changes the type of a
    column a prepared SELECT returns, that SELECT fails ("cached plan must not change
    result type") until its connection closes, whereas an INSERT is planned anew.
    """
    if connection.vendor != "postgresql" or not settings.CERTPORTAL_DB_PREPARED_WRITES:
        yield
        return
    raw = connection.connection
    threshold = raw.prepare_threshold
    raw.prepare_threshold = 0
    try:
        yield
    finally:
        raw.prepare_threshold = threshold


def _compile(batch: Sequence[Model], connection: Any) -> tuple[str, list[Any]]:
    model = type(batch[0])
    if any(type(obj) is not model for obj in batch):
        raise TypeError("a batch holds instances of one model")
    opts = model._meta
    with_pk = [obj.pk is not None for obj in batch]
    has_pk = all(with_pk)
    if any(with_pk) and not has_pk:
        raise ValueError(f"{opts.label}: either every row or none carries its primary key")
    for obj in batch:  # as bulk_create: related instances to ids, unsaved ones refused
        obj._prepare_related_fields_for_save(operation_name="insert_rows")  # type: ignore[attr-defined]
    key = (connection.alias, model, has_pk, len(batch))
    known = _SHAPES.get(key)
    shape = known or _Shape(
        model,
        [
            f
            for f in opts.concrete_fields
            if not f.generated and (has_pk or not isinstance(f, AutoField))
        ],
    )
    rows = shape.values(batch, connection)
    if rows is None:  # an expression among the values: only Django compiles that
        return _django_sql(shape, batch, connection, raw=False)
    if shape.sql is not None:
        return shape.sql, shape.params(rows)
    sql, params = _django_sql(shape, batch, connection, raw=True)
    if known is None:  # first sight: learn it (a shape that fails stays with Django)
        shape.learn(sql, params, rows)
        if len(_SHAPES) >= 256:
            _SHAPES.clear()
        _SHAPES[key] = shape
    return sql, params


class _Shape:
    """One model's INSERT of a number of rows: the SQL Django compiles for it, and how
    its parameters are laid out (row after row, or a list per column as PostgreSQL's
    UNNEST insert takes them). Learnt from Django's own compile, once."""

    def __init__(self, model: type[Model], fields: list[Any]) -> None:
        self.model = model
        self.fields = fields
        self.sql: str | None = None
        self.by_column = False

    def values(self, batch: Sequence[Model], connection: Any) -> list[list[Any]] | None:
        """Each row's parameters, as Django prepares them (pre_save: defaults, auto_now),
        or None when a value is an expression."""
        rows = []
        for obj in batch:
            row = []
            for f in self.fields:
                value = f.pre_save(obj, True)
                if hasattr(value, "resolve_expression"):
                    return None
                row.append(f.get_db_prep_save(value, connection=connection))
            rows.append(row)
        return rows

    def params(self, rows: list[list[Any]]) -> list[Any]:
        if self.by_column:
            return [list(column) for column in zip(*rows, strict=True)]
        return [value for row in rows for value in row]

    def learn(self, sql: str, params: list[Any], rows: list[list[Any]]) -> None:
        """Keep Django's SQL if our parameters for these rows are Django's, in one of
        the two layouts; otherwise every batch of this shape goes through Django. A
        field with its own placeholder (get_placeholder) may make the SQL depend on the
        values: such shapes always go through Django."""
        if any(hasattr(f, "get_placeholder") for f in self.fields):
            return
        for self.by_column in (False, True):
            if _same(self.params(rows), params):
                self.sql = sql
                return


_SHAPES: dict[tuple[str, type[Model], bool, int], _Shape] = {}


def _same(ours: list[Any], django: list[Any]) -> bool:
    # Adapters such as psycopg's Jsonb do not compare by value: compare what they wrap.
    def key(value: Any) -> Any:
        if isinstance(value, list):
            return [key(v) for v in value]
        return (type(value), getattr(value, "obj", value))

    return len(ours) == len(django) and all(
        key(a) == key(b) for a, b in zip(ours, django, strict=True)
    )


def _django_sql(
    shape: _Shape, batch: Sequence[Model], connection: Any, *, raw: bool
) -> tuple[str, list[Any]]:
    """Django's compile. raw: the values as they stand (pre_save already ran)."""
    query = InsertQuery(shape.model)
    query.insert_values(shape.fields, list(batch), raw=raw)
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def _with_clause(statements: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    *first, (last_sql, last_params) = statements
    if not first:
        return last_sql, last_params
    ctes = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(first))
    params = [p for _, ps in first for p in ps] + last_params
    return f"WITH {ctes} {last_sql}", params
