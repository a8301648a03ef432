"""Record a state change: one audit event and one outbox event, in the caller's transaction.

Services call ``record()`` inside their ``transaction.atomic()`` block, so the audit trail
and the events that alerts and syncs consume can never disagree with the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import models

from applications.models import AuditEvent
from certportal.models import OutboxEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from applications.models import Application


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


def record(
    action: str,
    *,
    actor: Actor,
    obj: models.Model | None = None,
    application: Application | None = None,
    data: dict[str, Any] | None = None,
    outbox: bool = True,
) -> None:
    """Write the audit event and, unless outbox is False, the outbox event."""
    object_type = obj._meta.label_lower if obj is not None else ""
    object_id = str(obj.pk) if obj is not None else ""
    data = data or {}
    AuditEvent.objects.create(
        application=application,
        actor_id=actor.user_id,
        actor_label=actor.describe(),
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=str(obj)[:200] if obj is not None else "",
        data=data,
        source_ip=actor.source_ip,
    )
    if outbox:
        OutboxEvent.objects.create(
            event_type=action,
            application=application,
            object_type=object_type,
            object_id=object_id,
            payload=data,
        )
