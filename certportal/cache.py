"""The default cache beyond Django's API: is it shared (Redis), and atomic counters.

Redis commands the cache API lacks go through the cache's own client
(``certportal.db.redis``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from certportal.db.redis import client as redis_client

__all__ = ["Window", "count", "count_in_window", "is_shared"]


def is_shared() -> bool:
    """Whether the default cache is Redis, shared by every process: the one answer to
    "is Redis on?". Only then can the cache coordinate processes (nonce use, queue
    de-duplication, generation numbers, validation wake-ups)."""
    from django.conf import settings

    return bool(settings.REDIS_URL)


def count(key: str, timeout: int) -> int:
    """Add one to a counter that starts at zero and expires timeout seconds after it was
    created; returns the new value. One round trip on Redis (SET NX + INCR, pipelined)."""
    from django.core.cache import cache

    client = redis_client()
    if client is not None:
        full = cache.make_and_validate_key(key)
        with client.pipeline(transaction=False) as pipe:
            pipe.set(full, 0, ex=timeout, nx=True)
            pipe.incr(full)
            return int(pipe.execute()[1])
    cache.add(key, 0, timeout=timeout)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr: a new count starts here
        cache.set(key, 1, timeout=timeout)
        return 1


@dataclass(frozen=True)
class Window:
    """Where a fixed-window counter stands: the count in the current window (this
    event included) and the seconds until that window ends."""

    count: int
    ends_in: float


def count_in_window(key: str, seconds: int, *, now: float | None = None) -> Window:
    """Count one event in key's fixed window of ``seconds`` (one ``count`` round trip). A
    window may let through up to twice its limit across its boundary, the usual price
    of fixed windows for one atomic increment per event whatever the rate."""
    now = time.time() if now is None else now
    window = int(now // seconds)
    counted = count(f"{key}_{window}", timeout=seconds + 1)
    return Window(counted, (window + 1) * seconds - now)
