"""Hand work to the django-q2 cluster: the one place the project enqueues tasks.

``enqueue`` reuses one broker per process. django-q2 builds a new broker (and, for
Redis, a new connection pool and TCP connection) on every ``async_task`` call unless
one is passed in; on the request path that cost showed up on every ACME challenge and
every issuance.

``enqueue_coalesced`` is for tasks that drain a table (the outbox dispatcher, alert
sending): while one such task is queued and not yet started, further calls add nothing.
It needs a cache shared by every process (Redis); with the per-process local-memory
cache it enqueues every time, which is always correct, only slower.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.cache import cache

from certportal.cache import is_shared

_brokers: dict[tuple[int, str | None], Any] = {}

_QUEUED = "certportal:queued:"


def _broker(cluster: str | None = None) -> Any:
    from django_q.brokers import get_broker

    key = (os.getpid(), cluster)  # a forked child must not share its parent's socket
    broker = _brokers.get(key)
    if broker is None:
        broker = _brokers[key] = get_broker(cluster)
    return broker


def enqueue(func: str, *args: Any, task_name: str, cluster: str | None = None) -> str:
    """Queue func(*args) for the main cluster, or for the django-q2 cluster (queue) named
    ``cluster`` (one started with ``Q_CLUSTER_NAME=<cluster> manage.py qcluster``);
    returns the task id."""
    from django_q.tasks import async_task

    return str(async_task(func, *args, task_name=task_name, broker=_broker(cluster)))


def enqueue_coalesced(func: str, *, ttl: int = 30) -> bool:
    """Queue func() unless a call queued by this function has not started yet.

    The task must call ``started(func)`` before it reads its table: anything committed
    after that is seen by this run or triggers the next. ttl bounds how long a lost
    task (broker down, worker killed before it started) can hold the slot; the
    sweepers pick up what it left. Returns whether a task was queued."""
    if is_shared() and not cache.add(_QUEUED + func, 1, timeout=ttl):
        return False
    try:
        enqueue(func, task_name=func.rsplit(".", 1)[-1])
    except Exception:
        if is_shared():
            cache.delete(_QUEUED + func)
        raise
    return True


def started(func: str) -> None:
    """Called first by a coalesced task: later commits queue a new run."""
    if is_shared():
        cache.delete(_QUEUED + func)
