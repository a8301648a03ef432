"""The outbox consumer: certificate and approval events become deliveries for the
rules that match them, and approval events notify the people they concern (the
approvers of the step waiting, the requester of a decided request)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from alerts.channels import text
from alerts.choices import AlertEvent
from alerts.models import Delivery
from alerts.services.rules import Subject, _active_rules, _deliveries_for, _store, matches
from applications.models import Application
from certportal.event_types import EventType
from certportal.models import OutboxEvent

# Outbox event type -> alert event. certificate.issued becomes "renewed" when the new
# certificate replaces another.
EVENT_MAP: dict[str, AlertEvent] = {
    EventType.CERTIFICATE_ISSUED: AlertEvent.ISSUED,
    EventType.CERTIFICATE_REVOKED: AlertEvent.REVOKED,
    EventType.CERTIFICATE_RENEWAL_FAILED: AlertEvent.RENEWAL_FAILED,
    EventType.REQUEST_PENDING_APPROVAL: AlertEvent.APPROVAL_REQUESTED,
    # approvals records approval_given per step; a refusal ends in request.rejected.
    EventType.REQUEST_APPROVAL_GIVEN: AlertEvent.APPROVAL_DECIDED,
    EventType.REQUEST_REJECTED: AlertEvent.APPROVAL_DECIDED,
    EventType.REQUEST_EXPIRED: AlertEvent.APPROVAL_DECIDED,
    EventType.SYNC_FAILED: AlertEvent.SYNC_FAILED,
}
# Events that notify people directly (approvers, the requester), rules or not.
APPROVAL_EVENTS = frozenset(
    {
        EventType.REQUEST_PENDING_APPROVAL,
        EventType.REQUEST_APPROVAL_GIVEN,
        EventType.REQUEST_REJECTED,
        EventType.REQUEST_EXPIRED,
    }
)
DECISIONS: dict[str, str] = {
    EventType.REQUEST_APPROVAL_GIVEN: "approved",
    EventType.REQUEST_REJECTED: "rejected",
    EventType.REQUEST_EXPIRED: "expired unanswered",
}


# --- Outbox consumer ---------------------------------------------------------------------


def wants_event(event_type: str, application_id: int | None) -> bool:
    """Whether consume_events would act on such an event now: approver notices always,
    other mapped events only for an Application with an active rule for that kind (from
    the rules' cache; an issuance may turn out to be a renewal)."""
    kind = EVENT_MAP.get(event_type)
    if kind is None or not application_id:
        return False
    if event_type in APPROVAL_EVENTS:
        return True
    kinds = {kind, AlertEvent.RENEWED} if kind == AlertEvent.ISSUED else {kind}
    return any(kinds.intersection(rule.events) for rule in _active_rules(application_id))


def consume_events(events: Sequence[OutboxEvent]) -> None:
    """Outbox consumer: deliveries for the rules that match each event, and the direct
    notices of approvals (a step's approvers, the requester of a decided request).
    Idempotent (dedupe key = the event id)."""
    from issuance.models import Certificate

    relevant = [e for e in events if e.event_type in EVENT_MAP and e.application_id]
    if not relevant:
        return
    app_ids = {e.application_id for e in relevant if e.application_id is not None}
    rules = {app_id: _active_rules(app_id) for app_id in app_ids}
    # Only Applications with rules (and approval notices, which need none) cost more.
    relevant = [
        e for e in relevant if rules.get(e.application_id or 0) or e.event_type in APPROVAL_EVENTS
    ]
    if not relevant:
        return
    names = dict(
        Application.objects.filter(pk__in={e.application_id for e in relevant}).values_list(
            "pk", "name"
        )
    )
    issued_ids = [e.object_id for e in relevant if e.event_type == EventType.CERTIFICATE_ISSUED]
    replaced: dict[str, str] = {
        str(pk): serial
        for pk, serial in Certificate.objects.filter(
            pk__in=issued_ids, replaces__isnull=False
        ).values_list("pk", "replaces__serial_number")
    }
    requests = _request_names([e for e in relevant if e.event_type.startswith("request.")])
    requesters = _requesters([e for e in relevant if e.event_type in APPROVAL_EVENTS])
    now = timezone.now()
    deliveries: list[Delivery] = []
    for event in relevant:
        kind = _kind(event)
        if kind is None:
            continue
        if event.object_id in replaced:
            kind = AlertEvent.RENEWED
        payload = {
            **requests.get(event.object_id, {}),
            **_event_payload(event, kind, names, replaced.get(event.object_id)),
        }
        people = _people_to_notify(event, kind, requesters.get(event.object_id), payload)
        subject = Subject(
            payload.get("common_name", ""), payload.get("sans", []), payload.get("profile_id")
        )
        title = render_subject(kind, payload)
        for rule in rules.get(event.application_id or 0, []):
            if kind in rule.events and matches(rule, subject):
                deliveries += _deliveries_for(rule, kind, f"event:{event.pk}", title, payload, now)
        deliveries += _direct_notices(event, kind, people, title, payload, now)
    _store(deliveries)


def _kind(event: OutboxEvent) -> AlertEvent | None:
    """The alert an event raises. A step's approval asks the next step's approvers, the
    last one decides the request; an approval that leaves its step open raises none."""
    if event.event_type != EventType.REQUEST_APPROVAL_GIVEN:
        return EVENT_MAP[event.event_type]
    if event.payload.get("next_step"):
        return AlertEvent.APPROVAL_REQUESTED
    if event.payload.get("final"):
        return AlertEvent.APPROVAL_DECIDED
    return None


def _requesters(events: Sequence[OutboxEvent]) -> dict[str, Any]:
    """The requesters of the requests behind approval events, by request id."""
    from issuance.models import CertificateRequest

    ids = [UUID(e.object_id) for e in events if e.object_type == "issuance.certificaterequest"]
    if not ids:
        return {}
    rows = CertificateRequest.objects.filter(pk__in=ids, requester__isnull=False)
    return {str(r.pk): r.requester for r in rows.select_related("requester")}


def _people_to_notify(
    event: OutboxEvent, kind: str, requester: Any, payload: dict[str, Any]
) -> list[Any]:
    """Who an approval event notifies directly: the approvers of the step it opens, or
    the requester of the request it decides. Names them in the payload too, so channels
    show who was asked."""
    if event.event_type not in APPROVAL_EVENTS:
        return []
    if kind == AlertEvent.APPROVAL_REQUESTED:
        step = int(event.payload.get("next_step") or 1)
        people = approvers_for(UUID(event.object_id), step - 1)
        payload["step"] = step
        payload["approvers"] = [p.get_username() for p in people]
        return people
    if requester is None:
        return []
    payload["requester"] = requester.get_username()
    return [requester]


def approvers_for(request_id: UUID, step: int) -> list[Any]:
    """The people asked to decide the held request's step (0-based), as the gate that
    holds it names them (approval policies: the step's named users and role members)."""
    from issuance import gates

    return gates.deciders(request_id, step)


def _direct_notices(
    event: OutboxEvent,
    kind: str,
    people: Sequence[Any],
    title: str,
    payload: dict[str, Any],
    now: datetime,
) -> list[Delivery]:
    """One email per person with an address, when the portal can send email: each sees
    only their own address."""
    if not settings.CERTPORTAL_EMAIL_CONFIGURED:
        return []
    assert event.application_id is not None
    role = "approver" if kind == AlertEvent.APPROVAL_REQUESTED else "requester"
    return [
        Delivery(
            application_id=event.application_id,
            event=kind,
            dedupe_key=f"{role}:{event.pk}:{person.pk}",
            subject=title[:300],
            payload=payload,
            recipients=[person.email],
            next_attempt_at=now,
        )
        for person in people
        if person.email and person.is_active
    ]


def _request_names(events: Sequence[OutboxEvent]) -> dict[str, dict[str, Any]]:
    """Names and profile of the requests behind request.* events (for filters and text;
    some events, like a step's approval, do not carry them)."""
    from issuance.models import CertificateRequest

    ids = [e.object_id for e in events if e.object_type == "issuance.certificaterequest"]
    rows = CertificateRequest.objects.filter(pk__in=ids).values_list(
        "pk", "common_name", "sans", "profile_id"
    )
    return {
        str(pk): {"common_name": cn, "sans": sans, "profile_id": profile_id}
        for pk, cn, sans, profile_id in rows
    }


def _event_payload(
    event: OutboxEvent, kind: str, names: dict[int, str], replaces_serial: str | None
) -> dict[str, Any]:
    data = dict(event.payload)
    data.update(
        event=kind,
        application=names.get(event.application_id or 0, ""),
        object_type=event.object_type,
        object_id=event.object_id,
        occurred_at=event.created_at.isoformat(),
    )
    if event.object_type == "issuance.certificate":
        data["certificate_id"] = event.object_id
    if event.event_type in DECISIONS:
        data["decision"] = DECISIONS[event.event_type]
    if replaces_serial:
        data["replaces_serial_number"] = replaces_serial
    return data


def render_subject(kind: str, data: dict[str, Any]) -> str:
    name = data.get("common_name") or (data.get("sans") or [""])[0] or data.get("serial_number", "")
    app = data.get("application", "")
    step = f" (step {data['step']})" if data.get("step") else ""
    titles: dict[str, str] = {
        AlertEvent.EXPIRING: f"{name} expires in {data.get('days_left')} days",
        AlertEvent.ISSUED: f"Certificate issued: {name}",
        AlertEvent.RENEWED: f"Certificate renewed: {name}",
        AlertEvent.REVOKED: f"Certificate revoked: {name} ({data.get('reason', '')})",
        AlertEvent.RENEWAL_FAILED: f"Renewal failed: {name}",
        AlertEvent.APPROVAL_REQUESTED: f"Approval requested: {name}{step}",
        AlertEvent.APPROVAL_DECIDED: f"Request for {name} {data.get('decision', 'decided')}",
        AlertEvent.SYNC_FAILED: f"Sync {data.get('sync', '')} failed for {name}",
    }
    return text.plain(f"[certportal {app}] {titles.get(kind, kind)}")
