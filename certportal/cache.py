"""The Redis cache backend, keeping one client per connection pool.

Django's RedisCacheClient builds a new ``redis.Redis`` object for every cache call; its
constructor sets up some two hundred response callbacks, which measured about as much
as the round trip itself. A ``redis.Redis`` over a shared pool is thread-safe, so one
per pool serves every thread of the process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        base: Any = self  # Django's private helpers, not in the stubs
        pool = base._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = base._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


def is_shared() -> bool:
    """Whether the default cache is Redis, shared by every process: the one answer to
    "is Redis on?". Only then can the cache coordinate processes (nonce use, queue
    de-duplication, generation numbers, validation wake-ups)."""
    from django.conf import settings

    return bool(settings.REDIS_URL)


def redis_client() -> Any | None:
    """The default cache's own Redis client (for commands the cache API lacks), or None
    when the default cache is not Redis. Keys used through it carry no cache prefix."""
    from django.core.cache import caches

    backend = caches["default"]  # the backend itself: django.core.cache.cache is a proxy
    if isinstance(backend, RedisCache):
        return backend._cache.get_client(write=True)
    return None


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


def add_and_get(key: str, timeout: int, other: str) -> tuple[bool, Any] | None:
    """``cache.add(key, 1, timeout)`` and ``cache.get(other)`` in one round trip (pipelined);
    None when the default cache is not Redis."""
    from django.core.cache import caches

    client = redis_client()
    if client is None:
        return None
    backend: Any = caches["default"]
    serializer = backend._cache._serializer
    with client.pipeline(transaction=False) as pipe:
        pipe.set(backend.make_and_validate_key(key), serializer.dumps(1), ex=timeout, nx=True)
        pipe.get(backend.make_and_validate_key(other))
        added, value = pipe.execute()
    return bool(added), None if value is None else serializer.loads(value)
