"""Wake a waiting request when a worker finishes something it waits for (Redis only).

A worker ``notify(key, message)``s after its transaction commits; a request
``wait(key, s)``s on the same key for at most s seconds (BLPOP: no polling, no CPU while it
waits) and gets the message, which may carry the outcome so the request need not read it
back. A notice nobody waits for expires after a minute. It uses the Redis cache's own client
(certportal.db.redis). Without Redis nobody waits: callers check
``certportal.cache.is_shared()`` first and answer with the state as it stands.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from certportal.db.redis import client as redis_client

logger = logging.getLogger(__name__)

_PREFIX = "certportal:wakeup:"


def _client() -> Any:
    client = redis_client()
    if client is None:
        raise redis.RedisError("the default cache is not Redis")
    return client


def notify(key: str, message: str = "1") -> None:
    """Wake whoever waits on key (now or within the next minute) with message (not empty).
    Never raises."""
    try:
        with _client().pipeline() as pipe:
            pipe.rpush(_PREFIX + key, message)
            pipe.expire(_PREFIX + key, 60)
            pipe.execute()
    except redis.RedisError:
        logger.warning("could not send wake-up %s", key, exc_info=True)


def wait(key: str, timeout: float) -> str | None:
    """Wait up to timeout seconds for a notice on key: its message, or None if none came."""
    try:
        popped = _client().blpop([_PREFIX + key], timeout=timeout)
    except redis.RedisError:
        logger.warning("could not wait for wake-up %s", key, exc_info=True)
        return None
    return None if popped is None else popped[1].decode()
