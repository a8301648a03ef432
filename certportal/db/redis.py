"""The default cache's own Redis client, for the commands Django's cache API lacks
(pipelines, BLPOP, PING).

Django's Redis backend keeps its client in the private ``_cache`` attribute and builds a
``redis.Redis`` over its connection pool in ``get_client()``; docs/performance.md lists
both with the Django version they were checked against.
"""

from __future__ import annotations

from typing import Any


def client() -> Any | None:
    """The default cache's Redis client, or None when the default cache is not Redis.
    Keys used through it carry no cache prefix: callers make them with
    ``cache.make_and_validate_key``."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]  # the backend itself: django.core.cache.cache is a proxy
    if isinstance(backend, RedisCache):
        return backend._cache.get_client(write=True)
    return None
