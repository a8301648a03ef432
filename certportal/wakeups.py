"""Wake a waiting request when a worker finishes something it waits for (Redis only).

A worker ``notify(key)``s after its transaction commits; a request ``wait(key, s)``s on
the same key for at most s seconds (BLPOP: no polling, no CPU while it waits). A notice
nobody waits for expires after a minute. It uses the Redis cache's own client
(certportal.cache). Without Redis nobody waits: callers check ``settings.REDIS_URL``
first and answer with the state as it stands.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from certportal.cache import redis_client

logger = logging.getLogger(__name__)

_PREFIX = "certportal:wakeup:"


def _client() -> Any:
    client = redis_client()
    if client is None:
        raise redis.RedisError("the default cache is not Redis")
    return client


def notify(key: str) -> None:
    """Wake whoever waits on key (now or within the next minute). Never raises."""
    try:
        with _client().pipeline() as pipe:
            pipe.rpush(_PREFIX + key, 1)
            pipe.expire(_PREFIX + key, 60)
            pipe.execute()
    except redis.RedisError:
        logger.warning("could not send wake-up %s", key, exc_info=True)


def wait(key: str, timeout: float) -> bool:
    """Wait up to timeout seconds for a notice on key; True if one came."""
    try:
        return _client().blpop([_PREFIX + key], timeout=timeout) is not None
    except redis.RedisError:
        logger.warning("could not wait for wake-up %s", key, exc_info=True)
        return False
