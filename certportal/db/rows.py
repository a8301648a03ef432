"""New rows of several tables written together: the issuance pipeline's write.

An issued certificate is four rows (request, certificate, audit event, outbox event).
The plain ORM writes them with one ``bulk_create`` per table inside ``atomic()``: six
round trips to PostgreSQL (BEGIN, four INSERTs, COMMIT). With
``CERTPORTAL_DB_ONE_STATEMENT_WRITES`` on PostgreSQL, each table's INSERT is compiled by
Django's own ``InsertQuery`` exactly as ``bulk_create`` compiles it, and the INSERTs are
sent as one statement: every one but the last in a WITH clause, which PostgreSQL runs
once and to completion. One statement is atomic on its own, so outside a transaction it
needs no BEGIN or COMMIT either: one round trip instead of six. Foreign keys between the
new rows hold: Django declares them DEFERRABLE INITIALLY DEFERRED, and the checks see
every row the statement wrote.

Like ``bulk_create``: no signals. Unlike it, the one statement returns nothing, so rows
must carry their primary key or not need it afterwards (audit and outbox events get
theirs from a sequence, unread). docs/performance.md lists the Django internals used here
and the figures that keep this path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import AutoField, Model
from django.db.models.sql import InsertQuery

# PostgreSQL's extended protocol carries at most 65,535 parameters per statement.
_MAX_PARAMS = 32_000


def insert_rows(*batches: Sequence[Model], using: str = DEFAULT_DB_ALIAS) -> None:
    """INSERT every batch (unsaved instances of one model each), all or nothing."""
    batches = tuple(batch for batch in batches if batch)
    if not batches:
        return
    for batch in batches:
        _check(batch)
    connection = connections[using]
    if connection.vendor == "postgresql" and settings.CERTPORTAL_DB_ONE_STATEMENT_WRITES:
        statements = [_compile(batch, connection) for batch in batches]
        if sum(len(params) for _, params in statements) <= _MAX_PARAMS:
            with connection.cursor() as cursor:
                cursor.execute(*_with_clause(statements))
            _mark_saved(batches, using)
            return
    with transaction.atomic(using=using, savepoint=False):
        for batch in batches:
            type(batch[0])._default_manager.using(using).bulk_create(batch)


def _check(batch: Sequence[Model]) -> None:
    model = type(batch[0])
    if any(type(obj) is not model for obj in batch):
        raise TypeError("a batch holds instances of one model")
    with_pk = [obj.pk is not None for obj in batch]
    if any(with_pk) and not all(with_pk):
        raise ValueError(f"{model._meta.label}: either every row or none carries its primary key")


def _compile(batch: Sequence[Model], connection: Any) -> tuple[str, list[Any]]:
    """Django's compile of the batch's INSERT, as bulk_create prepares it."""
    model = type(batch[0])
    has_pk = batch[0].pk is not None
    for obj in batch:  # as bulk_create: related instances to ids, unsaved ones refused
        obj._prepare_related_fields_for_save(operation_name="insert_rows")  # type: ignore[attr-defined]
    fields = [
        f
        for f in model._meta.concrete_fields
        if not f.generated and (has_pk or not isinstance(f, AutoField))
    ]
    query = InsertQuery(model)
    query.insert_values(fields, list(batch))
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def _with_clause(statements: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    *first, (last_sql, last_params) = statements
    if not first:
        return last_sql, last_params
    ctes = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(first))
    params = [p for _, ps in first for p in ps] + last_params
    return f"WITH {ctes} {last_sql}", params


def _mark_saved(batches: Sequence[Sequence[Model]], using: str) -> None:
    for batch in batches:
        for obj in batch:
            obj._state.adding = False
            obj._state.db = using
