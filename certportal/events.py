"""Record a state change: one audit event and one outbox event, in the caller's transaction.

Services call ``record()`` inside their ``transaction.atomic()`` block, so the audit trail
and the events that alerts and syncs consume can never disagree with the data. Every
action is a member of ``EventType`` (certportal.event_types); anything else is refused.
The audit model is named by its label (``applications.AuditEvent``): applications'
modules import this one, never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.db import models, transaction
from django.utils import timezone

from certportal.db.rows import insert_rows
from certportal.event_types import EventType
from certportal.models import OutboxEvent
from certportal.outbox import queue_dispatch
from certportal.outbox import wanted as outbox_wanted

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from applications.models import Application, AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who did something: a user, or a labelled machine identity (ACME account, device)."""

    user: AbstractBaseUser | AnonymousUser | None = None
    label: str = ""
    source_ip: str | None = None

    @property
    def user_id(self) -> int | None:
        user = self.user
        if user is None or not user.is_authenticated:
            return None
        return user.pk

    def describe(self) -> str:
        if self.label:
            return self.label
        user = self.user
        if user is not None and user.is_authenticated:
            return user.get_username()
        return "system"


SYSTEM = Actor(label="system")


@dataclass(frozen=True)
class Event:
    """One state change to record: an audit event and (usually) an outbox event."""

    action: EventType
    actor: Actor
    obj: models.Model | None = None
    application: Application | None = None
    data: dict[str, Any] = field(default_factory=dict)
    outbox: bool = True


def record(
    action: EventType,
    *,
    actor: Actor,
    obj: models.Model | None = None,
    application: Application | None = None,
    data: dict[str, Any] | None = None,
    outbox: bool = True,
) -> None:
    """Write the audit event and, unless outbox is False, the outbox event."""
    record_many([Event(action, actor, obj, application, data or {}, outbox)])


def record_many(events: Sequence[Event]) -> None:
    """Write many events with one INSERT per table (the batch issuance path)."""
    rows = event_rows(events)
    insert_rows(rows.audits, rows.outbox)
    rows.written()


@dataclass(frozen=True)
class EventRows:
    """The unsaved rows that record events; a caller that writes them together with its
    own rows (certportal.db.rows) calls ``written()`` after the write."""

    audits: list[AuditEvent]
    outbox: list[OutboxEvent]
    wanted: bool

    def written(self) -> None:
        if self.wanted:
            # After commit, make sure the dispatcher runs (certportal.outbox).
            transaction.on_commit(queue_dispatch)


@cache
def _audit_model() -> type[AuditEvent]:
    return cast("type[AuditEvent]", apps.get_model("applications", "AuditEvent"))


def event_rows(events: Sequence[Event]) -> EventRows:
    """The audit and outbox rows for events, not yet written."""
    audits, outbox = [], []
    audit_event = _audit_model()
    now = timezone.now()
    wanted = False
    asked: dict[tuple[str, int | None], bool] = {}  # a batch asks once per kind and place
    for event in events:
        action = _event_type(event.action)
        object_type = event.obj._meta.label_lower if event.obj is not None else ""
        object_id = str(event.obj.pk) if event.obj is not None else ""
        audits.append(
            audit_event(
                application=event.application,
                actor_id=event.actor.user_id,
                actor_label=event.actor.describe(),
                action=action,
                object_type=object_type,
                object_id=object_id,
                object_repr=str(event.obj)[:200] if event.obj is not None else "",
                data=event.data,
                source_ip=event.actor.source_ip,
            )
        )
        if event.outbox:
            # An event no consumer wants now is written already dispatched: it stays in
            # the log, and no worker is woken for it (certportal.outbox.wanted).
            key = (action, event.application.pk if event.application else None)
            wants = asked.get(key)
            if wants is None:
                wants = asked[key] = outbox_wanted(*key)
            wanted = wanted or wants
            outbox.append(
                OutboxEvent(
                    event_type=action,
                    application=event.application,
                    object_type=object_type,
                    object_id=object_id,
                    payload=event.data,
                    dispatched_at=None if wants else now,
                )
            )
    return EventRows(audits, outbox, wanted)


def _event_type(action: str) -> str:
    """The stored value of action; a name that is not an EventType member is a bug in the
    caller, refused before anything is written."""
    try:
        return EventType(action).value
    except ValueError:
        raise ValueError(f"{action!r} is not an event type (certportal.event_types)") from None
