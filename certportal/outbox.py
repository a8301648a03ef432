"""The outbox dispatcher and its sweeper.

Services write OutboxEvent rows in the transaction of the change (certportal.events);
after commit, ``queue_dispatch`` queues the ``drain`` task, which runs every registered
consumer (alerts, syncs, ...) over the fresh events in batches. With a shared cache the
queueing is coalesced (certportal.queue): under load one queued drain serves many
commits instead of one task per transaction. The sweeper re-dispatches whatever a dead
worker or a lost task left undispatched, and retries failed events with backoff.

Exactly once: ``dispatch`` locks the events it takes (``select_for_update(skip_locked)``
on PostgreSQL; SQLite's IMMEDIATE transactions serialize writers) and marks them
dispatched in the same transaction as the consumers' writes. Consumers only write rows
(alert deliveries, sync jobs) and are idempotent through unique constraints; anything
slow or external happens later, in their own claimed tasks. A worker killed mid-way
rolls the whole transaction back and the sweeper takes the events again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from certportal import cluster, queue
from certportal.models import OutboxEvent

logger = logging.getLogger(__name__)

Consumer = Callable[[Sequence[OutboxEvent]], None]
# Whether a consumer would act on an event of this type for this Application now.
Wants = Callable[[str, int | None], bool]

BATCH = 500
MAX_ATTEMPTS = 12
MAX_BACKOFF = timedelta(hours=6)

_CONSUMERS: dict[str, Consumer] = {}
_WANTS: dict[str, Wants | None] = {}


def register(name: str, consumer: Consumer, wants: Wants | None = None) -> None:
    """Add a consumer (called from an AppConfig.ready()); it gets events in batches and
    must be idempotent: an event may reach it again after a failure elsewhere.

    ``wants`` (cheap: from caches) says whether the consumer would act on an event of a
    type for an Application right now; without it, the consumer wants every event."""
    _CONSUMERS[name] = consumer
    _WANTS[name] = wants


def wanted(event_type: str, application_id: int | None) -> bool:
    """Whether any consumer would act on this event now. Events nobody wants are written
    already dispatched (certportal.events), so no drain runs for them: at issuance rates
    with no alert rules that was a queued task per certificate doing nothing. A consumer
    that starts wanting them (a new alert rule) gets the events committed after it."""
    return any(w is None or w(event_type, application_id) for w in _WANTS.values())


def _chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


DRAIN = "certportal.outbox.drain"


def queue_dispatch() -> None:
    """After commit: make sure a drain runs. A broker that is down only delays the
    events (the sweeper finds them), so this never fails the caller."""
    try:
        queue.enqueue_coalesced(DRAIN)
    except Exception:
        logger.warning("could not queue outbox dispatch; the sweeper will", exc_info=True)


def drain() -> int:
    """The task: dispatch fresh events (never attempted) oldest first, batch by batch,
    until a batch comes back short (none left, or the rest held by other workers).
    Returns how many were dispatched here."""
    queue.started(DRAIN)
    done = 0
    while True:
        fresh = OutboxEvent.objects.filter(dispatched_at__isnull=True, attempts=0).order_by(
            "created_at"
        )
        taken, ok = _dispatch_locked(fresh, limit=BATCH)
        done += ok
        if taken < BATCH or cluster.stop_requested():  # the sweeper takes the rest
            return done


def dispatch(ids: Sequence[int]) -> int:
    """Run every consumer over the undispatched events among ids; returns how many were
    dispatched here (events another worker holds or has done are skipped)."""
    done = 0
    for chunk in _chunks(list(ids), BATCH):
        done += _dispatch_chunk(chunk)[1]
    return done


def _dispatch_chunk(ids: list[int]) -> tuple[int, int]:
    """Lock and consume the undispatched events among ids: (taken, dispatched)."""
    return _dispatch_locked(
        OutboxEvent.objects.filter(pk__in=ids, dispatched_at__isnull=True).order_by("pk")
    )


def _dispatch_locked(events_qs: QuerySet[OutboxEvent], limit: int | None = None) -> tuple[int, int]:
    """In one transaction: lock the events (up to limit, skipping any another worker
    holds), run the consumers, mark them. Returns (taken, dispatched)."""
    with transaction.atomic():
        locked = events_qs.select_for_update(skip_locked=True)
        events = list(locked[:limit] if limit else locked)
        if not events:
            return 0, 0
        failed = _consume(events)
        ok = [e.pk for e in events if e.pk not in failed]
        OutboxEvent.objects.filter(pk__in=ok).update(
            dispatched_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
        )
        for pk, error in failed.items():
            OutboxEvent.objects.filter(pk=pk).update(
                attempts=F("attempts") + 1, last_error=error[:2000]
            )
    return len(events), len(ok)


def _consume(events: list[OutboxEvent]) -> dict[int, str]:
    """Run the consumers on the batch; if the batch fails, event by event, so one bad
    event does not hold back the others. Returns the failed events' errors."""
    try:
        with transaction.atomic():
            _run_consumers(events)
        return {}
    except Exception:
        logger.warning("outbox batch failed; retrying event by event", exc_info=True)
    failed: dict[int, str] = {}
    for event in events:
        try:
            with transaction.atomic():
                _run_consumers([event])
        except Exception as exc:
            logger.warning("outbox event %s failed: %s", event.pk, exc)
            failed[event.pk] = f"{type(exc).__name__}: {exc}"
    return failed


def _run_consumers(events: Sequence[OutboxEvent]) -> None:
    for consumer in _CONSUMERS.values():
        consumer(events)


def sweep_grace() -> timedelta:
    """How old an undispatched event must be before the sweeper takes it: its own task
    should have run by then."""
    return timedelta(seconds=settings.CERTPORTAL_OUTBOX_SWEEP_GRACE_SECONDS)


def backoff(attempts: int) -> timedelta:
    """How long after its creation an event that failed `attempts` times waits."""
    return min(sweep_grace() * (2**attempts), MAX_BACKOFF)


def due_ids(now: datetime, limit: int) -> list[int]:
    """Undispatched events old enough that their task should have run, oldest first,
    skipping those still in their backoff and those that gave up."""
    candidates = OutboxEvent.objects.filter(
        dispatched_at__isnull=True,
        created_at__lte=now - sweep_grace(),
        attempts__lt=MAX_ATTEMPTS,
    ).order_by("created_at")
    due: list[int] = []
    for pk, created_at, attempts in candidates.values_list("pk", "created_at", "attempts")[
        : limit * 2
    ]:
        if created_at <= now - backoff(attempts):
            due.append(pk)
    return due[:limit]


def sweep(limit: int = 5000) -> int:
    """Scheduled: dispatch events that were left behind. Returns how many were done."""
    return dispatch(due_ids(timezone.now(), limit))
