"""Keeping destinations current: items planned from certificate events, pushed by workers.

Events first, pushes second. The outbox consumer (``consume_events``) only writes item
rows in the dispatcher's transaction: a new certificate a sync selects gets an item
(unique per sync and certificate, so an event seen twice adds nothing), a renewal's item
inherits its predecessor's external id (the same ARN, secret, Key Vault name or
Cloudflare id), a revocation marks items to be removed where the sync says so. An item
whose desired fingerprint equals what was pushed is left alone: each change is pushed
once.

Pushing (``push_due``) claims one item at a time with a conditional update (status ->
syncing, a lease, attempts + 1); whoever's update changed the row pushes it, so two
workers never push the same item. Nothing is held open during the provider call; the
outcome is one UPDATE (with its audit row) afterwards. A worker killed mid-push leaves
the item "syncing" until its lease runs out, then another worker takes it, and the
backend looks up what a lost attempt may have created before creating anything.
Transient faults are retried with bounded exponential backoff; a permanent failure (or
the last attempt) records ``sync.failed``, which alert rules route as ``sync_failed``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from certportal import cluster, generation, queue
from certportal.event_types import EventType
from certportal.events import Actor, Event, record_many
from certportal.models import OutboxEvent
from issuance.models import Certificate
from syncs import selection
from syncs.backends import for_destination
from syncs.backends.base import SyncError
from syncs.choices import Destination, ItemStatus, Want
from syncs.models import Sync, SyncItem

logger = logging.getLogger(__name__)

SYNC_ACTOR = Actor(label="certificate sync")
PUSH_TASK = "syncs.tasks.push_due"
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
ABSENT = "absent"
HANDLED = {
    EventType.CERTIFICATE_ISSUED,
    EventType.CERTIFICATE_IMPORTED,
    EventType.CERTIFICATE_REVOKED,
}


def max_attempts() -> int:
    return int(getattr(settings, "CERTPORTAL_SYNC_MAX_ATTEMPTS", 8))


def lease() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "CERTPORTAL_SYNC_LEASE_SECONDS", 300)))


def retry_delay(attempts: int) -> timedelta:
    return min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_CAP)


def queue_push() -> None:
    """After commit: make sure a push runs (the schedule catches a lost one)."""
    try:
        queue.enqueue_coalesced(PUSH_TASK)
    except Exception:
        logger.warning("could not queue sync pushes; the schedule will", exc_info=True)


# --- Planning items -----------------------------------------------------------------------


def _carries(sync: Sync) -> bool:
    """Whether a renewal goes into its predecessor's destination object."""
    if sync.destination == Destination.AWS_ACM:
        return bool(sync.option("reimport_on_renewal", True))
    return True


def add(sync: Sync, certificates: Sequence[Certificate], now: datetime) -> int:
    """Items for certificates the sync selects (existing ones are kept); a renewal takes
    over its predecessor's external id. Returns how many were queued."""
    if not certificates:
        return 0
    have = dict(
        sync.items.filter(
            certificate_id__in=[c.pk for c in certificates]
            + [c.replaces_id for c in certificates if c.replaces_id]
        ).values_list("certificate_id", "external_id")
    )
    new: list[SyncItem] = []
    superseded: list[Any] = []
    for certificate in certificates:
        if certificate.pk in have:
            continue
        ok = selection.syncable(sync, certificate)
        external = have.get(certificate.replaces_id, "") if certificate.replaces_id else ""
        if external and _carries(sync) and ok:
            superseded.append(certificate.replaces_id)
        else:
            external = ""
        new.append(
            SyncItem(
                sync=sync,
                certificate=certificate,
                external_id=external,
                desired_fingerprint=selection.present(sync, certificate),
                status=ItemStatus.PENDING if ok else ItemStatus.NOT_SYNCABLE,
                last_error="" if ok else selection.NOT_SYNCABLE_NO_KEY,
                next_attempt_at=now if ok else None,
            )
        )
    SyncItem.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    if superseded:
        sync.items.filter(certificate_id__in=superseded).exclude(status=ItemStatus.SYNCING).update(
            status=ItemStatus.SUPERSEDED, next_attempt_at=None, updated_at=now
        )
    queued = sum(1 for i in new if i.status == ItemStatus.PENDING)
    if queued:
        transaction.on_commit(queue_push)
    return queued


def plan(sync: Sync, *, retry_failed: bool = False) -> int:
    """Bring a sync's items in line with what it selects now: add new matches, re-queue
    items whose desired content changed (options, template), and with retry_failed the
    failed ones. Returns how many were queued."""
    now = timezone.now()
    certificates = selection.selected(sync)
    queued = add(sync, certificates, now)
    changed = []
    for item in (
        sync.items.filter(want=Want.PRESENT)
        .exclude(status__in=[ItemStatus.SUPERSEDED, ItemStatus.REMOVED, ItemStatus.NOT_SYNCABLE])
        .select_related("certificate")
    ):
        desired = selection.present(sync, item.certificate)
        if desired != item.desired_fingerprint or desired != item.pushed_fingerprint:
            SyncItem.objects.filter(pk=item.pk).update(desired_fingerprint=desired)
            changed.append(item.pk)
        elif retry_failed and item.status == ItemStatus.FAILED:
            changed.append(item.pk)
    return queued + requeue(SyncItem.objects.filter(pk__in=changed), want=Want.PRESENT)


def requeue(
    items: QuerySet[SyncItem],
    *,
    want: str,
    force: bool = False,
    forget_external: Iterable[Any] = (),
) -> int:
    """Queue items to be pushed (or removed) again. force: even if the destination is
    believed to hold the same thing. forget_external: those certificates' objects are gone
    at the destination (a drift check said so): create anew."""
    now = timezone.now()
    forget = [str(pk) for pk in forget_external]
    if forget:
        items.filter(certificate_id__in=forget).update(external_id="", external_version="")
    fields: dict[str, Any] = {"want": want, "updated_at": now}
    if force:
        fields["pushed_fingerprint"] = ""
    items.filter(status=ItemStatus.SYNCING).update(**fields)
    count = items.exclude(status=ItemStatus.SYNCING).update(
        status=ItemStatus.PENDING, attempts=0, next_attempt_at=now, last_error="", **fields
    )
    if count:
        transaction.on_commit(queue_push)
    return count


def mark_absent(items: QuerySet[SyncItem]) -> int:
    """Queue removal of what these items pushed; never-pushed ones are simply removed."""
    now = timezone.now()
    # The filter may name fields we change; a superseded item's object is its renewal's.
    ids = list(items.exclude(status=ItemStatus.SUPERSEDED).values_list("pk", flat=True))
    chosen = SyncItem.objects.filter(pk__in=ids)
    chosen.exclude(external_id="").update(want=Want.ABSENT, desired_fingerprint=ABSENT)
    chosen.filter(external_id="").exclude(status=ItemStatus.SYNCING).update(
        want=Want.ABSENT,
        desired_fingerprint=ABSENT,
        status=ItemStatus.REMOVED,
        next_attempt_at=None,
        updated_at=now,
    )
    return requeue(chosen.exclude(external_id=""), want=Want.ABSENT)


# --- The outbox consumer ---------------------------------------------------------------------


def _has_syncs(application_id: int) -> bool | None:
    return _ACTIVE.get(
        application_id,
        lambda: Sync.objects.filter(application_id=application_id, is_active=True).exists(),
    )


_ACTIVE: generation.Cache[bool] = generation.Cache(depends_on=("syncs.Sync",))


def wants_event(event_type: str, application_id: int | None) -> bool:
    return bool(event_type in HANDLED and application_id and _has_syncs(application_id))


def consume_events(events: Sequence[OutboxEvent]) -> None:
    """Outbox consumer: items for new certificates, removals for revoked ones. Idempotent:
    items are unique per sync and certificate, and a removal already queued stays so."""
    relevant = [e for e in events if e.event_type in HANDLED and e.application_id]
    if not relevant:
        return
    syncs: dict[int, list[Sync]] = defaultdict(list)
    for sync in Sync.objects.filter(
        application_id__in={e.application_id for e in relevant}, is_active=True
    ):
        syncs[sync.application_id].append(sync)
    if not syncs:
        return
    new_ids = [e.object_id for e in relevant if e.event_type != EventType.CERTIFICATE_REVOKED]
    revoked = [e.object_id for e in relevant if e.event_type == EventType.CERTIFICATE_REVOKED]
    if new_ids:
        _on_new(syncs, list(Certificate.objects.filter(pk__in=new_ids).select_related("profile")))
    if revoked:
        mark_absent(
            SyncItem.objects.filter(
                certificate_id__in=revoked,
                sync__is_active=True,
                sync__options__remove_on_revoke=True,
                want=Want.PRESENT,
            )
        )


def _on_new(syncs: dict[int, list[Sync]], certificates: list[Certificate]) -> None:
    now = timezone.now()
    for app_syncs in syncs.values():
        for sync in app_syncs:
            followed: set[str] = set()
            if sync.selector == "lineage":
                followed = {
                    str(pk)
                    for pk in sync.items.filter(
                        certificate_id__in=[c.replaces_id for c in certificates if c.replaces_id]
                    ).values_list("certificate_id", flat=True)
                }
            chosen = [c for c in certificates if selection.matches(sync, c, followed)]
            add(sync, chosen, now)


def sweep_expired(now: datetime | None = None) -> int:
    """Scheduled: remove expired certificates from syncs that say so."""
    now = now or timezone.now()
    with transaction.atomic():
        return mark_absent(
            SyncItem.objects.filter(
                want=Want.PRESENT,
                certificate__not_after__lte=now,
                sync__options__remove_on_expiry=True,
            ).exclude(status__in=[ItemStatus.SUPERSEDED, ItemStatus.REMOVED])
        )


# --- Pushing ---------------------------------------------------------------------------------

CLAIM_BATCH = 50
# Outcomes are written (with their audit rows) in one transaction per this many items.
FLUSH_EVERY = 20


def _due(now: datetime) -> Q:
    """Items to push now: pending or retrying ones whose time has come, and claims a dead
    worker left; only for active syncs (or syncs removing what they pushed)."""
    waiting = Q(status__in=[ItemStatus.PENDING, ItemStatus.FAILED], next_attempt_at__lte=now)
    abandoned = Q(status=ItemStatus.SYNCING, claimed_until__lt=now)
    live = Q(sync__is_active=True) | Q(sync__deleting=True)
    return (waiting | abandoned) & live


def due_ids(now: datetime, limit: int) -> list[int]:
    return list(
        SyncItem.objects.filter(_due(now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def _taking(now: datetime) -> dict[str, Any]:
    return {
        "status": ItemStatus.SYNCING,
        "claimed_until": now + lease(),
        "attempts": F("attempts") + 1,
        "updated_at": now,
    }


def claim(pk: int, now: datetime) -> bool:
    """Take one item: the conditional update's row count says whether we won."""
    return SyncItem.objects.filter(_due(now), pk=pk).update(**_taking(now)) == 1


def claim_batch(now: datetime, limit: int = CLAIM_BATCH) -> list[SyncItem]:
    """Take up to limit due items no other worker holds (locked with SKIP LOCKED on
    PostgreSQL; SQLite's IMMEDIATE transactions serialize writers), loaded with what a
    push needs in one query."""
    with transaction.atomic():
        ids = list(
            SyncItem.objects.filter(_due(now))
            .select_for_update(skip_locked=True)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        SyncItem.objects.filter(_due(now), pk__in=ids).update(**_taking(now))
    return list(
        SyncItem.objects.filter(pk__in=ids, status=ItemStatus.SYNCING).select_related(
            "sync",
            "sync__connection",
            "sync__application",
            "certificate",
            "certificate__profile",
            "certificate__ca",
        )
    )


def push_due(*, now: datetime | None = None, limit: int = CLAIM_BATCH) -> int:
    """Push (or remove) what is due, batch after batch of claimed items. Returns how many
    succeeded here."""
    queue.started(PUSH_TASK)
    done = 0
    while True:
        claimed = claim_batch(now or timezone.now(), limit)
        done += push_batch(claimed)
        if len(claimed) < limit or cluster.stop_requested():
            break
    _finish_deletions()
    return done


@dataclass
class Outcome:
    """What one attempt did, recorded after the provider call."""

    item: SyncItem
    fingerprint: str
    status: str
    pushed: Any = None
    message: str = ""
    retryable: bool = False


def push_batch(items: Sequence[SyncItem]) -> int:
    """Attempt each claimed item; outcomes are written every FLUSH_EVERY items (a worker
    killed in between leaves those items claimed: after the lease another worker takes
    them and the backend looks up what was created before creating anything). Returns how
    many succeeded."""
    outcomes: list[Outcome] = []
    specs: dict[int, Any] = {}
    done = 0
    for item in items:
        outcome = attempt(item, specs)
        done += outcome.status in (ItemStatus.SYNCED, ItemStatus.REMOVED)
        outcomes.append(outcome)
        if len(outcomes) >= FLUSH_EVERY:
            _record(outcomes)
            outcomes = []
    _record(outcomes)
    return done


def attempt(item: SyncItem, specs: dict[int, Any]) -> Outcome:
    """Push or remove one claimed item (the provider call); nothing is written here."""
    fingerprint = item.desired_fingerprint
    try:
        if item.want == Want.ABSENT:
            return Outcome(item, fingerprint, ItemStatus.REMOVED, message=_remove(item, specs))
        if not selection.syncable(item.sync, item.certificate):
            return Outcome(item, fingerprint, ItemStatus.NOT_SYNCABLE)
        return Outcome(item, fingerprint, ItemStatus.SYNCED, pushed=_upsert(item, specs))
    except SyncError as exc:
        return Outcome(
            item, fingerprint, ItemStatus.FAILED, message=str(exc), retryable=exc.retryable
        )
    except selection.KeyProblem as exc:
        return Outcome(item, fingerprint, ItemStatus.FAILED, message=str(exc))
    except Exception as exc:
        logger.exception("sync item %s failed unexpectedly", item.pk)
        message = f"Unexpected error ({type(exc).__name__}); see the worker log."
        return Outcome(item, fingerprint, ItemStatus.FAILED, message=message, retryable=True)


def _spec(item: SyncItem, specs: dict[int, Any]) -> Any:
    from syncs.services import spec_of

    connection = item.sync.connection
    if connection.pk not in specs:
        specs[connection.pk] = spec_of(connection)  # unsealed once per batch
    return specs[connection.pk]


def _upsert(item: SyncItem, specs: dict[int, Any]) -> Any:
    from syncs.services import pushed_of

    sync = item.sync
    backend = for_destination(sync.destination)
    data = selection.payload(sync, item.certificate, sync.application.name)
    return backend.upsert(
        _spec(item, specs), sync.options, data, pushed_of(item), look_up=item.attempts > 1
    )


def _remove(item: SyncItem, specs: dict[int, Any]) -> str:
    from syncs.services import pushed_of

    current = pushed_of(item)
    if current is None:
        return "Nothing was pushed."
    backend = for_destination(item.sync.destination)
    return backend.remove(
        _spec(item, specs), item.sync.options, current, item.sync.application.name
    )


def _record(outcomes: Sequence[Outcome]) -> None:
    """Write the outcomes and their audit (and sync.failed) events in one transaction."""
    if not outcomes:
        return
    events: list[Event] = []
    now = timezone.now()
    with transaction.atomic():
        for outcome in outcomes:
            event = _WRITERS[outcome.status](outcome, now)
            if event is not None:
                events.append(event)
        record_many(events)


def _write_pushed(outcome: Outcome, now: datetime) -> Event:
    item, pushed = outcome.item, outcome.pushed
    fields = {
        "external_id": pushed.external_id,
        "external_version": pushed.version,
        "pushed_fingerprint": outcome.fingerprint,
        "last_error": "",
        "claimed_until": None,
        "synced_at": now,
        "updated_at": now,
    }
    mine = SyncItem.objects.filter(pk=item.pk, status=ItemStatus.SYNCING)
    # A change that came in while we pushed leaves the item pending for another round.
    if not mine.filter(desired_fingerprint=outcome.fingerprint).update(
        status=ItemStatus.SYNCED, next_attempt_at=None, **fields
    ):
        mine.update(status=ItemStatus.PENDING, next_attempt_at=now, attempts=0, **fields)
    return Event(
        EventType.SYNC_ITEM_PUSHED,
        SYNC_ACTOR,
        item.sync,
        item.sync.application,
        {
            "certificate": str(item.certificate_id),
            "serial_number": item.certificate.serial_number,
            "external_id": pushed.external_id,
            "version": pushed.version,
        },
        outbox=False,
    )


def _write_removed(outcome: Outcome, now: datetime) -> Event:
    item = outcome.item
    SyncItem.objects.filter(pk=item.pk, status=ItemStatus.SYNCING).update(
        status=ItemStatus.REMOVED,
        pushed_fingerprint=ABSENT,
        claimed_until=None,
        next_attempt_at=None,
        last_error="",
        synced_at=now,
        updated_at=now,
    )
    return Event(
        EventType.SYNC_ITEM_REMOVED,
        SYNC_ACTOR,
        item.sync,
        item.sync.application,
        {
            "certificate": str(item.certificate_id),
            "external_id": item.external_id,
            "message": outcome.message,
        },
        outbox=False,
    )


def _write_not_syncable(outcome: Outcome, now: datetime) -> None:
    SyncItem.objects.filter(pk=outcome.item.pk, status=ItemStatus.SYNCING).update(
        status=ItemStatus.NOT_SYNCABLE,
        last_error=selection.NOT_SYNCABLE_NO_KEY,
        claimed_until=None,
        next_attempt_at=None,
        updated_at=now,
    )


def _write_failed(outcome: Outcome, now: datetime) -> Event | None:
    """Back off and retry a transient fault; the last attempt or a permanent fault stops
    and records sync.failed (an alert event)."""
    item = outcome.item
    gave_up = not outcome.retryable or item.attempts >= max_attempts()
    SyncItem.objects.filter(pk=item.pk, status=ItemStatus.SYNCING).update(
        status=ItemStatus.FAILED,
        last_error=outcome.message[:500],
        claimed_until=None,
        next_attempt_at=None if gave_up else now + retry_delay(item.attempts),
        updated_at=now,
    )
    if not gave_up:
        return None
    certificate = item.certificate
    return Event(
        EventType.SYNC_FAILED,
        SYNC_ACTOR,
        item,
        item.sync.application,
        {
            "sync": item.sync.name,
            "destination": item.sync.destination,
            "certificate_id": str(certificate.pk),
            "common_name": certificate.common_name,
            "sans": certificate.sans,
            "serial_number": certificate.serial_number,
            "profile_id": certificate.profile_id,
            "error": outcome.message[:300],
            "attempts": item.attempts,
        },
    )


_WRITERS: dict[str, Callable[[Outcome, datetime], Event | None]] = {
    ItemStatus.SYNCED: _write_pushed,
    ItemStatus.REMOVED: _write_removed,
    ItemStatus.NOT_SYNCABLE: _write_not_syncable,
    ItemStatus.FAILED: _write_failed,
}


def _finish_deletions() -> None:
    """Syncs being deleted go once nothing they pushed is left; then their connections,
    if those were being deleted too."""
    from syncs.services import delete_connection

    for sync in Sync.objects.filter(deleting=True):
        left = sync.items.filter(want=Want.ABSENT).exclude(status=ItemStatus.REMOVED).exists()
        if not left:
            connection = sync.connection
            sync.delete()
            if connection.deleting and not connection.syncs.exists():
                delete_connection(connection, remove_remote=False, actor=SYNC_ACTOR)
