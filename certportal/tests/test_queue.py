"""Queueing work for the cluster: one broker per process, coalesced drains, and the
outbox drain that takes every fresh event whichever commit queued it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django_q.brokers import get_broker

from certportal import outbox, queue
from certportal.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_queue(redis_cache: str) -> Iterator[object]:
    """A shared cache and a Redis broker on a queue of this test's own."""
    from django_q.conf import Conf

    name = f"queue-test-{time.monotonic_ns()}"
    saved = (Conf.REDIS, Conf.ORM, Conf.CLUSTER_NAME)
    Conf.REDIS, Conf.ORM, Conf.CLUSTER_NAME = redis_cache, None, name
    queue._brokers.clear()
    broker = get_broker(name)
    try:
        yield broker
    finally:
        broker.delete_queue()
        Conf.REDIS, Conf.ORM, Conf.CLUSTER_NAME = saved
        queue._brokers.clear()


def test_one_broker_per_process_is_reused(redis_queue):
    queue.enqueue("math.floor", 1.5, task_name="a")
    first = queue._broker()
    queue.enqueue("math.floor", 2.5, task_name="b")
    assert queue._broker() is first
    assert redis_queue.queue_size() == 2


def test_coalesced_task_is_queued_once_until_it_starts(redis_queue):
    assert queue.enqueue_coalesced("certportal.outbox.drain") is True
    assert queue.enqueue_coalesced("certportal.outbox.drain") is False
    assert queue.enqueue_coalesced("certportal.outbox.drain") is False
    assert redis_queue.queue_size() == 1
    queue.started("certportal.outbox.drain")  # the task begins: later commits queue again
    assert queue.enqueue_coalesced("certportal.outbox.drain") is True
    assert redis_queue.queue_size() == 2


def test_without_a_shared_cache_every_call_queues(settings):
    settings.REDIS_URL = None
    queue._brokers.clear()
    before = get_broker().queue_size()
    assert queue.enqueue_coalesced("certportal.outbox.drain") is True
    assert queue.enqueue_coalesced("certportal.outbox.drain") is True
    assert get_broker().queue_size() == before + 2


def test_drain_dispatches_every_fresh_event_and_leaves_failed_ones_to_the_sweeper():
    fresh = OutboxEvent.objects.bulk_create(
        [OutboxEvent(event_type="test.event", payload={"n": n}) for n in range(outbox.BATCH + 7)]
    )
    failed = OutboxEvent.objects.create(event_type="test.event", attempts=1, last_error="x")
    assert outbox.drain() == len(fresh)
    assert not OutboxEvent.objects.filter(dispatched_at__isnull=True, attempts=0).exists()
    failed.refresh_from_db()
    assert failed.dispatched_at is None and failed.attempts == 1
    assert outbox.drain() == 0


def test_the_redis_cache_counts_across_threads(redis_cache):
    import threading

    from django.core.cache import cache

    def bump() -> None:
        for _ in range(50):
            cache.incr("counter")

    cache.set("counter", 0)
    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get("counter") == 200


def test_a_window_counter_counts_and_expires_locally():
    import time_machine

    from certportal.cache import count

    assert [count("w", timeout=2) for _ in range(3)] == [1, 2, 3]
    with time_machine.travel(time.time() + 3):
        assert count("w", timeout=2) == 1


def test_a_window_counter_counts_and_expires_on_redis(redis_cache):
    from certportal.cache import count

    assert [count("w", timeout=1) for _ in range(3)] == [1, 2, 3]
    time.sleep(1.1)  # Redis expires keys by its own clock
    assert count("w", timeout=1) == 1


def test_the_window_counter_uses_one_pipelined_round_trip_on_redis(redis_cache, monkeypatch):
    import redis

    from certportal.cache import count

    sent: list[int] = []
    original = redis.client.Pipeline.execute

    def spy(self, *args, **kwargs):
        sent.append(len(self.command_stack))
        return original(self, *args, **kwargs)

    def refused(*args, **kwargs):
        raise AssertionError("a command outside the pipeline")

    monkeypatch.setattr(redis.client.Pipeline, "execute", spy)
    monkeypatch.setattr(redis.Redis, "execute_command", refused)
    assert count("p", timeout=5) == 1
    assert sent == [2]  # SET NX and INCR, one round trip
