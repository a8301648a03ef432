"""The qcluster stops within CERTPORTAL_Q_STOP_SECONDS of SIGTERM and loses no task.

django-q2 stops on SIGTERM by letting each worker finish its task and then every task
the pusher had already taken from the broker; nothing bounds that. A renewal sweep that
renews until nothing is due held a stop for as long as it had work. Here, used by the
``qcluster`` command only:

- the main process sets a stop flag shared with every worker (a multiprocessing Event
  made before the cluster forks), then lets django-q2 stop as it does;
- tasks that loop (the renewal sweep, the outbox drain) check ``stop_requested()``
  between batches and return; the renewal task queues itself again for the rest;
- in each worker a watcher thread hands the tasks still waiting in the worker-side queue
  back to the broker at once, and at the deadline the task still running too, then ends
  the worker: the ORM broker's row is unlocked, a Redis payload is pushed back;
- the main process waits for the cluster no longer than the deadline and a margin
  (certportal/management/commands/qcluster.py).

Tasks are idempotent (docs/architecture.md), so a task handed back after it did part of
its work is safe to run again. This module reads django-q2 internals (the worker's
Process arguments, the ORM broker's lock, the signed package); it is tested by
tests/faults/test_qcluster_stop.py against the pinned django-q2.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue as stdlib_queue
import threading
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

_stop: Any = None  # the shared Event, in the qcluster's processes only
_running: dict[str, Any] | None = None  # the task this worker runs now


def stop_requested() -> bool:
    """Whether the cluster this process belongs to is stopping (always False elsewhere)."""
    return _stop is not None and _stop.is_set()


def grace() -> float:
    return float(settings.CERTPORTAL_Q_STOP_SECONDS)


def install() -> None:
    """In the qcluster's main process, before the cluster forks: the shared stop flag and
    the worker hooks."""
    global _stop
    from django_q.cluster import get_mp_context
    from django_q.signals import post_execute_in_worker, post_spawn, pre_execute

    _stop = get_mp_context().Event()
    post_spawn.connect(_worker_started, dispatch_uid="certportal.cluster")
    pre_execute.connect(_task_starting, dispatch_uid="certportal.cluster")
    post_execute_in_worker.connect(_task_done, dispatch_uid="certportal.cluster")


def request_stop() -> None:
    """In the main process: from now on every worker sees stop_requested()."""
    if _stop is not None:
        _stop.set()


# --- In each worker ----------------------------------------------------------------------


def _worker_started(**kwargs: Any) -> None:
    task_queue = multiprocessing.current_process()._args[0]  # type: ignore[attr-defined]
    threading.Thread(target=_watch, args=(task_queue,), daemon=True).start()


def _task_starting(task: dict[str, Any], **kwargs: Any) -> None:
    global _running
    _running = task


def _task_done(**kwargs: Any) -> None:
    global _running
    _running = None


def _watch(task_queue: Any) -> None:
    """Wait for the stop; hand back what this worker will not run; end it at the deadline."""
    _stop.wait()
    deadline = time.monotonic() + grace()
    while time.monotonic() < deadline:
        _hand_back_waiting(task_queue)  # the pusher may still add one after the stop
        time.sleep(0.2)
    _hand_back_waiting(task_queue)
    task = _running
    if task is not None:
        hand_back(task)
        logger.warning(
            "task %s still ran at the stop deadline: handed back to the broker", task.get("name")
        )
    os._exit(0)  # a worker that stopped in time is gone already; this one ends here


def _hand_back_waiting(task_queue: Any) -> None:
    pills = 0
    while True:
        try:
            item = task_queue.get_nowait()
        except stdlib_queue.Empty:
            break
        if item == "STOP":  # django-q2's poison pill: each worker must still get one
            pills += 1
        else:
            hand_back(item)
    for _ in range(pills):
        task_queue.put("STOP")


def hand_back(task: dict[str, Any]) -> None:
    """Return a task this cluster took to its broker, to run on the next cluster."""
    from django_q.brokers import get_broker
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    ack_id = task.get("ack_id")
    if ack_id is not None:  # ORM broker: the row is still there, locked by us
        OrmQ.objects.filter(pk=ack_id).update(lock=timezone.now())
        return
    package = {k: v for k, v in task.items() if k not in ("ack_id", "cluster")}
    get_broker().enqueue(SignedPackage.dumps(package))
