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
checks see every row the statement wrote.

Other backends (SQLite) run the INSERTs one after the other in one transaction. Like
``bulk_create``: no signals, no RETURNING; so rows must carry their primary key or not
need it afterwards (audit and outbox events get theirs from a sequence, unread).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
        with connection.cursor() as cursor:
            cursor.execute(*statements[0])
    else:
        with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
    for batch in batches:
        for obj in batch:
            obj._state.adding = False
            obj._state.db = using


def _compile(batch: Sequence[Model], connection: Any) -> tuple[str, list[Any]]:
    model = type(batch[0])
    if any(type(obj) is not model for obj in batch):
        raise TypeError("a batch holds instances of one model")
    opts = model._meta
    with_pk = [obj.pk is not None for obj in batch]
    if any(with_pk) and not all(with_pk):
        raise ValueError(f"{opts.label}: either every row or none carries its primary key")
    fields = [
        f
        for f in opts.concrete_fields
        if not f.generated and (all(with_pk) or not isinstance(f, AutoField))
    ]
    for obj in batch:  # as bulk_create: related instances to ids, unsaved ones refused
        obj._prepare_related_fields_for_save(operation_name="insert_rows")  # type: ignore[attr-defined]
    query = InsertQuery(model)
    query.insert_values(fields, list(batch), raw=False)
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def _with_clause(statements: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    *first, (last_sql, last_params) = statements
    if not first:
        return last_sql, last_params
    ctes = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(first))
    params = [p for _, ps in first for p in ps] + last_params
    return f"WITH {ctes} {last_sql}", params
