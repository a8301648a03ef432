"""Querysets compiled once: the hot protocol lookups skip Django's per-call query building.

Building and compiling a queryset costs Django several hundred microseconds of CPU, often
more than running it (an ACME authorization lookup: about 0.4 ms to build and compile,
0.1 ms to execute). ``PreparedQuery`` builds its queryset once per thread and database
connection, learns which SQL parameters carry which of the caller's values, and from then
on executes the same SQL with the new values, turning rows into model instances (with
their select_related objects and annotations) or tuples exactly as the queryset would.

What may be prepared: a function of keyword arguments returning a queryset whose SQL does
not depend on the values, only on where they go: equality-style filters on str, int or
UUID values that reach the database unchanged (or only tagged with their SQL type, as psycopg's
Int4). The builder must not branch on the values. The first compile checks what it can:
each argument is compiled again with a different value, and the SQL text must stay the
same while the parameters that carry that argument, and only those, change to that
value. A shape that fails the check (or a backend that converts the value, as SQLite
does for UUIDs) is run through the ORM on that connection, as is a call with a value of
another type than the first call's (None, say, which the ORM turns into IS NULL): the
answer is always the ORM's.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesListIterable, get_related_populators
from django.db.transaction import TransactionManagementError

logger = logging.getLogger(__name__)

_SCALARS = (str, int, uuid.UUID)


class NotPreparable(Exception):
    """The queryset's SQL depends on the values, not only on where they go."""


def _other(value: Any) -> Any:
    """A different value of the same type, to see which parameters move with it."""
    if type(value) is str:
        return value + "~"
    if type(value) is int:
        return value + 7919
    if type(value) is uuid.UUID:
        return uuid.UUID(int=value.int ^ 1)
    raise NotPreparable(f"unsupported argument type {type(value).__name__}")


class _Compiled:
    """One compile of the shape on one connection: SQL, where each argument goes, and
    what turns rows into results."""

    def __init__(
        self, build: Callable[..., QuerySet[Any, Any]], alias: str, values: dict[str, Any]
    ):
        queryset = build(**values).using(alias)
        self.compiler = queryset.query.get_compiler(using=alias)
        self.sql, params = self.compiler.as_sql()
        self.params = list(params)
        self.slots: dict[str, list[int]] = {}
        self.wrappers: dict[str, type] = {}
        for name, value in values.items():
            moved_value = _other(value)
            try:
                moved = build(**{**values, name: moved_value}).using(alias)
                sql, other = moved.query.get_compiler(using=alias).as_sql()
            except (TypeError, ValueError) as error:  # the field refuses the other value
                raise NotPreparable(f"{name!r}: {error}") from error
            if sql != self.sql or len(other) != len(self.params):
                raise NotPreparable(f"the SQL depends on the value of {name!r}")
            changed = [i for i, (a, b) in enumerate(zip(self.params, other, strict=True)) if a != b]
            if not changed or any(
                not isinstance(other[i], type(value))
                or type(other[i]) is not type(self.params[i])
                or other[i] != moved_value
                or self.params[i] != value
                for i in changed
            ):
                raise NotPreparable(f"{name!r} does not reach the database unchanged")
            self.slots[name] = changed
            # The backend may tag a value with its SQL type (psycopg's Int4 for an
            # integer column): a subclass of the value's type, applied again per call.
            self.wrappers[name] = type(self.params[changed[0]])
        self.iterable = queryset._iterable_class
        if self.iterable not in (ModelIterable, ValuesListIterable):
            raise NotPreparable("only model instances and non-flat values_list() rows")
        self.types = {name: type(value) for name, value in values.items()}
        self.alias = alias
        self.for_update = queryset.query.select_for_update
        if self.iterable is ModelIterable:
            self._model_setup()

    def _model_setup(self) -> None:
        compiler = self.compiler
        klass_info = compiler.klass_info
        assert klass_info is not None
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in compiler.select[self.start : self.end]]
        self.populators = get_related_populators(klass_info, compiler.select, self.alias)  # type: ignore[call-arg]  # stubs: Django 6
        self.annotations = compiler.annotation_col_map or {}

    def run(self, values: dict[str, Any]) -> list[Any]:
        params = list(self.params)
        for name, slots in self.slots.items():
            wrapper, value = self.wrappers[name], values[name]
            if wrapper is not type(value):
                value = wrapper(value)
            for slot in slots:
                params[slot] = value
        connection = connections[self.alias]
        if (
            self.for_update
            and connection.get_autocommit()
            and connection.features.has_select_for_update
        ):
            # As the ORM says: a lock taken outside a transaction would end at once.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        converted = self.compiler.results_iter(results=[rows], tuple_expected=True)
        if self.iterable is ValuesListIterable:
            return list(converted)
        return [self._instance(row) for row in converted]

    def _instance(self, row: tuple[Any, ...]) -> Any:
        obj = self.model.from_db(self.alias, self.init_list, row[self.start : self.end])
        for populator in self.populators:
            populator.populate(row, obj)
        for attr, position in self.annotations.items():
            setattr(obj, attr, row[position])
        return obj


class PreparedQuery:
    """A queryset shape, compiled once per thread and connection, run with new values.

    ``build`` takes keyword arguments and returns the queryset; calling the
    PreparedQuery with the same keywords returns the queryset's results as a list."""

    def __init__(self, build: Callable[..., QuerySet[Any, Any]]):
        self.build = build
        self._local = threading.local()

    def __call__(self, *, using: str = "default", **values: Any) -> list[Any]:
        compiled = self._compiled(using, values)
        if compiled is None or any(
            type(value) is not compiled.types[name] for name, value in values.items()
        ):
            return list(self.build(**values).using(using))
        return compiled.run(values)

    def prepared(self, using: str = "default") -> bool:
        """Whether this thread runs the shape prepared on that database (for tests)."""
        return isinstance(self._cache().get((using, id(connections[using]))), _Compiled)

    def _cache(self) -> dict[tuple[str, int], _Compiled | None]:
        # Per thread: a compiler holds its thread's connection (converters read it).
        cache: dict[tuple[str, int], _Compiled | None] = self._local.__dict__.setdefault("c", {})
        return cache

    def _compiled(self, alias: str, values: dict[str, Any]) -> _Compiled | None:
        cache = self._cache()
        key = (alias, id(connections[alias]))
        if key in cache:
            return cache[key]
        if not all(type(v) in _SCALARS for v in values.values()):
            return None  # learn the shape from a call with ordinary values
        try:
            found: _Compiled | None = _Compiled(self.build, alias, values)
        except NotPreparable as why:
            logger.debug("not prepared on %s: %s", alias, why)
            found = None
        cache[key] = found
        return found
